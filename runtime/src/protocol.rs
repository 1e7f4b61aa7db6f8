//! The Lua scripts: what each does, answers, and whether it may be sent twice.

pub(crate) mod counted;
pub(crate) mod explain;
pub(crate) mod lua;
pub(crate) mod scripts;
