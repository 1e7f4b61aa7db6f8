#![deny(warnings)]

use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "report:{day}")]
fn build_report(day: u32) -> Result<String, LockError> {
    Ok(format!("report for day {day}"))
}

fn main() {
    let _: fn(u32) -> Result<String, LockError> = build_report;
}
