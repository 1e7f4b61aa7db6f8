use redis_locked::{LockError, redis_lock};

// Every check of the arguments against the function is reported, not only the first.
#[redis_lock(name = "job:{job}", on_lost = "abort", guard = id)]
fn job(id: u64) -> Result<u64, LockError> {
    Ok(id)
}

fn main() {}
