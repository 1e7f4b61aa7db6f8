//! What the contended runs record per acquisition, and the figures derived from it.

/// One acquisition, stamped with [`now_ns`](super::clock::now_ns).
#[derive(Debug, Clone, Copy)]
pub struct Record {
    pub worker: u32,
    /// When the locked function was called.
    pub called: u64,
    /// When its body started: the lock was ours.
    pub acquired: u64,
    /// When the call returned, so after the release had completed.
    pub released: u64,
}

impl Record {
    /// The record of a call that returned just now (so its release has completed).
    pub fn returned_now(worker: u32, called: u64, acquired: u64) -> Record {
        Record {
            worker,
            called,
            acquired,
            released: super::clock::now_ns(),
        }
    }

    /// `rec <worker> <called> <acquired> <released>`: how workers report to their parent.
    pub fn to_line(self) -> String {
        format!(
            "rec {} {} {} {}",
            self.worker, self.called, self.acquired, self.released
        )
    }

    pub fn parse(line: &str) -> Option<Record> {
        let mut fields = line.strip_prefix("rec ")?.split(' ');
        let mut next = || fields.next()?.parse::<u64>().ok();
        Some(Record {
            worker: u32::try_from(next()?).ok()?,
            called: next()?,
            acquired: next()?,
            released: next()?,
        })
    }
}

/// Every record of `tasks`, each a worker's, once all have ended.
pub async fn gather<E>(
    tasks: Vec<tokio::task::JoinHandle<Result<Vec<Record>, E>>>,
) -> Result<Vec<Record>, Box<dyn std::error::Error + Send + Sync>>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut all = Vec::new();
    for task in tasks {
        all.extend(
            task.await
                .map_err(|_| "a worker task panicked")?
                .map_err(Into::into)?,
        );
    }
    Ok(all)
}

/// The figures of one contended run.
pub struct Contention {
    pub acquisitions: usize,
    pub per_second: f64,
    /// Signed: the next holder may see the lock before the releasing call has returned.
    pub handoff_p50_ns: i64,
    pub handoff_p99_ns: i64,
    /// Share of acquisitions taken by the worker that had released just before.
    pub retake_share: f64,
    pub wait_p50_ns: u64,
    pub wait_p99_ns: u64,
    pub wait_max_ns: u64,
}

impl Contention {
    pub fn from_records(mut records: Vec<Record>) -> Contention {
        assert!(
            records.len() >= 2,
            "a contended run needs at least two acquisitions"
        );
        records.sort_by_key(|r| r.acquired);
        let pairs = records.windows(2);
        let mut handoffs: Vec<i64> = pairs
            .clone()
            .map(|w| w[1].acquired as i64 - w[0].released as i64)
            .collect();
        let retakes = pairs.filter(|w| w[1].worker == w[0].worker).count();
        let mut waits: Vec<u64> = records.iter().map(|r| r.acquired - r.called).collect();
        handoffs.sort_unstable();
        waits.sort_unstable();

        // Throughput over the whole run: from the first call to the last return.
        let first_call = records.iter().map(|r| r.called).min().unwrap_or(0);
        let last_return = records.iter().map(|r| r.released).max().unwrap_or(0);
        let span_s = (last_return - first_call) as f64 / 1e9;
        Contention {
            acquisitions: records.len(),
            per_second: records.len() as f64 / span_s,
            handoff_p50_ns: percentile(&handoffs, 0.50),
            handoff_p99_ns: percentile(&handoffs, 0.99),
            retake_share: retakes as f64 / handoffs.len() as f64,
            wait_p50_ns: percentile(&waits, 0.50),
            wait_p99_ns: percentile(&waits, 0.99),
            wait_max_ns: *waits.last().unwrap_or(&0),
        }
    }
}

/// Nearest-rank percentile (`p` in 0..=1) of an ascending slice.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
