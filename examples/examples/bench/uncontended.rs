//! One caller taking and releasing a free lock through the attribute, back to back: the
//! figures of the rounds (each measured against its hand-written loop in paired.rs), and
//! the functions with `auto_renew`, one round of `Sizes::loops` calls after
//! `Sizes::warmup` each.

use std::time::Instant;

use super::paired::Paired;
use super::{Res, Sizes, runtime};

/// Calls per second, the best of the rounds: of the functions that take no fencing token
/// (no guard bound) and of those that do.
pub struct Uncontended {
    pub async_calls: f64,
    pub sync_calls: f64,
    pub fenced_async_calls: f64,
    pub fenced_sync_calls: f64,
    /// Of the functions with `auto_renew`, one server only (0 for the other kinds).
    pub renewed_async_calls: f64,
    pub renewed_sync_calls: f64,
    /// Each round's ratio of the four calls above (async, sync, fenced async, fenced sync)
    /// to the hand-written loop of their client kind, measured beside it in blocks taken in
    /// turn (the median of the round's pairs of blocks, see paired.rs): on a machine whose
    /// rates flip from round to round, the ratio of two best rounds is also the ratio of
    /// two loops' luck, and these are not.
    pub rounds_vs_hand: [Vec<f64>; 4],
}

impl Uncontended {
    /// Keeps the round's figures of call `at` (0 async, 1 sync, 2 fenced async, 3 fenced
    /// sync).
    pub fn keep(&mut self, at: usize, paired: &Paired) {
        let best = match at {
            0 => &mut self.async_calls,
            1 => &mut self.sync_calls,
            2 => &mut self.fenced_async_calls,
            _ => &mut self.fenced_sync_calls,
        };
        *best = best.max(paired.ours);
        self.rounds_vs_hand[at].push(paired.median);
    }
}

/// Calls per second of the annotated functions with `auto_renew` on the default client,
/// async (in a task of a 2-worker runtime) and sync (on this thread).
pub fn renewed_rates(sizes: &Sizes) -> Res<(f64, f64)> {
    let (warmup, loops) = (sizes.warmup, sizes.loops);
    let async_calls = runtime()?.block_on(async move {
        tokio::spawn(async move {
            for _ in 0..warmup {
                super::locked::renewed_async("uncontended-renewed-async").await?;
            }
            let start = Instant::now();
            for _ in 0..loops {
                super::locked::renewed_async("uncontended-renewed-async").await?;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                loops as f64 / start.elapsed().as_secs_f64(),
            )
        })
        .await?
    })?;
    for _ in 0..warmup {
        super::locked::renewed_sync("uncontended-renewed-sync")?;
    }
    let start = Instant::now();
    for _ in 0..loops {
        super::locked::renewed_sync("uncontended-renewed-sync")?;
    }
    Ok((async_calls, loops as f64 / start.elapsed().as_secs_f64()))
}
