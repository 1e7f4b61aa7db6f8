use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "exports", permits = 0)]
async fn export() -> Result<(), LockError> {
    Ok(())
}

fn main() {
    let _ = export;
}
