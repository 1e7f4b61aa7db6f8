//! `name = [...]`: several locks taken together, async and sync, with the set's guard.
use redis_locked::{BlockingLockSetGuard, LockError, LockSetGuard, redis_lock};

#[redis_lock(name = ["account:{from}", "account:{to}"], expire = 10, guard = accounts)]
async fn transfer(from: u64, to: u64, amount: i64) -> Result<i64, LockError> {
    let accounts: &LockSetGuard = accounts;
    let _ = accounts.fencing_token(&format!("account:{from}"));
    Ok(amount + i64::try_from(to).unwrap_or(0) * 0)
}

#[redis_lock(name = ["ledger", "account:{id}"], guard = held, reentrant, timeout = 1)]
fn close(id: u64) -> Result<u64, LockError> {
    let held: &BlockingLockSetGuard = held;
    Ok(held.fencing_tokens().count() as u64 + id * 0)
}

#[redis_lock(name = ["just-one"])]
fn one() -> Result<(), LockError> {
    Ok(())
}

fn main() {
    let _ = (transfer, close, one);
}
