//! Thousands of tasks of one process queueing for one lock, each taking it once.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::server::{client_ids, peak_rss_kib, reset_peak_rss};
use super::{Res, locked, runtime};

pub struct Scale {
    pub tasks: usize,
    pub elapsed: Duration,
    /// All tasks returned `Ok` within the time limit.
    pub all_finished: bool,
    /// Tasks whose body ran exactly once.
    pub exactly_once: usize,
    /// Connections to the server that appeared while the tasks ran.
    pub connections_opened: usize,
    /// The most of those open at one sample.
    pub connections_at_once: usize,
    pub peak_rss_kib: Option<u64>,
    /// Whether the peak is this section's own, not the whole run's.
    pub rss_peak_reset: bool,
}

pub fn run(url: &str, tasks: usize, limit: Duration) -> Res<Scale> {
    // A client of its own, so every connection it uses is opened during this section.
    redis_locked::register("scale", url)?;
    let counts: Arc<Vec<AtomicU32>> = Arc::new((0..tasks).map(|_| AtomicU32::new(0)).collect());
    let sampler = ConnectionSampler::start(url)?;
    let rss_peak_reset = reset_peak_rss();

    let rt = runtime()?;
    let start = Instant::now();
    let all_finished = rt.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|task| {
                let counts = counts.clone();
                tokio::spawn(async move { locked::count_once("scale", &counts, task).await })
            })
            .collect();
        let join_all = async {
            for handle in handles {
                if !matches!(handle.await, Ok(Ok(()))) {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(limit, join_all).await.unwrap_or(false)
    });
    let elapsed = start.elapsed();
    let (connections_opened, connections_at_once) = sampler.stop()?;
    let peak_rss_kib = peak_rss_kib();
    drop(rt);

    Ok(Scale {
        tasks,
        elapsed,
        all_finished,
        exactly_once: counts
            .iter()
            .filter(|c| c.load(Ordering::Relaxed) == 1)
            .count(),
        connections_opened,
        connections_at_once,
        peak_rss_kib,
        rss_peak_reset,
    })
}

/// Watches `CLIENT LIST` from a thread of its own every few ms and remembers every
/// connection that was not there when it started (its own included in "there").
pub struct ConnectionSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Res<(HashSet<u64>, usize)>>,
}

impl ConnectionSampler {
    pub fn start(url: &str) -> Res<ConnectionSampler> {
        let mut conn = redis::Client::open(url)?.get_connection()?;
        let before = client_ids(&mut conn)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut new = HashSet::new();
            let mut at_once = 0;
            loop {
                // Read the flag first, so one last sample follows the end of the run.
                let last = stopped.load(Ordering::Acquire);
                let now = client_ids(&mut conn)?;
                let now_new: Vec<u64> = now.difference(&before).copied().collect();
                at_once = at_once.max(now_new.len());
                new.extend(now_new);
                if last {
                    return Ok((new, at_once));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Ok(ConnectionSampler { stop, thread })
    }

    /// How many new connections were seen, and the most seen open at once.
    pub fn stop(self) -> Res<(usize, usize)> {
        self.stop.store(true, Ordering::Release);
        let (new, at_once) = self
            .thread
            .join()
            .map_err(|_| "the connection sampler panicked")??;
        Ok((new.len(), at_once))
    }
}
