//! The public API: `Lock`, the guards, `ClientBuilder`, the registry, scoped clients, inspection.

pub(crate) mod builder;
pub(crate) mod guard;
pub(crate) mod inspect;
pub(crate) mod lock;
pub(crate) mod registry;
pub(crate) mod scope;
