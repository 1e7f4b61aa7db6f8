use std::future::Future;
use std::pin::Pin;

use redis_locked::{LockError, redis_lock};

// Not `Box::pin(async move { .. })` as `#[async_trait]` writes it: a future built first,
// which the lock cannot be wrapped around.
#[redis_lock(name = "job:{id}")]
fn job(id: u64) -> Pin<Box<dyn Future<Output = Result<u64, LockError>> + Send>> {
    let future = async move { Ok(id) };
    Box::pin(future)
}

fn main() {
    let _ = job;
}
