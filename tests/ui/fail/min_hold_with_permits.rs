use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "exports", permits = 3, min_hold = 10)]
async fn export() -> Result<(), LockError> {
    Ok(())
}

fn main() {
    let _ = export;
}
