use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "report", on_lost = "abort")]
fn report() -> Result<(), LockError> {
    Ok(())
}

fn main() {}
