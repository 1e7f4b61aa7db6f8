//! One clock for every timestamp of the run, comparable across processes.
//!
//! `Instant` cannot leave its process, and `SystemTime` alone may step mid-run. So each
//! process reads the wall clock once and advances it with the monotonic clock: timestamps
//! of one process are exactly ordered, and those of different processes agree to within
//! the precision of that one wall-clock reading (microseconds or better).

use std::sync::LazyLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

static EPOCH: LazyLock<(Instant, u64)> = LazyLock::new(|| {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    (Instant::now(), wall.as_nanos() as u64)
});

/// Nanoseconds since the UNIX epoch.
pub fn now_ns() -> u64 {
    let (start, wall) = *EPOCH;
    wall + start.elapsed().as_nanos() as u64
}
