use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "report", on_lost = "abrot")]
async fn report() -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(name = "report", on_lost = "panic")]
async fn other() -> Result<(), LockError> {
    Ok(())
}

fn main() {}
