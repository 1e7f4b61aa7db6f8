//! The public API: `Lock`, `LockSet`, the guards, `ClientBuilder`, the registry, scoped clients, inspection.

pub(crate) mod builder;
pub(crate) mod guard;
pub(crate) mod inspect;
pub(crate) mod lock;
pub(crate) mod lock_set;
pub(crate) mod registry;
pub(crate) mod reset;
pub(crate) mod scope;
pub(crate) mod set_guard;
