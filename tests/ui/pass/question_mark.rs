#![deny(warnings)]

use redis_locked::{LockError, redis_lock};

#[derive(Debug)]
#[allow(dead_code)]
enum AppError {
    Lock(LockError),
    Parse(std::num::ParseIntError),
}

impl From<LockError> for AppError {
    fn from(error: LockError) -> Self {
        AppError::Lock(error)
    }
}

impl From<std::num::ParseIntError> for AppError {
    fn from(error: std::num::ParseIntError) -> Self {
        AppError::Parse(error)
    }
}

#[redis_lock(name = "parse:{input}")]
fn parse(input: &str) -> Result<u64, AppError> {
    let n: u64 = input.parse()?;
    Ok(n)
}

#[redis_lock(name = "parse:{input}")]
async fn parse_async(input: String) -> Result<u64, AppError> {
    let n: u64 = input.parse()?;
    tokio::task::yield_now().await;
    Ok(n + parse(&input)?)
}

// `?` into a boxed error needs the body's output type to be known while the body is
// checked, not inferred from it afterwards.
#[redis_lock(name = "boxed")]
async fn boxed(input: String) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    if input.is_empty() {
        return Err("empty".into());
    }
    Ok(input.parse::<u64>()?)
}

fn main() {
    let _ = parse;
    let _ = parse_async(String::new());
    let _ = boxed(String::new());
}
