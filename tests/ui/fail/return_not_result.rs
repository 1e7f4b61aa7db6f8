use redis_locked::redis_lock;

#[redis_lock(name = "invoice:{order_id}")]
fn bill(order_id: u64) -> i32 {
    order_id as i32
}

fn main() {
    let _ = bill;
}
