//! The expansion adds no warning to the user's code: the typical shapes of annotated
//! functions (one-line bodies, methods, generics, `guard`, `?` and early returns,
//! `impl Trait`, `#[async_trait]`, `#[tracing::instrument]` on either side), compiled
//! under `deny(warnings)` (checked by every `cargo test`) and `deny(clippy::pedantic)`
//! (checked by `cargo clippy -p redis-locked-tests --test lint_clean`). One-line bodies
//! matter most: as the tail of a generated block, `{ Ok(x) }` used to trip `unused_braces`,
//! whose suggested fix does not compile. The functions are then called against a real server,
//! so the shapes are not only accepted but work. `rustfmt::skip` keeps the one-line
//! bodies on one line, which is what the lint looked at.
#![deny(warnings)]
#![deny(clippy::pedantic)]

use std::fmt::Display;

use redis_locked::{LockError, redis_lock};
use redis_locked_tests::RedisServer;

const CLIENT: &str = "lint";

#[derive(Debug)]
enum AppError {
    Lock(LockError),
    Empty,
}

impl Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::Lock(error) => write!(f, "{error}"),
            AppError::Empty => f.write_str("empty"),
        }
    }
}

impl From<LockError> for AppError {
    fn from(error: LockError) -> Self {
        AppError::Lock(error)
    }
}

#[rustfmt::skip]
#[redis_lock(name = "one-line:{x}", client = "lint")]
fn one_line(x: u64) -> Result<u64, LockError> { Ok(x) }

#[rustfmt::skip]
#[redis_lock(name = "one-line:{x}", client = "lint")]
async fn one_line_async(x: u64) -> Result<u64, LockError> { Ok(x) }

#[rustfmt::skip]
#[redis_lock(name = "unit", client = "lint", expire = 5, timeout = 1)]
fn unit() -> Result<(), LockError> { Ok(()) }

#[rustfmt::skip]
#[redis_lock(name = "unit", client = "lint", expire = 5, timeout = 1)]
async fn unit_async() -> Result<(), LockError> { Ok(()) }

#[rustfmt::skip]
#[redis_lock(name = ["pair:{a}", "pair:{b}"], client = "lint", guard = both, min_hold = 0.01, max_hold = 60)]
fn pair(a: u64, b: u64) -> Result<u64, LockError> { Ok(both.fencing_tokens().count() as u64 + a + b) }

#[rustfmt::skip]
#[redis_lock(name = ["pair:{a}", "pair:{b}"], client = "lint", on_lost = "abort")]
async fn pair_async(a: u64, b: u64) -> Result<u64, LockError> { Ok(a + b) }

struct Account {
    id: u64,
    balance: i64,
}

impl Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.id)
    }
}

impl Account {
    #[rustfmt::skip]
    #[redis_lock(name = "account:{self}", client = "lint")]
    fn balance(&self) -> Result<i64, LockError> { Ok(self.balance) }

    #[redis_lock(name = "account:{self}", client = "lint")]
    fn deposit(&mut self, amount: i64) -> Result<i64, LockError> {
        self.balance += amount;
        Ok(self.balance)
    }

    #[rustfmt::skip]
    #[redis_lock(name = "account:{self}", client = "lint")]
    fn close(self) -> Result<i64, LockError> { Ok(self.balance) }

    #[rustfmt::skip]
    #[redis_lock(name = "account:{self}", client = "lint")]
    async fn balance_async(&self) -> Result<i64, LockError> { Ok(self.balance) }

    #[redis_lock(name = "account:{self}", client = "lint")]
    async fn deposit_async(&mut self, amount: i64) -> Result<i64, LockError> {
        self.balance += amount;
        Ok(self.balance)
    }

    #[rustfmt::skip]
    #[redis_lock(name = "account:{self}", client = "lint")]
    async fn close_async(self) -> Result<i64, LockError> { Ok(self.balance) }
}

#[rustfmt::skip]
#[redis_lock(name = "generic:{key}", client = "lint")]
fn generic<K: Display, V: Clone>(key: &K, value: &V) -> Result<V, LockError> { Ok(value.clone()) }

#[redis_lock(name = "generic:{key}", client = "lint")]
async fn generic_async<K>(key: K) -> Result<K, LockError>
where
    K: Display + Send,
{
    Ok(key)
}

