//! `permits = N` and `shared`, async and sync, with a guard and the other arguments.
use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "exports:{region}", permits = 3, expire = 60, timeout = 5, guard = permit)]
async fn export(region: &str) -> Result<u64, LockError> {
    Ok(permit.fencing_token() + region.len() as u64 * 0)
}

#[redis_lock(name = "catalog", shared, max_hold = 600)]
fn read_catalog() -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(name = "catalog", permits = 1)]
fn write_catalog() -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(name = ["a", "b"], shared = false, permits = 2)]
fn both() -> Result<(), LockError> {
    Ok(())
}

fn main() {
    let _ = (export, read_catalog, write_catalog, both);
}
