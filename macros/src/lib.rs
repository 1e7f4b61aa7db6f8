//! Implementation detail of the `redis-lock` crate. Depend on `redis-lock` instead.
use proc_macro::TokenStream;

/// See `redis_lock::redis_lock`.
#[proc_macro_attribute]
pub fn redis_lock(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
