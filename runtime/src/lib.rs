// The crate's front page is the README, so that crates.io, docs.rs and the repository show one
// text, and every Rust example in it is compiled as a doctest.
#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
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
mod inspect;
mod io;
mod lock;
mod metrics;
mod pool;
mod redlock;
mod registry;
mod resp;
mod scan;
mod scope;
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
pub use inspect::{LockInfo, list_locks, list_locks_blocking};
pub use lock::{Lock, reset_all, reset_all_blocking};
pub use registry::{ClientBuilder, DEFAULT_CLIENT, init, register};
pub use scope::{Client, ClientScopeGuard};

#[doc(inline)]
pub use redis_locked_macros::redis_lock;
