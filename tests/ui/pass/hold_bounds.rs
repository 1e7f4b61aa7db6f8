//! `max_hold` and `min_hold`, with what they need: a renewed lease, and `min_hold` within
//! `max_hold` (and within `expire` when the lease is not renewed).
use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "report", timeout = 0, min_hold = 60, max_hold = 3600)]
async fn nightly_report() -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(name = "export", expire = 10, auto_renew, max_hold = 0.5)]
fn export() -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(name = "tick", expire = 30, min_hold = 30)]
fn tick() -> Result<(), LockError> {
    Ok(())
}

fn main() {
    let _ = (nightly_report, export, tick);
}
