use redis_locked::{LockError, redis_lock};

pub struct OrderId(pub u64);

#[redis_lock(name = "invoice:{order_id}")]
pub fn bill(order_id: OrderId) -> Result<u64, LockError> {
    Ok(order_id.0)
}

fn main() {
    let _ = bill;
}
