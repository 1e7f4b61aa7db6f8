//! The test harness's Sentinel setup works: the groundwork for tests of locks across a
//! Sentinel failover.

use std::time::Instant;

use redis_locked_tests::SentinelSetup;

#[test]
fn sentinel_setup_comes_up_and_fails_over_on_demand() {
    let start = Instant::now();
    let mut setup = SentinelSetup::start("locks");
    eprintln!(
        "master, replica and 3 sentinels up in {:?}",
        start.elapsed()
    );
    assert_eq!(setup.sentinel_urls().len(), 3);
    assert_eq!(setup.master_name(), "locks");
    let (host, port) = setup.master_addr();
    assert_eq!(host, "127.0.0.1");
    assert_eq!(port, setup.master().port());
    let old = setup.master().port();
    let new = setup.replica().port();

    let mut conn = setup.master().connection();
    let _: () = redis::cmd("SET")
        .arg("lock:{a}")
        .arg("holder-1")
        .query(&mut conn)
        .unwrap();
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query(&mut conn)
        .unwrap();
    assert_eq!(acked, 1);

    let took = setup.failover();
    eprintln!("forced failover: sentinels report the new master after {took:?}");
    assert_eq!(setup.master_addr().1, new);
    assert_eq!(setup.master().port(), new);
    let mut conn = setup.master().connection();
    let value: Option<String> = redis::cmd("GET").arg("lock:{a}").query(&mut conn).unwrap();
    assert_eq!(value.as_deref(), Some("holder-1"));

    // The old master becomes a replica of the new one.
    let took = setup.wait_until_ready();
    eprintln!("old master replicating from the new one {took:?} later");
    assert_eq!(setup.replica().port(), old);
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query(&mut setup.replica().connection())
        .unwrap();
    assert!(info.contains("role:slave"), "{info}");
    assert!(info.contains(&format!("master_port:{new}")), "{info}");
    assert!(info.contains("master_link_status:up"), "{info}");
}

#[test]
fn sentinels_promote_the_replica_when_the_master_dies() {
    let mut setup = SentinelSetup::start("locks");
    let replica = setup.replica().port();
    let start = Instant::now();
    let old = setup.kill_master();
    setup.wait_for_master(replica);
    eprintln!(
        "master killed; sentinels promoted the replica in {:?}",
        start.elapsed()
    );

    assert_ne!(old, replica);
    assert_eq!(setup.master().port(), replica);
    assert_eq!(setup.master_addr().1, replica);
}
