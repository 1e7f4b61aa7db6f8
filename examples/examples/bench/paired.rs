//! An annotated call and what it is held to (its hand-written loop, or the same function
//! without `auto_renew`) measured side by side. On this kind of VM the rate of everything
//! flips from one stretch of a second to the next (idle virtual CPUs halt, and waking them
//! costs more than a round trip), so two loops run seconds apart are also compared on their
//! luck. Here the two run in blocks of
//! `Sizes::loops / BLOCKS` calls, in turn, on the same thread or task, each pair of blocks
//! in the other order from the last (ours first, then the other first: ABBA), so that drift
//! within a pair favours neither; each pair of blocks gives one ratio.

use std::time::{Duration, Instant};

use super::baseline::Acquire;
use super::handwritten::{AsyncLoop, SyncLoop};
use super::locked::Backend;
use super::report::median;
use super::{Res, Sizes, runtime};

/// Pairs of blocks per measurement.
const BLOCKS: usize = 20;

/// What an annotated call is held to.
#[derive(Clone, Copy)]
pub enum Against {
    /// Its client kind's hand-written loop, acquiring as the call does (with a fencing
    /// token: the call is the function that binds its guard).
    Loop(Acquire),
    /// The same function without `auto_renew` (the call is the one with it; one server).
    WithoutRenewal,
}

/// One measurement of a call against what it is held to.
pub struct Paired {
    /// Calls per second over all the blocks, of the annotated call and of the other side.
    pub ours: f64,
    pub other: f64,
    /// The median of the pairs' ratios, ours to the other side's rate.
    pub median: f64,
}

/// The other side, sync.
// One per measurement, and a box would put a pointer between the loop and its connection.
#[allow(clippy::large_enum_variant)]
enum SyncOther {
    Loop(SyncLoop),
    Call(Backend),
}

impl SyncOther {
    fn connect(backend: Backend, urls: &[String], against: Against) -> Res<SyncOther> {
        Ok(match against {
            Against::Loop(acquire) => SyncOther::Loop(SyncLoop::connect(backend, urls, acquire)?),
            Against::WithoutRenewal => SyncOther::Call(backend),
        })
    }

    fn cycle(&mut self) -> Res<()> {
        match self {
            SyncOther::Loop(hand) => hand.cycle(),
            SyncOther::Call(backend) => backend
                .empty_sync("uncontended-sync")
                .map(drop)
                .map_err(Into::into),
        }
    }
}

/// [`SyncOther`] for async callers.
#[allow(clippy::large_enum_variant)] // as `SyncOther`
enum AsyncOther {
    Loop(AsyncLoop),
    Call(Backend),
}

impl AsyncOther {
    async fn connect(backend: Backend, urls: &[String], against: Against) -> Res<AsyncOther> {
        Ok(match against {
            Against::Loop(acquire) => {
                AsyncOther::Loop(AsyncLoop::connect(backend, urls, acquire).await?)
            }
            Against::WithoutRenewal => AsyncOther::Call(backend),
        })
    }

    async fn cycle(&mut self) -> Res<()> {
        match self {
            AsyncOther::Loop(hand) => hand.cycle().await,
            AsyncOther::Call(backend) => {
                backend.empty_async("uncontended-async").await?;
                Ok(())
            }
        }
    }
}

/// The blocks' times so far.
#[derive(Default)]
struct Tally {
    calls: usize,
    ours: Duration,
    other: Duration,
    ratios: Vec<f64>,
    /// The times of the pair of blocks being run, ours and the other side's.
    pair: [Duration; 2],
}

impl Tally {
    /// Which side runs first in pair `at` and which second (`true`: ours), in turn.
    fn order(at: usize) -> [bool; 2] {
        let ours_first = at.is_multiple_of(2);
        [ours_first, !ours_first]
    }

    /// Notes that a block of one side (`true`: ours) took `took`.
    fn block(&mut self, ours: bool, took: Duration) {
        self.pair[usize::from(!ours)] = took;
    }

    /// Ends a pair of blocks of `calls` calls each.
    fn pair(&mut self, calls: usize) {
        let [ours, other] = std::mem::take(&mut self.pair);
        self.calls += calls;
        self.ours += ours;
        self.other += other;
        // The same number of calls on both sides: the rates' ratio is the times' inverse.
        self.ratios.push(other.as_secs_f64() / ours.as_secs_f64());
    }

    fn done(mut self) -> Paired {
        self.ratios.sort_by(f64::total_cmp);
        Paired {
            ours: self.calls as f64 / self.ours.as_secs_f64(),
            other: self.calls as f64 / self.other.as_secs_f64(),
            median: median(&self.ratios),
        }
    }
}

/// The annotated sync `fn` on `backend` (with a guard or `auto_renew` as `against` says)
/// against what `against` names, on the servers of `urls`, on this thread.
pub fn sync(sizes: &Sizes, backend: Backend, urls: &[String], against: Against) -> Res<Paired> {
    let mut other = SyncOther::connect(backend, urls, against)?;
    let ours = || -> Res<()> {
        match against {
            Against::Loop(Acquire::Fenced) => backend.fenced_sync("uncontended-sync")?,
            Against::Loop(Acquire::Plain) => backend.empty_sync("uncontended-sync")?,
            Against::WithoutRenewal => super::locked::renewed_sync("uncontended-renewed-sync")?,
        };
        Ok(())
    };
    for _ in 0..sizes.warmup {
        ours()?;
        other.cycle()?;
    }
    let per_block = sizes.loops / BLOCKS;
    let mut tally = Tally::default();
    for at in 0..BLOCKS {
        for ours_now in Tally::order(at) {
            let start = Instant::now();
            for _ in 0..per_block {
                match ours_now {
                    true => ours()?,
                    false => other.cycle()?,
                }
            }
            tally.block(ours_now, start.elapsed());
        }
        tally.pair(per_block);
    }
    Ok(tally.done())
}

/// [`sync`] for the annotated `async fn` and the async loop, in one task of a 2-worker
/// runtime.
pub fn asynchronous(
    sizes: &Sizes,
    backend: Backend,
    urls: &[String],
    against: Against,
) -> Res<Paired> {
    let urls = urls.to_vec();
    let (warmup, per_block) = (sizes.warmup, sizes.loops / BLOCKS);
    let ours = move || async move {
        match against {
            Against::Loop(Acquire::Fenced) => backend.fenced_async("uncontended-async").await,
            Against::Loop(Acquire::Plain) => backend.empty_async("uncontended-async").await,
            Against::WithoutRenewal => {
                super::locked::renewed_async("uncontended-renewed-async").await
            }
        }
    };
    runtime()?.block_on(async move {
        tokio::spawn(async move {
            let mut other = AsyncOther::connect(backend, &urls, against).await?;
            for _ in 0..warmup {
                ours().await?;
                other.cycle().await?;
            }
            let mut tally = Tally::default();
            for at in 0..BLOCKS {
                for ours_now in Tally::order(at) {
                    let start = Instant::now();
                    for _ in 0..per_block {
                        match ours_now {
                            true => drop(ours().await?),
                            false => other.cycle().await?,
                        }
                    }
                    tally.block(ours_now, start.elapsed());
                }
                tally.pair(per_block);
            }
            Ok(tally.done())
        })
        .await?
    })
}
