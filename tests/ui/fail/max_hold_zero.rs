use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "report", max_hold = 0, auto_renew)]
fn report() -> Result<(), LockError> {
    Ok(())
}

fn main() {
    let _ = report;
}
