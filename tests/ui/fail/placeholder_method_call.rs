use redis_locked::{LockError, redis_lock};

struct Request {
    id: u64,
}

impl Request {
    fn id(&self) -> u64 {
        self.id
    }
}

#[redis_lock(name = "request:{req.id()}")]
fn handle(req: &Request) -> Result<u64, LockError> {
    Ok(req.id())
}

fn main() {
    let _ = handle;
}
