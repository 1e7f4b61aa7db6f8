use async_trait::async_trait;
use redis_locked::{LockError, redis_lock};

#[async_trait]
trait Ranges {
    async fn sum(&self, range: (u64, u64)) -> Result<u64, LockError>;
}

struct Adder;

#[async_trait]
impl Ranges for Adder {
    #[redis_lock(name = "range:{start}")]
    async fn sum(&self, (start, end): (u64, u64)) -> Result<u64, LockError> {
        Ok(start + end)
    }
}

fn main() {
    let _ = Adder.sum((1, 2));
}
