use redis_locked::redis_lock;

#[redis_lock(name = "invoice")]
pub struct Invoice {
    pub order_id: u64,
}

fn main() {
    let _ = Invoice { order_id: 1 };
}
