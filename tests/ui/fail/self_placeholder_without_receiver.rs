use redis_locked::{LockError, redis_lock};

struct Invoice;

impl Invoice {
    #[redis_lock(name = "invoice:{self}")]
    fn bill(order_id: u64) -> Result<u64, LockError> {
        Ok(order_id)
    }
}

fn main() {
    let _ = Invoice::bill;
}
