// The crate's front page is the README, so that crates.io, docs.rs and the repository show one
// text, and every Rust example in it is compiled as a doctest.
#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

// Module map: the runtime in layers, one folder each, every file importing only from its
// own layer and the layers below it, and no files importing each other in a circle
// (`tests/tests/architecture.rs` checks both). Top to bottom:
//
// generated/  what `#[redis_lock]`'s expansion calls (call, + call/set for several names,
//             __private), and the hidden hooks of the benchmark (__transport) and the
//             differential test (__backend)
// api/        lock (`Lock`), guard (`LockGuard`, `BlockingLockGuard`), lock_set and
//             set_guard (`LockSet` and its guards: several locks at once), builder
//             (`ClientBuilder`), registry, scope (`Client`), inspect (`list_locks`), reset
//             (`reset_all`)
// algorithm/  the lock algorithm, independent of the backend: client (one configured
//             client: its backend, wait table and subscriber), acquire (the acquisition
//             loop), held (a held lock and its hold bounds), release (release, handover, and
//             the keep of a minimum hold), renewal (the lease and auto-renewal), cleanup
//             (background releases)
// waiting/    in-process waiting: waiters (the wait table), ticket (a waiter's place),
//             handover (a lock passed to the head, or handed from the queue in Redis);
//             listener, subscriber, cluster_pubsub (release announcements and inbox
//             messages, given the wait table and the backend, not the client)
// backends/   backend (where locks live: one enum, one arm per kind in every operation),
//             routes (which servers), attempt and one_server (one acquisition attempt),
//             release_reply, keep (a release before the minimum hold is over), counted (the
//             places of semaphores and shared locks), redlock (a quorum of servers, +
//             redlock/answer and redlock/each), replicas (WAIT on a cluster), scan
// servers/    where one request goes: single (one server, fixed or Sentinel-managed),
//             cluster (+ cluster/resend, cluster/by_runtime: a connection per caller's
//             runtime), memory (a store in this process that answers as the scripts do, +
//             memory/requests, memory/counted), io (async and blocking requests to a
//             `Route`, + io/join: a request to several servers at once)
// protocol/   lua (the `Script` type and the Lua pieces scripts share), scripts (the lock,
//             its fencing counter, its queue of waiting processes), counted (semaphores and
//             shared locks), what they answer, whether they may be sent twice; explain (an
//             ACL refusal inside a script)
// transport/  the `redis` crate's connections: endpoint, conn, pool (+ pool/slots,
//             pool/pipelined: requests written before their replies are read), tls, reply
//             (what Redis answered), server, sentinel (resolving a master)
// util/       error, kind (how many may hold a lock), lease, keys, token, holder, url,
//             block_on, background, metrics, reachability, sync

mod algorithm;
mod api;
mod backends;
mod generated;
mod protocol;
mod servers;
mod transport;
mod util;
mod waiting;

#[doc(hidden)]
pub use generated::{__backend, __private, __transport};

pub use algorithm::client::DEFAULT_CLIENT;
pub use api::builder::{ClientBuilder, init, register};
pub use api::guard::{BlockingLockGuard, LockGuard};
pub use api::inspect::{LockInfo, list_locks, list_locks_blocking};
pub use api::lock::Lock;
pub use api::lock_set::LockSet;
pub use api::reset::{reset_all, reset_all_blocking};
pub use api::scope::{Client, ClientScopeGuard};
pub use api::set_guard::{BlockingLockSetGuard, LockSetGuard};
pub use util::error::LockError;
pub use util::holder::Holder;

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
