//! Where one request goes: one server (fixed or Sentinel-managed), a Redis Cluster, the in-memory
//! store, and the async and blocking ways of sending.

pub(crate) mod cluster;
pub(crate) mod io;
pub(crate) mod memory;
pub(crate) mod single;
