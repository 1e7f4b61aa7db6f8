//! The test harness's Redis Cluster and Redlock servers work: the groundwork for tests of
//! locks on a cluster and on independent servers.

use std::collections::BTreeSet;
use std::time::Instant;

use redis_locked_tests::{RedisCluster, RedlockServers, key_slot};

#[test]
fn cluster_comes_up_shards_keys_and_survives_a_dead_master() {
    let start = Instant::now();
    let mut cluster = RedisCluster::start(3, 1);
    eprintln!(
        "cluster of 3 masters and 3 replicas up in {:?}",
        start.elapsed()
    );
    assert_eq!(cluster.nodes().len(), 6);
    assert_eq!(cluster.seed_urls().len(), 6);

    // The harness's slot of a key is the server's, and the hash tag decides it.
    let mut conn = cluster.nodes()[0].connection();
    for key in [
        "lock:{a}",
        "lock:{b}",
        "lock:{c}",
        "lock:{a}:fence",
        "plain",
        "{}x",
        "a{}{b}",
    ] {
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut conn)
            .expect("CLUSTER KEYSLOT");
        assert_eq!(key_slot(key), slot, "slot of {key}");
    }
    assert_eq!(key_slot("lock:{a}"), key_slot("lock:{a}:fence"));

    // Three locks, three shards.
    let keys = ["lock:{a}", "lock:{b}", "lock:{c}"];
    let masters: BTreeSet<u16> = keys.iter().map(|k| cluster.master_of(k).port()).collect();
    assert_eq!(masters.len(), 3, "the keys land on different shards");
    for key in keys {
        assert_eq!(
            cluster.replicas_of(key).len(),
            1,
            "{key}'s master has a replica"
        );
    }

    // A write via the key's master works; another master redirects it.
    let key = "lock:{a}";
    let mut master = cluster.connection_to_master_of(key);
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("holder-1")
        .query(&mut master)
        .expect("SET on the key's master");
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query(&mut master)
        .expect("WAIT");
    assert_eq!(acked, 1, "the replica has the write");
    let mut other = cluster.connection_to_master_of("lock:{b}");
    let err = redis::cmd("SET")
        .arg(key)
        .arg("x")
        .query::<()>(&mut other)
        .expect_err("another shard refuses the key");
    assert_eq!(err.code(), Some("MOVED"), "{err}");

    // Kill the key's master: its replica takes over, with the write.
    let old = cluster.master_of(key).port();
    let replica = cluster.replicas_of(key)[0].port();
    let took = cluster.kill_master_of(key);
    eprintln!("master of {key} killed; replica promoted and cluster ok in {took:?}");
    let new = cluster.master_of(key);
    assert_ne!(new.port(), old);
    assert_eq!(new.port(), replica, "the old master's replica took over");
    let mut conn = cluster.connection_to_master_of(key);
    let value: Option<String> = redis::cmd("GET").arg(key).query(&mut conn).expect("GET");
    assert_eq!(value.as_deref(), Some("holder-1"));
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("holder-2")
        .query(&mut conn)
        .expect("SET on the new master");
    assert_eq!(cluster.seed_urls().len(), 5);
    // The other shards are untouched.
    for key in ["lock:{b}", "lock:{c}"] {
        assert!(masters.contains(&cluster.master_of(key).port()));
    }
}

#[test]
fn redlock_servers_are_independent_and_come_back() {
    let mut servers = RedlockServers::start(3);
    assert_eq!(servers.len(), 3);
    let ports: BTreeSet<u16> = servers.servers().iter().map(|s| s.port()).collect();
    assert_eq!(ports.len(), 3);
    let mut first = servers.server(0).connection();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut first)
        .unwrap();
    let mut second = servers.server(1).connection();
    let other: Option<String> = redis::cmd("GET").arg("k").query(&mut second).unwrap();
    assert_eq!(other, None, "no replication between them");

    servers.kill(1);
    assert!(redis::cmd("PING").query::<String>(&mut second).is_err());
    servers.start_again(1);
    let url = servers.urls()[1].clone();
    assert_eq!(url, servers.server(1).url());
    let pong: String = redis::cmd("PING")
        .query(&mut servers.server(1).connection())
        .unwrap();
    assert_eq!(pong, "PONG");
}
