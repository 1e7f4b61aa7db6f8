use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "report", min_hold = 0)]
fn report() -> Result<(), LockError> {
    Ok(())
}

fn main() {
    let _ = report;
}
