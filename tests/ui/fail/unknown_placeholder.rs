use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "invoice:{order}")]
fn bill(order_id: u64, customer: &str) -> Result<u64, LockError> {
    let _ = customer;
    Ok(order_id)
}

fn main() {
    let _ = bill;
}
