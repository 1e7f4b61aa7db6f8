#![deny(warnings)]

use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "float", expire = 0.25)]
fn float_expire() -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(name = "ms", expire = 0.001, timeout = 0.5)]
fn millisecond_expire() -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(name = "no-renew", expire = 30, auto_renew = false)]
fn no_renew() -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(name = "renew", auto_renew = true)]
fn renew() -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(name = "once", timeout = 0)]
fn single_attempt() -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(name = "billing", client = "billing")]
async fn other_client() -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(
    client = "billing",
    timeout = 2.5,
    auto_renew,
    expire = 60,
    name = "all:{id}"
)]
async fn every_argument(id: u64) -> Result<(), LockError> {
    let _ = id;
    Ok(())
}

#[redis_lock(name = "{{literal}}:{id}:{id:>04}:{{{id}}}:{id:?}")]
fn braces_and_specs(id: u64) -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(name = r"raw:{mut_param}:\d")]
fn raw_string_and_mut(mut mut_param: u32) -> Result<u32, LockError> {
    mut_param += 1;
    Ok(mut_param)
}

#[redis_lock(name = "raw-ident:{type}:{r#match}")]
fn raw_idents(r#type: u8, r#match: u8) -> Result<u8, LockError> {
    Ok(r#type + r#match)
}

fn main() {
    let _ = float_expire;
    let _ = millisecond_expire;
    let _ = no_renew;
    let _ = renew;
    let _ = single_attempt;
    let _ = other_client();
    let _ = every_argument(1);
    let _ = braces_and_specs;
    let _ = raw_string_and_mut;
    let _ = raw_idents;
}
