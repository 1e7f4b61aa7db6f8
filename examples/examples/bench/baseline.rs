//! What Redis and the `redis` crate do without the attribute: the yardsticks. Each
//! function is one round of `Sizes::loops` (or `ping`) calls after `Sizes::warmup`.

use std::time::Instant;

use redis::aio::MultiplexedConnection;

use super::{Res, Sizes, runtime, stats::percentile};

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

/// Acquire then `EVALSHA` of [`UNLOCK`], on one blocking connection: calls per second.
pub fn handwritten_sync(url: &str, sizes: &Sizes, acquire: Acquire) -> Res<f64> {
    let mut conn = redis::Client::open(url)?.get_connection()?;
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(UNLOCK)
        .query(&mut conn)?;
    let fenced_sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(FENCED_LOCK)
        .query(&mut conn)?;
    let mut lock_unlock = |i: usize| -> Res<()> {
        let token = i.to_string();
        match acquire {
            Acquire::Plain => {
                let set: Option<String> = set_nx(&token).query(&mut conn)?;
                assert!(set.is_some(), "the hand-written lock is uncontended");
            }
            Acquire::Fenced => {
                let fence: i64 = fenced(&fenced_sha, &token).query(&mut conn)?;
                assert!(fence > 0, "the hand-written lock is uncontended");
            }
        }
        let deleted: i64 = evalsha(&sha, &token).query(&mut conn)?;
        assert_eq!(deleted, 1, "the hand-written lock was ours");
        Ok(())
    };
    for i in 0..sizes.warmup {
        lock_unlock(i)?;
    }
    let start = Instant::now();
    for i in 0..sizes.loops {
        lock_unlock(i)?;
    }
    Ok(sizes.loops as f64 / start.elapsed().as_secs_f64())
}

/// The same on one `MultiplexedConnection`, in a task of a 2-worker runtime (like the
/// annotated `async fn` it is compared with).
pub fn handwritten_async(url: &str, sizes: &Sizes, acquire: Acquire) -> Res<f64> {
    let client = redis::Client::open(url)?;
    let (warmup, loops) = (sizes.warmup, sizes.loops);
    runtime()?.block_on(async move {
        tokio::spawn(async move {
            let mut conn = client.get_multiplexed_async_connection().await?;
            let sha: String = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(UNLOCK)
                .query_async(&mut conn)
                .await?;
            let fenced_sha: String = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(FENCED_LOCK)
                .query_async(&mut conn)
                .await?;
            let shas = (sha.as_str(), fenced_sha.as_str());
            for i in 0..warmup {
                lock_unlock_async(&mut conn, shas, acquire, i).await?;
            }
            let start = Instant::now();
            for i in 0..loops {
                lock_unlock_async(&mut conn, shas, acquire, i).await?;
            }
            Ok(loops as f64 / start.elapsed().as_secs_f64())
        })
        .await?
    })
}

async fn lock_unlock_async(
    conn: &mut MultiplexedConnection,
    (sha, fenced_sha): (&str, &str),
    acquire: Acquire,
    i: usize,
) -> Res<()> {
    let token = i.to_string();
    match acquire {
        Acquire::Plain => {
            let set: Option<String> = set_nx(&token).query_async(conn).await?;
            assert!(set.is_some(), "the hand-written lock is uncontended");
        }
        Acquire::Fenced => {
            let fence: i64 = fenced(fenced_sha, &token).query_async(conn).await?;
            assert!(fence > 0, "the hand-written lock is uncontended");
        }
    }
    let deleted: i64 = evalsha(sha, &token).query_async(conn).await?;
    assert_eq!(deleted, 1, "the hand-written lock was ours");
    Ok(())
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
