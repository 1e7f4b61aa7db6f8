use redis_locked::{LockError, redis_lock};

struct Request {
    id: u64,
}

#[redis_lock(name = "request:{req.identifier}")]
fn handle(req: &Request) -> Result<u64, LockError> {
    Ok(req.id)
}

fn main() {
    let _ = handle;
}
