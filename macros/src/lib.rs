//! Implementation detail of the `redis-locked` crate: the `#[redis_lock]` attribute.
//! Depend on `redis-locked` instead; the generated code calls into it.
//!
//! `arguments` is the table of the attribute's arguments, `attr` parses them by it and
//! `values` checks each value; `name` is the lock name template, `params` the names the
//! parameters bind, `async_trait` recognises methods `#[async_trait]` rewrote; `validate`
//! checks the arguments and the function together, and `expand` generates the wrapped
//! function.

mod arguments;
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
mod validate;
mod values;

use proc_macro::TokenStream;

/// `#[redis_lock]` is implemented in the `redis-locked-macros` crate and used through
/// `redis-locked`, which re-exports it as `redis_locked::redis_lock` with its full
/// documentation.
// rustdoc appends this to the re-export's documentation, so it is worded to read as a
// footnote there too.
#[proc_macro_attribute]
pub fn redis_lock(args: TokenStream, item: TokenStream) -> TokenStream {
    attribute(args.into(), item.into()).into()
}

/// The whole attribute, on `proc_macro2` tokens so that tests can run it. Any error comes
/// back next to the user's item, unchanged, so that the rest of the crate still sees the
/// function (tokio-macros does the same): one mistake in the attribute then gives one
/// error, not one per caller.
fn attribute(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    match validate::validate(args, &item) {
        Ok(validated) => expand::expand(validated),
        Err(error) => {
            let mut tokens = item;
            tokens.extend(error.into_compile_error());
            tokens
        }
    }
}
