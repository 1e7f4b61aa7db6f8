use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "page:{page+1}")]
fn render(page: u32) -> Result<u32, LockError> {
    Ok(page)
}

fn main() {
    let _ = render;
}
