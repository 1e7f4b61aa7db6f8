use redis_locked::redis_lock;

#[redis_lock(name = "invoice:{order_id}")]
async fn bill(order_id: u64) -> Option<u64> {
    Some(order_id)
}

fn main() {
    let _ = bill(1);
}
