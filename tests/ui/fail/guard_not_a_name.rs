use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "job", guard = "lock")]
async fn job() -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(name = "other", guard = self)]
fn other() -> Result<(), LockError> {
    Ok(())
}

fn main() {}
