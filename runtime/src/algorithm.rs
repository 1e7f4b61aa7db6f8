//! The lock algorithm, independent of the backend: one configured client, acquisition, a held
//! lock, its renewal, release and handover, and background releases.

pub(crate) mod acquire;
pub(crate) mod cleanup;
pub(crate) mod client;
pub(crate) mod held;
pub(crate) mod hold;
pub(crate) mod lease_state;
pub(crate) mod release;
pub(crate) mod renewal;
