use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "exports", shared, permits = 3)]
async fn export() -> Result<(), LockError> {
    Ok(())
}

fn main() {
    let _ = export;
}
