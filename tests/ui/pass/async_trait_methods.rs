#![deny(warnings)]

// `#[redis_lock]` on methods that `#[async_trait]` (on the trait or impl, so expanded
// first) has turned into `fn .. -> Pin<Box<dyn Future>>`: the shapes of `async fn`s.

use std::fmt::Display;

use async_trait::async_trait;
use redis_locked::{LockError, redis_lock};

#[derive(Debug)]
struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

#[async_trait]
trait Store {
    async fn put(&mut self, key: u64, value: String) -> Result<(), AppError>;
    async fn get(&self, key: u64) -> Result<Option<String>, LockError>;
    async fn drain(self) -> Result<usize, LockError>;
    async fn label<T: Display + Send>(&self, label: T) -> Result<String, LockError>;
    async fn first(&self, pair: (u64, u64)) -> Result<u64, LockError>;
}

struct Memory {
    id: u64,
    values: Vec<(u64, String)>,
}

impl Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.id)
    }
}

fn check(key: u64) -> Result<u64, LockError> {
    Ok(key)
}

#[async_trait]
impl Store for Memory {
    #[redis_lock(name = "store:{self.id}:{key}", on_lost = "abort")]
    async fn put(&mut self, key: u64, value: String) -> Result<(), AppError> {
        let key = check(key)?;
        if value.is_empty() {
            return Err(AppError);
        }
        self.values.push((key, value));
        Ok(())
    }

    #[redis_lock(name = "store:{self}:{key}", guard = lock)]
    async fn get(&self, key: u64) -> Result<Option<String>, LockError> {
        let _ = lock.fencing_token();
        Ok(self.values.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()))
    }

    #[redis_lock(name = "store:{self}", expire = 5, timeout = 1)]
    async fn drain(self) -> Result<usize, LockError> { Ok(self.values.len()) }

    #[redis_lock(name = "label:{label}")]
    async fn label<T: Display + Send>(&self, label: T) -> Result<String, LockError> {
        Ok(label.to_string())
    }

    #[redis_lock(name = "first:{pair.0}")]
    async fn first(&self, pair: (u64, u64)) -> Result<u64, LockError> {
        Ok(pair.0)
    }
}

fn assert_send<T: Send>(_: T) {}

fn main() {
    let mut memory = Memory {
        id: 1,
        values: Vec::new(),
    };
    assert_send(memory.put(1, String::new()));
    assert_send(memory.get(1));
    assert_send(memory.label("x"));
    assert_send(memory.first((1, 2)));
    assert_send(memory.drain());
}
