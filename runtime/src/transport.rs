//! Connections to Redis servers on the `redis` crate: endpoints, pools, TLS, what replies are, and
//! the Sentinel resolution of a master.

pub(crate) mod conn;
pub(crate) mod endpoint;
pub(crate) mod failure;
pub(crate) mod multiplexed;
pub(crate) mod pool;
pub(crate) mod reply;
pub(crate) mod sentinel;
pub(crate) mod server;
pub(crate) mod tls;
