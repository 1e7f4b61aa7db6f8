//! Implementation detail of the `redis-locked` crate: the `#[redis_lock]` attribute.
//! Depend on `redis-locked` instead; the generated code calls into it.
//!
//! `attr` parses and checks the arguments, `name` the lock name template, `params` the
//! names the parameters bind, `async_trait` recognises methods `#[async_trait]` rewrote,
//! and `expand` generates the wrapped function.

mod async_trait;
mod attr;
mod expand;
#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod limits_tests;
mod name;
mod params;
#[cfg(test)]
mod snapshot_tests;
mod suggest;

use proc_macro::TokenStream;

/// `#[redis_lock]` is implemented in the `redis-locked-macros` crate and used through
/// `redis-locked`, which re-exports it as `redis_locked::redis_lock` with its full
/// documentation.
// rustdoc appends this to the re-export's documentation, so it is worded to read as a
// footnote there too.
#[proc_macro_attribute]
pub fn redis_lock(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::redis_lock(args.into(), item.into()).into()
}
