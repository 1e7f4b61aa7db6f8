#![deny(warnings)]

use std::time::Duration;

use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "job:{id}", guard = lock)]
async fn async_job(id: u64) -> Result<u64, LockError> {
    lock.extend(Some(Duration::from_secs(30))).await?;
    if lock.is_lost() || lock.remaining_lease().is_zero() {
        return Ok(0);
    }
    tokio::select! {
        () = lock.lost() => Ok(0),
        () = std::future::ready(()) => Ok(id + lock.fencing_token()),
    }
}

#[redis_lock(name = "sync-job:{id}", guard = held, reentrant)]
fn sync_job(id: u64) -> Result<u64, LockError> {
    held.extend(None)?;
    let _ = held.wait_lost(Duration::ZERO);
    Ok(id + held.fencing_token())
}

struct Worker;

impl Worker {
    #[redis_lock(name = "worker:{self}", guard = lock, reentrant = true)]
    async fn run(&self) -> Result<u64, LockError> {
        Ok(lock.fencing_token())
    }
}

impl std::fmt::Display for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("w")
    }
}

fn assert_send<T: Send>(_: T) {}

fn main() {
    assert_send(async_job(1));
    assert_send(Worker.run());
    let _ = sync_job;
}
