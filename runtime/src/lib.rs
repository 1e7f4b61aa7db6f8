// The crate's front page is the README, so that crates.io, docs.rs and the repository show one
// text, and every Rust example in it is compiled as a doctest.
#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

// Module map: the runtime in layers, each importing only from the layers below it
// (`tests/tests/architecture.rs` checks this, and lists the same files):
//
// generated code  call (+ call/held_here), __private, __transport, __backend: what
//                 `#[redis_lock]`'s expansion calls, the bench's view of the transport, and
//                 single backend operations for the differential test; not public API
// api             lock (`Lock`), guard (`LockGuard`, `BlockingLockGuard`), builder
//                 (`ClientBuilder`), registry, scope (`Client`), inspect (`list_locks`)
// algorithm       acquire (+ acquire/spec, acquire/attempts): the acquisition loop; held: a
//                 held lock; release: its release and handover; renewal: its lease and
//                 auto-renewal; cleanup: background releases
// client          client: one configured client (its backend, wait table and subscriber)
// waiting         waiters (+ ticket: a waiter's place; handover: a lock passed to the head):
//                 the in-process wait table; listener, subscriber, cluster/pubsub:
//                 release announcements, given the wait table and the backend, not the client
// backends        backend: where locks live, one enum with one arm per kind in every
//                 operation; redlock, cluster/replicas, scan
// servers         single (one server, fixed or Sentinel-managed), cluster (+ cluster/resend),
//                 memory (a store in this process, answering as the scripts do), io (sync
//                 and async requests to a `Route`)
// protocol        scripts: the Lua scripts, what they answer, when they may be resent
// transport       conn, pool (+ pool/slots), resp, tls, server, sentinel
// utilities       error, lease, keys, token, holder, url, block_on, background, metrics,
//                 reachability, sync

mod acquire;
mod backend;
mod background;
mod block_on;
mod builder;
mod call;
mod cleanup;
mod client;
mod cluster;
mod conn;
mod endpoint;
mod error;
mod guard;
mod handover;
mod held;
mod holder;
mod inspect;
mod io;
mod keys;
mod lease;
mod listener;
mod lock;
mod memory;
mod metrics;
mod pool;
mod reachability;
mod redlock;
mod registry;
mod release;
mod renewal;
mod reply;
mod scan;
mod scope;
mod scripts;
mod sentinel;
mod server;
mod single;
mod subscriber;
mod sync;
mod ticket;
mod tls;
mod token;
mod url;
mod waiters;

#[doc(hidden)]
pub mod __backend;
#[doc(hidden)]
pub mod __private;
#[doc(hidden)]
pub mod __transport;

pub use builder::{ClientBuilder, init, register};
pub use client::DEFAULT_CLIENT;
pub use error::LockError;
pub use guard::{BlockingLockGuard, LockGuard};
pub use holder::Holder;
pub use inspect::{LockInfo, list_locks, list_locks_blocking};
pub use lock::{Lock, reset_all, reset_all_blocking};
pub use scope::{Client, ClientScopeGuard};

// The attribute's documentation lives here rather than in the macros crate, so that its
// examples are doctests that can use this crate. The expansion listing at its end is the
// file the macros crate's snapshot test keeps current; its hidden lines give it what the
// example at the top of the documentation defines, so it compiles too.
#[doc(inline)]
#[doc = include_str!("../doc/attribute.md")]
#[doc = concat!(
    "```\n",
    "# use redis_locked::LockError;\n",
    "# #[derive(Debug)] struct AppError;\n",
    "# impl From<LockError> for AppError { fn from(_: LockError) -> Self { AppError } }\n",
    "# async fn charge(order_id: u64) -> Result<u64, AppError> { Ok(order_id) }\n",
    "# fn charge_blocking(order_id: u64) -> Result<u64, AppError> { Ok(order_id) }\n",
    include_str!("../doc/expansion.rs"),
    "```\n",
)]
pub use redis_locked_macros::redis_lock;

/// The `redis` crate this one is built on, so that callers can name its types, such as
/// the [`RedisError`](redis::RedisError) inside [`LockError::Redis`] and
/// [`LockError::Connect`], without depending on a matching version themselves.
pub use redis;
