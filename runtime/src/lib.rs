//! Declarative distributed locks on Redis.
//!
//! ```no_run
//! use redis_locked::{redis_lock, LockError};
//!
//! #[redis_lock(name = "invoice:{order_id}", expire = 10, auto_renew)]
//! async fn bill(order_id: u64) -> Result<u64, LockError> {
//!     // Only one process at a time runs this for a given order_id.
//!     Ok(order_id)
//! }
//!
//! # async fn start() -> Result<(), LockError> {
//! redis_locked::init("redis://127.0.0.1:6379")?;
//! bill(42).await?;
//! # Ok(()) }
//! ```
//!
//! Configure Redis once at start-up with [`init`] (and [`register`] for more servers), then
//! annotate functions with [`macro@redis_lock`], or use [`Lock`] directly. See the
//! attribute's documentation for every argument and for the code it expands to.
#![warn(missing_docs)]

mod background;
mod block_on;
mod call;
mod cleanup;
mod client;
mod cluster;
mod conn;
mod error;
mod guard;
mod holder;
mod inspect;
mod io;
mod lock;
mod metrics;
mod pool;
mod reachability;
mod redlock;
mod registry;
mod resp;
mod scan;
mod scripts;
mod sentinel;
mod subscriber;
#[cfg(feature = "tls")]
mod tls;
mod token;
mod waiters;

#[doc(hidden)]
pub mod __private;

pub use error::LockError;
pub use guard::{BlockingLockGuard, LockGuard};
pub use holder::Holder;
pub use inspect::{LockInfo, list_locks, list_locks_blocking};
pub use lock::{Lock, reset_all, reset_all_blocking};
pub use registry::{ClientBuilder, DEFAULT_CLIENT, init, register};

#[doc(inline)]
pub use redis_locked_macros::redis_lock;

/// The `redis` crate this one is built on, so that callers can name its types, such as
/// the [`RedisError`](redis::RedisError) inside [`LockError::Redis`] and
/// [`LockError::Connect`], without depending on a matching version themselves.
pub use redis;
