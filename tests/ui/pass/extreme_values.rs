#![deny(warnings)]

//! Values at the edges of what `expire` and `timeout` accept.

use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "year", expire = 31536000)]
fn one_year_lease() -> Result<(), LockError> {
    Ok(())
}

// The longest lease: 18446744073 s, what `u64` nanoseconds hold (about 584 years).
#[redis_lock(name = "longest", expire = 18446744073, timeout = 18446744073)]
async fn longest_lease_and_timeout() -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(name = "once", timeout = 0.0)]
fn single_attempt_float() -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(name = "separators", expire = 1_000)]
fn digit_separators() -> Result<(), LockError> {
    Ok(())
}

// 16 seconds.
#[redis_lock(name = "hex", expire = 0x10)]
fn hex_expire() -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(name = "exponent", expire = 1.5e3, timeout = 1e-3)]
async fn exponents() -> Result<(), LockError> {
    Ok(())
}

fn main() {
    let _ = one_year_lease;
    let _ = longest_lease_and_timeout();
    let _ = single_attempt_float;
    let _ = digit_separators;
    let _ = hex_expire;
    let _ = exponents();
}
