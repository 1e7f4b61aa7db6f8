//! A hand-written loop on the `redis` crate's cluster connection, running the commands the
//! Cluster client sends for an uncontended acquisition and its release: the yardstick of
//! the Cluster client's uncontended rows, run a cycle at a time beside the annotated calls
//! (paired.rs).
//!
//! - [`Acquire::Plain`]: `SET NX PX`, as an acquisition that takes no fencing token.
//! - [`Acquire::Fenced`]: the ACQUIRE script with flag `f` (fencing token, not queued).
//!
//! Both release with the RELEASE script, as the client does.

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis_locked::__transport::Transport;

use super::Res;
use super::baseline::Acquire;

/// The lock's key and its neighbours in the same hash slot, as the client names them.
const KEY: &str = "lock:{bench:cluster-handwritten}";
const FENCE_KEY: &str = "lock:{bench:cluster-handwritten}:fence";
const QUEUE_KEY: &str = "lock:{bench:cluster-handwritten}:queue";
const LEASE_MS: u64 = 10_000;

/// What the client passes as its instance id: the release announces it.
const INSTANCE_ID: &str = "bench-handwritten";

/// The runtime's ACQUIRE and RELEASE bodies, RELEASE announcing on sharded pub/sub as the
/// Cluster client's variant does (the replacement of `scripts::sharded`).
fn script_bodies() -> [String; 2] {
    let [acquire, release] = Transport::script_bodies();
    [
        acquire.to_string(),
        release
            .replace("'publish'", "'spublish'")
            .replace("'numsub'", "'shardnumsub'"),
    ]
}

/// The scripts' hashes, worked out once.
struct Shas {
    acquire: String,
    release: String,
}

/// `SCRIPT LOAD` of both scripts, which the cluster connection sends to every node, and
/// their hashes.
fn scripts() -> (Vec<redis::Cmd>, Shas) {
    let bodies = script_bodies();
    let loads = bodies
        .iter()
        .map(|body| redis::cmd("SCRIPT").arg("LOAD").arg(body).take())
        .collect();
    let [acquire, release] = bodies.map(|body| redis::Script::new(&body).get_hash().to_string());
    (loads, Shas { acquire, release })
}

/// The acquisition's and the release's commands for owner value `token`.
fn cycle_cmds(shas: &Shas, acquire: Acquire, token: &str) -> [redis::Cmd; 2] {
    let keys = [KEY, FENCE_KEY, QUEUE_KEY];
    let acquire = match acquire {
        Acquire::Plain => redis::cmd("SET")
            .arg(KEY)
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(LEASE_MS)
            .take(),
        Acquire::Fenced => redis::cmd("EVALSHA")
            .arg(&shas.acquire)
            .arg(keys.len())
            .arg(&keys)
            .arg(token)
            .arg(LEASE_MS)
            .arg("f")
            .arg(INSTANCE_ID)
            .take(),
    };
    let release = redis::cmd("EVALSHA")
        .arg(&shas.release)
        .arg(keys.len())
        .arg(&keys)
        .arg(token)
        .arg(INSTANCE_ID)
        .take();
    [acquire, release]
}

/// Whether the acquisition's reply says the lock was taken.
fn taken(acquire: Acquire, reply: &redis::Value) -> bool {
    match acquire {
        Acquire::Plain => matches!(reply, redis::Value::Okay),
        Acquire::Fenced => matches!(
            reply,
            redis::Value::Array(parts)
                if matches!(parts.as_slice(), [redis::Value::Int(1), redis::Value::Int(fence)] if *fence > 0)
        ),
    }
}

/// The loop on `ClusterClient::get_connection`.
pub struct SyncLoop {
    conn: redis::cluster::ClusterConnection,
    shas: Shas,
    acquire: Acquire,
    cycles: usize,
}

impl SyncLoop {
    pub fn connect(seed_urls: &[String], acquire: Acquire) -> Res<SyncLoop> {
        let mut conn = ClusterClient::new(seed_urls.to_vec())?.get_connection()?;
        let (loads, shas) = scripts();
        for load in loads {
            load.query::<String>(&mut conn)?;
        }
        Ok(SyncLoop {
            conn,
            shas,
            acquire,
            cycles: 0,
        })
    }

    pub fn cycle(&mut self) -> Res<()> {
        self.cycles += 1;
        let [lock, unlock] = cycle_cmds(&self.shas, self.acquire, &self.cycles.to_string());
        let reply: redis::Value = lock.query(&mut self.conn)?;
        assert!(
            taken(self.acquire, &reply),
            "the hand-written lock is uncontended"
        );
        let released: i64 = unlock.query(&mut self.conn)?;
        assert_eq!(released, 1, "the hand-written lock was ours");
        Ok(())
    }
}

/// The loop on `ClusterClient::get_async_connection`, for a task of a 2-worker runtime
/// (like the annotated `async fn` it is compared with).
pub struct AsyncLoop {
    conn: ClusterConnection,
    shas: Shas,
    acquire: Acquire,
    cycles: usize,
}

impl AsyncLoop {
    pub async fn connect(seed_urls: &[String], acquire: Acquire) -> Res<AsyncLoop> {
        let client = ClusterClient::new(seed_urls.to_vec())?;
        let mut conn = client.get_async_connection().await?;
        let (loads, shas) = scripts();
        for load in loads {
            load.query_async::<String>(&mut conn).await?;
        }
        Ok(AsyncLoop {
            conn,
            shas,
            acquire,
            cycles: 0,
        })
    }

    pub async fn cycle(&mut self) -> Res<()> {
        self.cycles += 1;
        let [lock, unlock] = cycle_cmds(&self.shas, self.acquire, &self.cycles.to_string());
        let reply: redis::Value = lock.query_async(&mut self.conn).await?;
        assert!(
            taken(self.acquire, &reply),
            "the hand-written lock is uncontended"
        );
        let released: i64 = unlock.query_async(&mut self.conn).await?;
        assert_eq!(released, 1, "the hand-written lock was ours");
        Ok(())
    }
}