#[rustfmt::skip]
#[redis_lock(name = "fenced", client = "lint", expire = 5, guard = lock)]
fn fenced() -> Result<u64, LockError> { Ok(lock.fencing_token()) }

#[rustfmt::skip]
#[redis_lock(name = "fenced", client = "lint", expire = 5, guard = lock)]
async fn fenced_async() -> Result<u64, LockError> { Ok(lock.fencing_token()) }

#[redis_lock(name = "parse:{text}", client = "lint")]
fn parse(text: &str) -> Result<u64, AppError> {
    if text.is_empty() {
        return Err(AppError::Empty);
    }
    let value = one_line(text.len() as u64)?;
    Ok(value)
}

#[redis_lock(name = "parse:{text}", client = "lint")]
async fn parse_async(text: &str) -> Result<u64, AppError> {
    if text.is_empty() {
        return Err(AppError::Empty);
    }
    let value = one_line_async(text.len() as u64).await?;
    Ok(value)
}

#[redis_lock(name = "shown", client = "lint")]
fn shown(items: impl IntoIterator<Item = u64>) -> Result<impl Display, LockError> {
    Ok(items.into_iter().sum::<u64>())
}

#[redis_lock(name = "shown", client = "lint")]
async fn shown_async(items: Vec<u64>) -> Result<impl Display, LockError> {
    Ok(items.into_iter().sum::<u64>())
}

#[async_trait::async_trait]
trait Balance {
    async fn balance_of(&self, id: u64) -> Result<i64, LockError>;
}

#[async_trait::async_trait]
impl Balance for Account {
    #[rustfmt::skip]
    #[redis_lock(name = "account:{id}", client = "lint")]
    async fn balance_of(&self, id: u64) -> Result<i64, LockError> { Ok(self.balance + id.cast_signed()) }
}

#[rustfmt::skip]
#[redis_lock(name = "traced:{x}", client = "lint")]
#[tracing::instrument]
async fn traced_inside(x: u64) -> Result<u64, LockError> { Ok(x) }

#[rustfmt::skip]
#[tracing::instrument]
#[redis_lock(name = "traced:{x}", client = "lint")]
fn traced_outside(x: u64) -> Result<u64, LockError> { Ok(x) }

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shape_runs() {
    let server = RedisServer::start();
    redis_locked::register(CLIENT, &server.url()).unwrap();

    assert_eq!(one_line_async(3).await.unwrap(), 3);
    unit_async().await.unwrap();
    assert_eq!(pair_async(1, 2).await.unwrap(), 3);
    let mut account = Account { id: 1, balance: 10 };
    assert_eq!(account.balance_async().await.unwrap(), 10);
    assert_eq!(account.deposit_async(5).await.unwrap(), 15);
    assert_eq!(account.close_async().await.unwrap(), 15);
    assert_eq!(generic_async("k").await.unwrap(), "k");
    assert!(fenced_async().await.unwrap() >= 1);
    assert_eq!(parse_async("abc").await.unwrap(), 3);
    assert!(matches!(parse_async("").await, Err(AppError::Empty)));
    assert_eq!(shown_async(vec![1, 2]).await.unwrap().to_string(), "3");
    let account = Account { id: 3, balance: 4 };
    assert_eq!(account.balance_of(1).await.unwrap(), 5);
    assert_eq!(traced_inside(6).await.unwrap(), 6);

    tokio::task::spawn_blocking(|| {
        assert_eq!(one_line(4).unwrap(), 4);
        assert_eq!(pair(1, 2).unwrap(), 5);
        unit().unwrap();
        let mut account = Account { id: 2, balance: 1 };
        assert_eq!(account.balance().unwrap(), 1);
        assert_eq!(account.deposit(2).unwrap(), 3);
        assert_eq!(account.close().unwrap(), 3);
        assert_eq!(generic(&"k", &7).unwrap(), 7);
        assert!(fenced().unwrap() >= 1);
        assert_eq!(parse("ab").unwrap(), 2);
        assert!(matches!(parse(""), Err(AppError::Empty)));
        assert_eq!(shown([1, 2, 3]).unwrap().to_string(), "6");
        assert_eq!(traced_outside(7).unwrap(), 7);
    })
    .await
    .unwrap();
    drop(server);
}
