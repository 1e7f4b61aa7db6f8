#![deny(warnings)]

use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "invoice:{order_id}", expire = 10, auto_renew)]
async fn bill(order_id: u64) -> Result<u64, LockError> {
    tokio::task::yield_now().await;
    Ok(order_id * 100)
}

fn main() {
    // Building the future runs nothing: the lock is only taken when it is polled.
    let _future = bill(42);
}
