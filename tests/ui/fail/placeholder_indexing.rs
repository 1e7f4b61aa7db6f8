use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "batch:{ids[0]}")]
fn process(ids: &[u64]) -> Result<usize, LockError> {
    Ok(ids.len())
}

fn main() {
    let _ = process;
}
