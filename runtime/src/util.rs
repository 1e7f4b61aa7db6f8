//! Small utilities every layer may use: errors, leases, keys, tokens, the background runtime.

pub(crate) mod background;
pub(crate) mod block_on;
pub(crate) mod deferred;
pub(crate) mod error;
#[cfg(test)]
pub(crate) mod forked;
pub(crate) mod forks;
pub(crate) mod holder;
pub(crate) mod keys;
pub(crate) mod kind;
pub(crate) mod lease;
pub(crate) mod metrics;
pub(crate) mod reachability;
pub(crate) mod repeated_failure;
pub(crate) mod sync;
pub(crate) mod token;
pub(crate) mod url;
