//! A second OS process for the integration tests, contending for the same locks.
//!
//! URL may also be several comma-separated URLs: a Redlock client of those servers, whose
//! counters (COUNTER, STORE) live on the first; or `cluster:SEED,SEED,...` for a Redis
//! Cluster client (the counter of `count` lives on the first seed).
//!
//! `contender count URL LOCK COUNTER N`: N locked, non-atomic increments of COUNTER.
//! `contender hold URL LOCK LEASE_SECS`: takes LOCK (auto-renewing), prints `HOLDING`, and
//! holds it until killed.
//! `contender hold-until-told URL LOCK LEASE_SECS`: the same, but releases it when a line
//! arrives on stdin, then prints `RELEASED`.
//! `contender take URL LOCK`: waits for LOCK, prints `ACQUIRED`, releases it and exits.
//! `contender chaos URL LOCK COUNTER LOG UNTIL_UNIX_MS TASKS`: see `chaos.rs`.
//! `contender runaway URL LOCK`: runs a body that never ends under LOCK with
//! `max_hold = 1` (lease 0.3 s, renewed), printing `HOLDING` when it starts.
//! `contender job URL LOCK COUNTER`: a scheduled job under LOCK with `timeout = 0` and
//! `min_hold = 2`: one non-atomic increment of COUNTER, printing `RAN`, or `SKIPPED` when
//! the lock is taken.
//! `hold` and `hold-until-told` take an optional MIN_HOLD_SECS after LEASE_SECS.
//! `transfer URL A B N`: N locked transfers of one unit from counter A to counter B
//! (non-atomic reads and writes of both), under the locks `A` and `B` taken together.
//! `intervals URL LOCK LOG KIND N`: N critical sections under LOCK, each a few ms long,
//! pushing `<kind> <enter µs> <exit µs>` (unix time) to the list LOG; KIND is `sem` (a
//! semaphore of 3 permits), `read` (shared) or `write` (the plain lock).
//! `hold-kind URL LOCK LEASE_SECS KIND`: takes LOCK as KIND (`sem` or `read`), renewed,
//! prints `HOLDING`, and holds it until killed.
//! `hold-set URL LEASE_SECS A B`: takes the locks A and B together (renewed), prints
//! `HOLDING`, and holds them until killed.
//! `contender fenced-write URL LOCK STORE LEASE_SECS`: takes LOCK (not renewed), prints
//! `HOLDING <fencing token>`, and when a line arrives on stdin writes to STORE with that
//! token (see `fenced_write`), printing `WRITE ACCEPTED` or `WRITE REJECTED`.

use redis_locked::{LockError, redis_lock};

#[path = "../chaos_worker.rs"]
mod chaos_worker;

#[redis_lock(name = "{lock}", client = "contender", expire = 5)]
fn increment(lock: &str, conn: &mut redis::Connection, counter: &str) -> Result<(), LockError> {
    let value: Option<i64> = redis::cmd("GET").arg(counter).query(conn)?;
    let _: () = redis::cmd("SET")
        .arg(counter)
        .arg(value.unwrap_or(0) + 1)
        .query(conn)?;
    Ok(())
}

#[redis_lock(
    name = "{lock}",
    client = "contender",
    expire = 0.3,
    auto_renew,
    max_hold = 1
)]
fn runaway(lock: &str) -> Result<(), LockError> {
    println!("HOLDING");
    loop {
        std::thread::park();
    }
}

#[redis_lock(name = "{lock}", client = "contender", timeout = 0, min_hold = 2)]
fn job(lock: &str, conn: &mut redis::Connection, counter: &str) -> Result<(), LockError> {
    let value: Option<i64> = redis::cmd("GET").arg(counter).query(conn)?;
    let _: () = redis::cmd("SET")
        .arg(counter)
        .arg(value.unwrap_or(0) + 1)
        .query(conn)?;
    Ok(())
}

/// Moves one unit from counter `from` to counter `to`, reading both before writing either,
/// under the locks of both names, taken in whatever order the caller names them.
#[redis_lock(name = ["{from}", "{to}"], client = "contender", expire = 5, timeout = 20)]
fn transfer(conn: &mut redis::Connection, from: &str, to: &str) -> Result<(), LockError> {
    let read = |conn: &mut redis::Connection, key: &str| -> Result<i64, LockError> {
        let value: Option<i64> = redis::cmd("GET").arg(key).query(conn)?;
        Ok(value.unwrap_or(0))
    };
    let (a, b) = (read(conn, from)?, read(conn, to)?);
    std::thread::yield_now();
    let _: () = redis::cmd("SET").arg(from).arg(a - 1).query(conn)?;
    let _: () = redis::cmd("SET").arg(to).arg(b + 1).query(conn)?;
    Ok(())
}

/// Now, in µs of unix time: the tests compare the intervals of several processes.
fn unix_micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

/// One critical section: entered, a few ms of work, left; recorded in `log`.
fn section(conn: &mut redis::Connection, log: &str, kind: &str) -> Result<(), LockError> {
    let enter = unix_micros();
    std::thread::sleep(std::time::Duration::from_millis(3));
    let exit = unix_micros();
    let _: () = redis::cmd("RPUSH")
        .arg(log)
        .arg(format!("{kind} {enter} {exit}"))
        .query(conn)?;
    Ok(())
}

#[redis_lock(name = "{lock}", client = "contender", permits = 3, expire = 5)]
fn in_semaphore(lock: &str, conn: &mut redis::Connection, log: &str) -> Result<(), LockError> {
    section(conn, log, "sem")
}

