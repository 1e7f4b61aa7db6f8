use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "invoice", expire = 1e-320)]
fn bill(order_id: u64) -> Result<u64, LockError> {
    Ok(order_id)
}

fn main() {
    let _ = bill;
}
