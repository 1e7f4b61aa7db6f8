//! Models of the runtime's in-process concurrency, checked with loom.
//!
//! The runtime's wait table (runtime/src/waiters.rs, ticket.rs and handover.rs) and the places
//! of its blocking pool
//! (runtime/src/pool/slots.rs) are compiled here from the runtime's own files, with loom's
//! locks and atomics in place of std's (see `sync.rs`): nothing else of the runtime (tokio,
//! redis) is built. Around them, `lock.rs` plays the callers (acquisitions, releasers,
//! handovers) against a model of the Redis key (`key.rs`), and loom runs each model in
//! every interleaving of its threads up to a bound on preemptions (`check.rs`).
//! The models are public functions, run by the tests in tests/*.rs.

mod check;
mod key;
mod lock;
pub mod pool;
mod sync;

// The runtime's files name their neighbours by the runtime's module paths.
mod util {
    pub(crate) use super::sync;
}
mod waiting {
    #[allow(unused_imports, reason = "named only by some builds of the files")]
    pub(crate) use super::{handover, ticket, waiters};
}
pub mod wait_table;

/// The runtime's wait table. The models drive part of it: the rest (pub/sub
/// subscriptions, sweeping) is the runtime's to use.
#[path = "../../../runtime/src/waiting/waiters.rs"]
#[allow(dead_code, reason = "the models use part of the file")]
mod waiters;

/// A waiter's place in the table's queue.
#[path = "../../../runtime/src/waiting/ticket.rs"]
#[allow(dead_code, reason = "the models use part of the file")]
mod ticket;

/// A handover offered to the queue's head, and its settlement.
#[path = "../../../runtime/src/waiting/handover.rs"]
#[allow(dead_code, reason = "the models use part of the file")]
mod handover;

/// The places of the runtime's blocking pool.
#[path = "../../../runtime/src/transport/pool/slots.rs"]
mod slots;