#[redis_lock(name = "{lock}", client = "contender", shared, expire = 5)]
fn reading(lock: &str, conn: &mut redis::Connection, log: &str) -> Result<(), LockError> {
    section(conn, log, "read")
}

#[redis_lock(name = "{lock}", client = "contender", expire = 5)]
fn writing(lock: &str, conn: &mut redis::Connection, log: &str) -> Result<(), LockError> {
    section(conn, log, "write")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    // `cluster:SEED,SEED,...`: a Redis Cluster client; `A,B,C`: a Redlock client. The
    // first URL holds the counters.
    let (url, client) = match args[2].strip_prefix("cluster:") {
        Some(list) => {
            let seeds: Vec<String> = list.split(',').map(String::from).collect();
            (
                seeds[0].clone(),
                redis_locked::ClientBuilder::cluster(seeds),
            )
        }
        None => {
            let urls: Vec<String> = args[2].split(',').map(String::from).collect();
            let builder = if urls.len() > 1 {
                redis_locked::ClientBuilder::redlock(urls.clone())
            } else {
                redis_locked::ClientBuilder::new(urls[0].clone())
            };
            (urls[0].clone(), builder)
        }
    };
    client.register("contender")?;
    let url = &url;
    match args[1].as_str() {
        "count" => {
            let (lock, counter, n) = (&args[3], &args[4], args[5].parse::<u32>()?);
            let mut conn = redis::Client::open(url.as_str())?.get_connection()?;
            for _ in 0..n {
                increment(lock, &mut conn, counter)?;
            }
            println!("DONE");
        }
        mode @ ("hold" | "hold-until-told") => {
            let lease = std::time::Duration::from_secs_f64(args[4].parse()?);
            let mut lock = redis_locked::Lock::with_client("contender", args[3].as_str())?
                .expire(lease)
                .auto_renew(true);
            if let Some(min_hold) = args.get(5) {
                lock = lock.min_hold(std::time::Duration::from_secs_f64(min_hold.parse()?));
            }
            let guard = lock.acquire_blocking(None)?;
            println!("HOLDING");
            if mode == "hold" {
                loop {
                    std::thread::park();
                }
            }
            std::io::stdin().read_line(&mut String::new())?;
            guard.release()?;
            println!("RELEASED");
        }
        "take" => {
            let lock = redis_locked::Lock::with_client("contender", args[3].as_str())?;
            let guard = lock.acquire_blocking(None)?;
            println!("ACQUIRED");
            guard.release()?;
        }
        "chaos" => chaos_worker::run(url, &args[3..])?,
        "runaway" => runaway(&args[3])?,
        "transfer" => {
            let (from, to, n) = (&args[3], &args[4], args[5].parse::<u32>()?);
            let mut conn = redis::Client::open(url.as_str())?.get_connection()?;
            for _ in 0..n {
                transfer(&mut conn, from, to)?;
            }
            println!("DONE");
        }
        "intervals" => {
            let (lock, log, kind, n) = (&args[3], &args[4], &args[5], args[6].parse::<u32>()?);
            let mut conn = redis::Client::open(url.as_str())?.get_connection()?;
            for _ in 0..n {
                match kind.as_str() {
                    "sem" => in_semaphore(lock, &mut conn, log)?,
                    "read" => reading(lock, &mut conn, log)?,
                    _ => writing(lock, &mut conn, log)?,
                }
            }
            println!("DONE");
        }
        "hold-kind" => {
            let lease = std::time::Duration::from_secs_f64(args[4].parse()?);
            let lock = redis_locked::Lock::with_client("contender", args[3].as_str())?
                .expire(lease)
                .auto_renew(true);
            let lock = match args[5].as_str() {
                "sem" => lock.permits(3),
                _ => lock.shared(),
            };
            let _guard = lock.acquire_blocking(None)?;
            println!("HOLDING");
            loop {
                std::thread::park();
            }
        }
        "hold-set" => {
            let lease = std::time::Duration::from_secs_f64(args[3].parse()?);
            let set = redis_locked::LockSet::with_client("contender", [&args[4], &args[5]])?
                .expire(lease)
                .auto_renew(true);
            let _held = set.acquire_blocking(None)?;
            println!("HOLDING");
            loop {
                std::thread::park();
            }
        }
        "job" => {
            let mut conn = redis::Client::open(url.as_str())?.get_connection()?;
            match job(&args[3], &mut conn, &args[4]) {
                Ok(()) => println!("RAN"),
                Err(LockError::Timeout { .. }) => println!("SKIPPED"),
                Err(e) => return Err(e.into()),
            }
        }
        "fenced-write" => {
            let lease = std::time::Duration::from_secs_f64(args[5].parse()?);
            let lock = redis_locked::Lock::with_client("contender", args[3].as_str())?
                .expire(lease)
                .auto_renew(false);
            let guard = lock.acquire_blocking(None)?;
            println!("HOLDING {}", guard.fencing_token());
            std::io::stdin().read_line(&mut String::new())?;
            let mut conn = redis::Client::open(url.as_str())?.get_connection()?;
            let fence = guard.fencing_token();
            if redis_locked_tests::fenced_write(&mut conn, &args[4], fence, "stale holder") {
                println!("WRITE ACCEPTED");
            } else {
                println!("WRITE REJECTED");
            }
            drop(guard);
        }
        other => return Err(format!("unknown mode {other}").into()),
    }
    Ok(())
}
