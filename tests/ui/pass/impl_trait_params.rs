#![deny(warnings)]

use std::fmt::Display;

use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "job:{id}")]
fn run(id: impl Display, steps: impl IntoIterator<Item = u32>) -> Result<u32, LockError> {
    Ok(steps.into_iter().sum())
}

#[redis_lock(name = "job:{id}")]
async fn run_async(
    id: impl Display + Send,
    steps: impl IntoIterator<Item = u32>,
) -> Result<u32, LockError> {
    Ok(steps.into_iter().sum())
}

fn main() {
    let _ = || run(1, vec![1, 2]);
    let _ = run_async(1, vec![1, 2]);
}
