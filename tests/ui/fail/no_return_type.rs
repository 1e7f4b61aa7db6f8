use redis_locked::redis_lock;

#[redis_lock(name = "invoice:{order_id}")]
fn bill(order_id: u64) {
    println!("{order_id}");
}

fn main() {
    let _ = bill;
}
