//! What a client sends again. A request whose connection drops after the server ran it
//! must not go again unless running it twice is running it once: a second RELEASE, or a
//! second HANDOFF after it released the lock to everyone, finds the key gone and would
//! report a lock it had just freed as expired. The `redis` crate's cluster connection would
//! resend any request after a lost connection; our connections resend only `resend_safe`
//! scripts, and a release asked once more reads "not ours" as unknown, never as expired. Here the server runs the request and drops the connection before
//! its reply goes out (see `RedisServer::kill_connections_after_queued_requests`).

use std::time::Duration;

use redis_locked::{ClientBuilder, Lock, LockError, LockGuard};
use redis_locked_tests::{
    RedisCluster, RedisServer, freed_within, until_no_script_for, wait_for_subscribers,
};

/// Where the locks live.
enum Deployment {
    One(RedisServer),
    Cluster(RedisCluster),
}

impl Deployment {
    /// A client named `name` of this deployment, with the crate's default settings.
    fn register(&self, name: &str) {
        match self {
            Deployment::One(server) => ClientBuilder::new(server.url()),
            Deployment::Cluster(cluster) => ClientBuilder::cluster(cluster.seed_urls()),
        }
        .register(name)
        .unwrap();
    }

    /// The server that holds `key`.
    fn server_of(&self, key: &str) -> &RedisServer {
        match self {
            Deployment::One(server) => server,
            Deployment::Cluster(cluster) => cluster.master_of(key),
        }
    }

    /// Returns once `count` connections subscribe to `key`'s release announcements.
    async fn wait_for_subscribers(&self, key: &str, count: i64) {
        match self {
            Deployment::One(server) => wait_for_subscribers(server, key, count).await,
            Deployment::Cluster(cluster) => cluster.wait_for_shard_subscribers(key, count).await,
        }
    }

    /// A connection subscribed to `key`'s release announcements, as another process's
    /// waiter would be.
    fn another_process_waiting(&self, key: &str) -> redis::Connection {
        let mut connection = self.server_of(key).connection();
        let subscribe = match self {
            Deployment::One(_) => "SUBSCRIBE",
            Deployment::Cluster(_) => "SSUBSCRIBE",
        };
        redis::cmd(subscribe)
            .arg(key)
            .exec(&mut connection)
            .unwrap();
        connection
    }

    /// A lock of client `client` whose key lives on the same server as `key`'s, for
    /// loading scripts there without touching `key`.
    fn neighbour(&self, client: &str, key: &str) -> Lock {
        let name = (0..)
            .map(|i| format!("neighbour-{i}"))
            .find(|name| {
                self.server_of(&format!("lock:{{{name}}}")).port() == self.server_of(key).port()
            })
            .unwrap();
        Lock::with_client(client, name).unwrap()
    }
}

/// Releases `guard` while `server` runs the release and then drops the connection before
/// the reply goes out; the release's outcome.
async fn release_losing_its_reply(server: &RedisServer, guard: LockGuard) -> Result<(), LockError> {
    let killer = server.connection();
    server.pause();
    let release = tokio::spawn(guard.release());
    let killed = tokio::task::block_in_place(|| {
        server.wait_for_unread_requests(1);
        server.kill_connections_after_queued_requests(killer)
    });
    server.resume();
    let outcome = tokio::time::timeout(Duration::from_secs(10), release)
        .await
        .expect("the release returned")
        .unwrap();
    killed.join().unwrap();
    outcome
}

/// Whether `outcome` is true to what happened: the release ran, so it either succeeded or
/// says its fate is unknown, and never that the lock had expired (which a resend's "not
/// ours" would say).
fn true_to_what_ran(outcome: &Result<(), LockError>) -> bool {
    match outcome {
        Ok(()) => true,
        Err(e) => e.is_timeout() || e.is_unavailable(),
    }
}

