//! Many distinct locks at once: `tasks` tasks of one process, each taking a lock of its own
//! name once, started together, against a hand-written loop that sends the same work
//! (`SET NX PX`, then the release script) for as many names in two pipelines on one
//! multiplexed connection. Run for growing `tasks`, it shows how time and memory grow with
//! the number of names (bookkeeping that grew with its square would show here).

use std::time::{Duration, Instant};

use super::scale::ConnectionSampler;
use super::server::{peak_rss_kib, reset_peak_rss};
use super::{Res, runtime};

pub struct Distinct {
    pub tasks: usize,
    pub elapsed: Duration,
    /// The hand-written pipelines' time for as many names.
    pub baseline: Duration,
    pub connections_opened: usize,
    pub connections_at_once: usize,
    pub peak_rss_kib: Option<u64>,
}

/// One lock per task, on the client registered as `client` (made for this run, so that
/// every connection it uses is opened here).
pub fn run(url: &str, client: &str, tasks: usize) -> Res<Distinct> {
    redis_locked::register(client, url)?;
    let rt = runtime()?;
    let baseline = rt.block_on(pipelined(url, client, tasks))?;

    let sampler = ConnectionSampler::start(url)?;
    reset_peak_rss();
    let start = Instant::now();
    rt.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|task| {
                let lock = redis_locked::Lock::with_client(client, format!("{client}:{task}"))
                    .map(|lock| lock.expire(Duration::from_secs(10)));
                tokio::spawn(async move { lock?.acquire(None).await?.release().await })
            })
            .collect();
        for handle in handles {
            handle.await??;
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    })?;
    let elapsed = start.elapsed();
    let peak_rss_kib = peak_rss_kib();
    let (connections_opened, connections_at_once) = sampler.stop()?;
    Ok(Distinct {
        tasks,
        elapsed,
        baseline,
        connections_opened,
        connections_at_once,
        peak_rss_kib,
    })
}

/// The same work for `tasks` names, hand-written: every `SET NX PX` in one pipeline, then
/// every release (a GET-compare-DEL script) in another. Without the `redis` crate's default
/// response timeout of 500 ms, which a pipeline of 100,000 commands can outlast on a slow
/// machine.
async fn pipelined(url: &str, client: &str, tasks: usize) -> Res<Duration> {
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let mut conn = redis::Client::open(url)?
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let release = redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
    );
    let sha = release.load_async(&mut conn).await?;
    let key = |task: usize| format!("baseline:{client}:{task}");
    let start = Instant::now();
    let mut take = redis::pipe();
    for task in 0..tasks {
        take.cmd("SET")
            .arg(key(task))
            .arg("owner")
            .arg("NX")
            .arg("PX")
            .arg(10_000)
            .ignore();
    }
    take.query_async::<()>(&mut conn).await?;
    let mut free = redis::pipe();
    for task in 0..tasks {
        free.cmd("EVALSHA")
            .arg(&sha)
            .arg(1)
            .arg(key(task))
            .arg("owner")
            .ignore();
    }
    free.query_async::<()>(&mut conn).await?;
    Ok(start.elapsed())
}
