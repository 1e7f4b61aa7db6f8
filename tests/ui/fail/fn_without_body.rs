use redis_locked::{LockError, redis_lock};

pub trait Billing {
    #[redis_lock(name = "invoice:{order_id}")]
    fn bill(&self, order_id: u64) -> Result<u64, LockError>;
}

fn main() {}