/// A release whose reply is lost does not report the lock expired, and the lock is free
/// (the release ran).
async fn a_release_whose_reply_is_lost(deployment: Deployment, client: &str) {
    deployment.register(client);
    let lock = Lock::with_client(client, "late")
        .unwrap()
        .expire(Duration::from_secs(30));
    // The release script loaded (else the killed request is an EVALSHA answered
    // NOSCRIPT, which ran nothing).
    lock.acquire(None).await.unwrap().release().await.unwrap();
    let guard = lock.acquire(None).await.unwrap();

    let outcome = release_losing_its_reply(deployment.server_of(lock.key()), guard).await;
    assert!(true_to_what_ran(&outcome), "{outcome:?}");
    assert!(
        freed_within(&lock, Duration::from_secs(2)).await,
        "the lock stayed taken"
    );
}

/// A handover that released to everyone and whose reply is lost does not report the lock
/// expired, and the local waiter takes the lock at once.
async fn a_handover_whose_reply_is_lost(deployment: Deployment, client: &str) {
    deployment.register(client);
    let lock = Lock::with_client(client, "handed")
        .unwrap()
        .expire(Duration::from_secs(30));
    let key = lock.key().to_string();
    // The handover script loaded on the lock's server: one handover, of another lock there
    // (so that the waiter below subscribes afresh).
    let neighbour = deployment.neighbour(client, &key);
    let guard = neighbour.acquire(None).await.unwrap();
    let waiter = {
        let neighbour = neighbour.clone();
        tokio::spawn(async move { neighbour.acquire(Some(Duration::from_secs(20))).await })
    };
    deployment.wait_for_subscribers(neighbour.key(), 1).await;
    // Its look once its subscription is confirmed must be over, or the release meets that
    // look and frees the lock with RELEASE, leaving HANDOFF unloaded.
    until_no_script_for(
        deployment.server_of(neighbour.key()),
        Duration::from_millis(100),
    )
    .await;
    guard.release().await.unwrap();
    waiter.await.unwrap().unwrap().release().await.unwrap();

    // A waiter of this process, so the release is a HANDOFF, and another process's, so
    // the HANDOFF releases to everyone.
    let guard = lock.acquire(None).await.unwrap();
    let mut waiter = {
        let lock = lock.clone();
        tokio::spawn(async move { lock.acquire(Some(Duration::from_secs(20))).await })
    };
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut waiter)
            .await
            .is_err(),
        "the waiter waits"
    );
    deployment.wait_for_subscribers(&key, 1).await;
    let _other = deployment.another_process_waiting(&key);
    deployment.wait_for_subscribers(&key, 2).await;
    until_no_script_for(deployment.server_of(&key), Duration::from_millis(100)).await;

    let outcome = release_losing_its_reply(deployment.server_of(&key), guard).await;
    assert!(true_to_what_ran(&outcome), "{outcome:?}");
    // The HANDOFF ran and freed the lock; the waiter, poked, takes it.
    let taken = tokio::time::timeout(Duration::from_secs(2), waiter)
        .await
        .expect("the waiter was left asleep on a free lock")
        .unwrap();
    assert!(taken.is_ok(), "{taken:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_whose_reply_is_lost_is_not_reported_expired() {
    a_release_whose_reply_is_lost(Deployment::One(RedisServer::start()), "one-release").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_whose_reply_is_lost_is_not_sent_again() {
    a_handover_whose_reply_is_lost(Deployment::One(RedisServer::start()), "one-handover").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_release_whose_reply_is_lost_is_not_reported_expired() {
    let cluster = Deployment::Cluster(RedisCluster::start(3, 0));
    a_release_whose_reply_is_lost(cluster, "cl-release").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_handover_whose_reply_is_lost_is_not_sent_again() {
    let cluster = Deployment::Cluster(RedisCluster::start(3, 0));
    a_handover_whose_reply_is_lost(cluster, "cl-handover").await;
}
