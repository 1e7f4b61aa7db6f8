use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "report", max_hold = 60, min_hold = 120)]
fn report() -> Result<(), LockError> {
    Ok(())
}

fn main() {
    let _ = report;
}
