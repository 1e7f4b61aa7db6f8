//! What Redis and the `redis` crate do without the attribute: the yardsticks. [`ping`] is
//! one round of `Sizes::ping` calls after `Sizes::warmup`; the hand-written loops are run
//! a cycle at a time, beside the annotated calls (paired.rs).

use std::time::Instant;

use redis::aio::MultiplexedConnection;

use super::{Res, Sizes, stats::percentile};

/// The best of the rounds (see `measure_loops` in bench.rs).
pub struct Baselines {
    pub ping_per_second: f64,
    pub ping_p50_ns: u64,
    pub handwritten_async: f64,
    pub handwritten_sync: f64,
    /// The same with a fencing token, as the crate takes one: acquiring is a script that
    /// also increments a counter.
    pub fenced_async: f64,
    pub fenced_sync: f64,
}

/// How the hand-written loop acquires.
#[derive(Clone, Copy)]
pub enum Acquire {
    /// `SET NX PX`.
    Plain,
    /// `EVALSHA` of [`FENCED_LOCK`]: `SET NX PX` and `INCR` of a fencing counter.
    Fenced,
}

/// `SET NX PX` plus a fencing token, the way the crate acquires.
const FENCED_LOCK: &str = "if redis.call('set',KEYS[1],ARGV[1],'NX','PX',ARGV[2]) then return redis.call('incr',KEYS[2]) end return 0";

/// Compare-and-delete: the textbook release of a `SET NX` lock.
pub const UNLOCK: &str =
    "if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end";

/// One PING at a time on one connection: round trips per second and the p50 round trip.
pub fn ping(conn: &mut redis::Connection, sizes: &Sizes) -> Res<(f64, u64)> {
    for _ in 0..sizes.warmup {
        redis::cmd("PING").query::<String>(conn)?;
    }
    let mut latencies = Vec::with_capacity(sizes.ping);
    let start = Instant::now();
    for _ in 0..sizes.ping {
        let sent = Instant::now();
        redis::cmd("PING").query::<String>(conn)?;
        latencies.push(sent.elapsed().as_nanos() as u64);
    }
    let per_second = sizes.ping as f64 / start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Ok((per_second, percentile(&latencies, 0.5)))
}

/// The loop on one blocking connection: acquire, then `EVALSHA` of [`UNLOCK`], a new
/// owner value each cycle.
pub struct SyncLoop {
    conn: redis::Connection,
    shas: Shas,
    acquire: Acquire,
    cycles: usize,
}

/// The hashes of [`UNLOCK`] and [`FENCED_LOCK`], loaded on the loop's server.
struct Shas {
    unlock: String,
    fenced: String,
}

impl SyncLoop {
    pub fn connect(url: &str, acquire: Acquire) -> Res<SyncLoop> {
        let mut conn = redis::Client::open(url)?.get_connection()?;
        let mut load = |body| redis::cmd("SCRIPT").arg("LOAD").arg(body).query(&mut conn);
        let shas = Shas {
            unlock: load(UNLOCK)?,
            fenced: load(FENCED_LOCK)?,
        };
        Ok(SyncLoop {
            conn,
            shas,
            acquire,
            cycles: 0,
        })
    }

    pub fn cycle(&mut self) -> Res<()> {
        self.cycles += 1;
        let token = self.cycles.to_string();
        let conn = &mut self.conn;
        match self.acquire {
            Acquire::Plain => {
                let set: Option<String> = set_nx(&token).query(conn)?;
                assert!(set.is_some(), "the hand-written lock is uncontended");
            }
            Acquire::Fenced => {
                let fence: i64 = fenced(&self.shas.fenced, &token).query(conn)?;
                assert!(fence > 0, "the hand-written lock is uncontended");
            }
        }
        let deleted: i64 = evalsha(&self.shas.unlock, &token).query(conn)?;
        assert_eq!(deleted, 1, "the hand-written lock was ours");
        Ok(())
    }
}

/// The same on one `MultiplexedConnection`, for a task of a 2-worker runtime (like the
/// annotated `async fn` it is compared with).
pub struct AsyncLoop {
    conn: MultiplexedConnection,
    shas: Shas,
    acquire: Acquire,
    cycles: usize,
}

impl AsyncLoop {
    pub async fn connect(url: &str, acquire: Acquire) -> Res<AsyncLoop> {
        let mut conn = redis::Client::open(url)?
            .get_multiplexed_async_connection()
            .await?;
        let mut shas = Shas {
            unlock: String::new(),
            fenced: String::new(),
        };
        for (sha, body) in [(&mut shas.unlock, UNLOCK), (&mut shas.fenced, FENCED_LOCK)] {
            *sha = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(body)
                .query_async(&mut conn)
                .await?;
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
        let token = self.cycles.to_string();
        let conn = &mut self.conn;
        match self.acquire {
            Acquire::Plain => {
                let set: Option<String> = set_nx(&token).query_async(conn).await?;
                assert!(set.is_some(), "the hand-written lock is uncontended");
            }
            Acquire::Fenced => {
                let fence: i64 = fenced(&self.shas.fenced, &token).query_async(conn).await?;
                assert!(fence > 0, "the hand-written lock is uncontended");
            }
        }
        let deleted: i64 = evalsha(&self.shas.unlock, &token).query_async(conn).await?;
        assert_eq!(deleted, 1, "the hand-written lock was ours");
        Ok(())
    }
}

const KEY: &str = "bench:handwritten";

fn set_nx(token: &str) -> redis::Cmd {
    redis::cmd("SET")
        .arg(KEY)
        .arg(token)
        .arg("NX")
        .arg("PX")
        .arg(10_000)
        .to_owned()
}

fn fenced(sha: &str, token: &str) -> redis::Cmd {
    redis::cmd("EVALSHA")
        .arg(sha)
        .arg(2)
        .arg(KEY)
        .arg(concat!("bench:handwritten", ":fence"))
        .arg(token)
        .arg(10_000)
        .to_owned()
}

fn evalsha(sha: &str, token: &str) -> redis::Cmd {
    redis::cmd("EVALSHA")
        .arg(sha)
        .arg(1)
        .arg(KEY)
        .arg(token)
        .to_owned()
}
