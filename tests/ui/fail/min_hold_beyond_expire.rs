use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "report", expire = 10, min_hold = 30)]
fn report() -> Result<(), LockError> {
    Ok(())
}

fn main() {
    let _ = report;
}
