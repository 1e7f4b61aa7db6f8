#![deny(warnings)]

use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "abort:{id}", auto_renew, on_lost = "abort")]
async fn stops_when_lost(id: u64) -> Result<u64, LockError> {
    if id == 0 {
        return Ok(0);
    }
    Ok(id)
}

#[redis_lock(name = "continue", on_lost = "continue")]
async fn runs_on(id: u64) -> Result<u64, LockError> {
    Ok(id)
}

#[redis_lock(name = "continue-sync", on_lost = "continue")]
fn runs_on_sync() -> Result<(), LockError> {
    Ok(())
}

fn assert_send<T: Send>(_: T) {}

fn main() {
    assert_send(stops_when_lost(1));
}
