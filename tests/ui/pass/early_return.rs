#![deny(warnings)]

use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "early:{n}")]
fn early(n: u32) -> Result<u32, LockError> {
    if n == 0 {
        return Ok(0);
    }
    for i in 0..n {
        if i * i > n {
            return Ok(i);
        }
    }
    Ok(n)
}

#[redis_lock(name = "early:{n}")]
async fn early_async(n: u32) -> Result<u32, LockError> {
    if n == 0 {
        return Ok(0);
    }
    let closure = |x: u32| -> Option<u32> {
        // This `return` leaves the closure, not the function.
        return x.checked_sub(1);
    };
    Ok(closure(n).unwrap_or_default())
}

fn main() {
    let _ = early;
    let _ = early_async(1);
}
