#![deny(warnings)]

// A plain `fn` whose body is `Box::pin(async move { .. })`, written by hand the way
// `#[async_trait]` writes it: the lock is taken inside the future, as for an `async fn`.

use std::future::Future;
use std::pin::Pin;

use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "job:{id}")]
fn job(id: u64) -> Pin<Box<dyn Future<Output = Result<u64, LockError>> + Send>> {
    Box::pin(async move { Ok(id) })
}

fn assert_send<T: Send>(_: T) {}

fn main() {
    assert_send(job(1));
}
