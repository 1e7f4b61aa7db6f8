use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "job:{id}", guard = id)]
async fn job(id: u64) -> Result<u64, LockError> {
    Ok(id)
}

#[redis_lock(name = "pair", guard = b)]
fn pair((a, b): (u8, u8)) -> Result<u8, LockError> {
    Ok(a + b)
}

fn main() {}
