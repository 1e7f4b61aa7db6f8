//! One caller taking and releasing a free lock through the attribute, back to back. Each
//! function is one round of `Sizes::loops` calls after `Sizes::warmup`.

use std::time::Instant;

use super::locked::Backend;
use super::{Res, Sizes, runtime};

/// Calls per second, the best of the rounds.
pub struct Uncontended {
    pub async_calls: f64,
    pub sync_calls: f64,
}

/// Calls per second of the annotated `async fn` on `backend`, in one task of a 2-worker
/// runtime.
pub fn async_rate(sizes: &Sizes, backend: Backend) -> Res<f64> {
    let (warmup, loops) = (sizes.warmup, sizes.loops);
    runtime()?.block_on(async move {
        tokio::spawn(async move {
            for _ in 0..warmup {
                backend.empty_async("uncontended-async").await?;
            }
            let start = Instant::now();
            for _ in 0..loops {
                backend.empty_async("uncontended-async").await?;
            }
            Ok(loops as f64 / start.elapsed().as_secs_f64())
        })
        .await?
    })
}

/// Calls per second of the annotated sync `fn` on `backend`, on this thread.
pub fn sync_rate(sizes: &Sizes, backend: Backend) -> Res<f64> {
    for _ in 0..sizes.warmup {
        backend.empty_sync("uncontended-sync")?;
    }
    let start = Instant::now();
    for _ in 0..sizes.loops {
        backend.empty_sync("uncontended-sync")?;
    }
    Ok(sizes.loops as f64 / start.elapsed().as_secs_f64())
}
