//! One caller taking and releasing a free lock through the attribute, back to back. Each
//! function is one round of `Sizes::loops` calls after `Sizes::warmup`.

use std::time::Instant;

use super::locked::Backend;
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
    /// to the hand-written loop of their client kind measured in the same round: on a
    /// machine whose rates flip from round to round, the ratio of two best rounds is also
    /// the ratio of two loops' luck, and the median of these is not.
    pub rounds_vs_hand: [Vec<f64>; 4],
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

/// Calls per second of the annotated `async fn` on `backend` (`fenced`: the one that binds
/// its guard), in one task of a 2-worker runtime.
pub fn async_rate(sizes: &Sizes, backend: Backend, fenced: bool) -> Res<f64> {
    let (warmup, loops) = (sizes.warmup, sizes.loops);
    let call = move || async move {
        match fenced {
            true => backend.fenced_async("uncontended-async").await,
            false => backend.empty_async("uncontended-async").await,
        }
    };
    runtime()?.block_on(async move {
        tokio::spawn(async move {
            for _ in 0..warmup {
                call().await?;
            }
            let start = Instant::now();
            for _ in 0..loops {
                call().await?;
            }
            Ok(loops as f64 / start.elapsed().as_secs_f64())
        })
        .await?
    })
}

/// Calls per second of the annotated sync `fn` on `backend` (`fenced`: the one that binds
/// its guard), on this thread.
pub fn sync_rate(sizes: &Sizes, backend: Backend, fenced: bool) -> Res<f64> {
    let call = || match fenced {
        true => backend.fenced_sync("uncontended-sync"),
        false => backend.empty_sync("uncontended-sync"),
    };
    for _ in 0..sizes.warmup {
        call()?;
    }
    let start = Instant::now();
    for _ in 0..sizes.loops {
        call()?;
    }
    Ok(sizes.loops as f64 / start.elapsed().as_secs_f64())
}
