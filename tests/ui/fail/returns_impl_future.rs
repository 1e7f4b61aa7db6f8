use std::future::Future;

use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "job:{id}")]
fn job(id: u64) -> impl Future<Output = Result<u64, LockError>> {
    async move { Ok(id) }
}

fn main() {
    let _ = job;
}
