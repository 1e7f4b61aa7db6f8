//! What `#[redis_lock]`'s expansion calls, and the hidden hooks of the benchmark and the
//! differential test: not public API.

#[doc(hidden)]
pub mod __backend;
#[doc(hidden)]
pub mod __private;
#[doc(hidden)]
pub mod __transport;
pub(crate) mod call;
