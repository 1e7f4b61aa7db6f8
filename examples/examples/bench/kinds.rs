//! (a) again, with a semaphore of 3 permits and with a shared lock: the throughput of the
//! locks several callers hold at once, against the exclusive lock's in the same run.
//! Every task takes the lock, runs an empty body and releases it, as in (a); with room for
//! several holders, tasks do not wait for each other's releases, so the ratio to (a) says
//! what the holders' hash costs and what sharing gains.

use redis_locked::{LockError, redis_lock};

use super::clock::now_ns;
use super::contended::Measured;
use super::report::{Table, Target, rate, ratio};
use super::server::Inspector;
use super::stats::Record;
use super::{Res, Sizes, runtime};

/// The lock of a semaphore of 3 permits.
#[redis_lock(name = "bench:{lock}", expire = 10, permits = 3)]
async fn in_semaphore(lock: &str) -> Result<u64, LockError> {
    Ok(now_ns())
}

/// A shared (read) lock.
#[redis_lock(name = "bench:{lock}", expire = 10, shared)]
async fn reading(lock: &str) -> Result<u64, LockError> {
    Ok(now_ns())
}

/// Which lock several hold at once.
#[derive(Clone, Copy)]
pub enum Kind {
    Semaphore,
    Shared,
}

impl Kind {
    async fn call(self, lock: &str) -> Result<u64, LockError> {
        match self {
            Kind::Semaphore => in_semaphore(lock).await,
            Kind::Shared => reading(lock).await,
        }
    }

    fn lock(self) -> &'static str {
        match self {
            Kind::Semaphore => "contended-semaphore",
            Kind::Shared => "contended-shared",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Semaphore => "semaphore of 3 permits",
            Kind::Shared => "shared lock, readers only",
        }
    }
}

/// (a) with `kind`: `workers` tasks of this process, one lock.
pub fn tasks(inspector: &mut Inspector, workers: u32, sizes: &Sizes, kind: Kind) -> Res<Measured> {
    let rt = runtime()?;
    rt.block_on(run(kind, workers, sizes.contended_warmup))?;
    inspector.reset_stats()?;
    let records = rt.block_on(run(kind, workers, sizes.per_worker))?;
    Ok(Measured::new(records, inspector.commands_run()?))
}

async fn run(kind: Kind, workers: u32, count: usize) -> Res<Vec<Record>> {
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            tokio::spawn(async move {
                let mut records = Vec::with_capacity(count);
                for _ in 0..count {
                    let called = now_ns();
                    let acquired = kind.call(kind.lock()).await?;
                    records.push(Record::returned_now(worker, called, acquired));
                }
                Ok::<_, LockError>(records)
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}

/// Each kind's rate and commands per acquisition, and its rate as a ratio to the
/// exclusive lock's (a).
pub fn rows(table: &mut Table, section: &str, exclusive: &Measured, kinds: &[(Kind, Measured)]) {
    for (kind, measured) in kinds {
        let c = &measured.contention;
        table.row(
            section,
            &format!("{}: acquisitions", kind.label()),
            rate(c.per_second),
            ratio(c.per_second / exclusive.contention.per_second) + " exclusive (a)",
            Target::unjudged("throughput against the exclusive lock"),
        );
        table.row(
            section,
            &format!("{}: server commands per acquisition", kind.label()),
            format!("{:.1}", measured.commands_per_acquisition),
            ratio(measured.commands_per_acquisition / exclusive.commands_per_acquisition)
                + " exclusive (a)",
            Target::none(),
        );
    }
}
