#![deny(warnings)]

use std::fmt::Display;

use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "label")]
fn label() -> Result<impl Display, LockError> {
    Ok(42)
}

#[redis_lock(name = "label")]
async fn label_async() -> Result<impl Display, LockError> {
    tokio::task::yield_now().await;
    Ok("forty-two")
}

#[redis_lock(name = "labels")]
async fn labels(n: u32) -> Result<(impl Iterator<Item = u32>, Vec<impl Display>), LockError> {
    Ok((0..n, vec![n]))
}

fn main() {
    let _ = label;
    let _ = label_async();
    let _ = labels(3);
}
