//! The Lua scripts: what each does, answers, and whether it may be sent twice.

pub(crate) mod explain;
pub(crate) mod scripts;
