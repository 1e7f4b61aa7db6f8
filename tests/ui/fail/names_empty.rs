use redis_locked::{LockError, redis_lock};

#[redis_lock(name = [])]
fn job(id: u64) -> Result<u64, LockError> {
    Ok(id)
}

fn main() {
    let _ = job;
}
