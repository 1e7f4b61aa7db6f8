//! One worker process of the chaos test (`tests/chaos.rs`): TASKS tasks that, until a
//! deadline, take the lock and increment a counter in Redis non-atomically (GET, pause,
//! SET), logging every critical section to LOG so the test can check afterwards that no
//! two overlapped and that every increment a holder saw complete is counted once.
//!
//! Log lines, one `write` each (the process may be killed at any moment):
//! `enter TOKEN UNIX_NS`, then `done TOKEN VALUE` (the SET was acknowledged) or
//! `unknown TOKEN` (it failed: it may or may not have been applied) or `lost TOKEN`
//! (the lock was lost first), then `exit TOKEN UNIX_NS` just before the release.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands;
use redis_locked::Lock;

pub fn run(url: &str, args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let (lock, counter, log, until_ms, tasks) = (
        &args[0],
        args[1].clone(),
        &args[2],
        args[3].parse::<u128>()?,
        args[4].parse::<usize>()?,
    );
    let lock = Lock::with_client("contender", lock.as_str())?
        .expire(Duration::from_secs(2))
        .auto_renew(true);
    let log = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?,
    ));
    let redis = redis::Client::open(url)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let workers: Vec<_> = (0..tasks)
            .map(|_| {
                let (lock, counter, log, redis) =
                    (lock.clone(), counter.clone(), log.clone(), redis.clone());
                tokio::spawn(work(lock, counter, log, redis, until_ms))
            })
            .collect();
        for worker in workers {
            let _ = worker.await;
        }
    });
    println!("FINISHED");
    Ok(())
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}

fn write(log: &Mutex<std::fs::File>, line: String) {
    let mut file = log.lock().unwrap_or_else(|e| e.into_inner());
    file.write_all(line.as_bytes())
        .expect("write the chaos log");
}

async fn work(
    lock: Lock,
    counter: String,
    log: Arc<Mutex<std::fs::File>>,
    redis: redis::Client,
    until_ms: u128,
) {
    let mut conn = None;
    while now_ns() / 1_000_000 < until_ms {
        let guard = match lock.acquire(Some(Duration::from_secs(5))).await {
            Ok(guard) => guard,
            Err(_) => {
                // Redis is restarting: try again.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let token = guard.token().to_string();
        write(&log, format!("enter {token} {}\n", now_ns()));
        let outcome = tokio::select! {
            biased;
            () = guard.lost() => format!("lost {token}\n"),
            done = increment(&mut conn, &redis, &counter) => match done {
                Ok(value) => format!("done {token} {value}\n"),
                Err(_) => {
                    conn = None;
                    format!("unknown {token}\n")
                }
            },
        };
        write(&log, outcome);
        write(&log, format!("exit {token} {}\n", now_ns()));
        let _ = guard.release().await;
    }
}

/// GET, a pause that invites interleaving, SET: correct only under the lock.
async fn increment(
    conn: &mut Option<redis::aio::MultiplexedConnection>,
    redis: &redis::Client,
    counter: &str,
) -> redis::RedisResult<i64> {
    if conn.is_none() {
        *conn = Some(redis.get_multiplexed_async_connection().await?);
    }
    let conn = conn.as_mut().expect("connected above");
    let value: Option<i64> = conn.get(counter).await?;
    tokio::time::sleep(Duration::from_millis(2)).await;
    let next = value.unwrap_or(0) + 1;
    let () = conn.set(counter, next).await?;
    Ok(next)
}
