use redis_locked::redis_lock;

#[derive(Debug)]
pub struct AppError;

#[redis_lock(name = "invoice:{order_id}")]
pub fn bill(order_id: u64) -> Result<u64, AppError> {
    Ok(order_id)
}

fn main() {
    let _ = bill;
}
