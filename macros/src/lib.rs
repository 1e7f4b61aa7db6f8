//! Implementation detail of the `redis-locked` crate: the `#[redis_lock]` attribute.
//! Depend on `redis-locked` instead; the generated code calls into it.
//!
//! `attr` parses and checks the arguments, `name` the lock name template, and `expand`
//! generates the wrapped function.

mod async_trait;
mod attr;
mod expand;
#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod limits_tests;
mod name;
mod params;
mod suggest;

use proc_macro::TokenStream;

/// Runs a function while holding a Redis lock, so that at most one caller at a time, across
/// every process sharing the Redis server, runs it for a given lock name.
///
/// ```ignore
/// use redis_locked::{redis_lock, LockError};
///
/// #[redis_lock(name = "invoice:{order_id}", expire = 10, auto_renew)]
/// async fn bill(order_id: u64) -> Result<Receipt, AppError> {
///     // Only one process at a time runs this for a given `order_id`.
///     charge(order_id).await
/// }
/// ```
///
/// The lock is taken before the body runs and released after it, on every way out:
/// a normal return, an early `return`, `?`, a panic, and (async) the future being dropped
/// mid-body. Configure the Redis connection once
/// at start-up with `redis_locked::init` (and `redis_locked::register` for more servers).
///
/// # Arguments
///
/// | Argument | Value | Default | Meaning |
/// |---|---|---|---|
/// | `name = "..."` | string literal, required | — | The lock's name. `{param}` placeholders are replaced by the function's arguments. |
/// | `expire = N` | seconds, integer or float (`10`, `0.25`, `1_000`, `1.5e3`), from `0.001` (1 ms) to `18446744073` (about 584 years) | the client's default lease | How long the lock is held before Redis expires it on its own, should the holder crash or hang. |
/// | `auto_renew` or `auto_renew = true/false` | flag or bool literal | on exactly when `expire` is absent | Keep extending the lease in the background while the body runs, so a long body does not outlive it. |
/// | `timeout = N` | seconds, integer or float, from `0` to `18446744073` | wait until acquired | How long to wait for a lock someone else holds. `timeout = 0` makes a single attempt. |
/// | `client = "..."` | string literal | the client set by `redis_locked::init` | Which client, registered with `redis_locked::register`, to take the lock on. |
/// | `on_lost = "continue"` or `"abort"` | string literal | `"continue"` | What happens to a running body whose lock is lost (see below). `"abort"` is for `async fn` only. |
/// | `guard = <name>` | identifier | none | Binds the held lock in the body under `<name>` (see below). |
/// | `reentrant` or `reentrant = true/false` | flag or bool literal | off | A nested call for a lock its caller already holds passes through instead of failing (see below). |
/// | `crate = "path"` | string literal holding a path | `::redis_locked` | Where the runtime crate is, when your `Cargo.toml` renames the `redis-locked` dependency or another crate re-exports it. |
///
/// Arguments may come in any order, each at most once. All of them are checked at compile
/// time: an unknown or repeated argument, a value of the wrong type, an `expire` under a
/// millisecond, a negative `timeout`, or either one too large for `u64` nanoseconds is a
/// compile error pointing at the offending token.
///
/// ## The name template
///
/// `name` follows `format!`'s syntax, restricted to the function's parameters:
///
/// - `{order_id}` is replaced by the parameter `order_id`, formatted with `Display`. Any
///   parameter bound to a plain name can be used, including `mut order_id: u64`; in a
///   method, `{self}` formats the receiver.
/// - `{order_id:08}` passes a format spec through, exactly as `format!` would read it
///   (`{id:?}` uses `Debug`).
/// - `{{` and `}}` are literal braces.
///
/// The name is built when the function is called, before the body runs. A placeholder that
/// names no parameter, an unclosed brace or an empty name is a compile error at the
/// string, and so is a parameter that does not implement `Display`.
///
/// # Return type
///
/// The function must return `Result<T, E>` where `E: From<redis_locked::LockError>`, such as
/// `Result<T, LockError>` itself, or your own error type with a `From<LockError>` impl.
/// Any other return type, `()` included, is a compile error at the return type.
///
/// # When the lock cannot be had
///
/// The body does not run, and the function returns `Err(LockError.into())` instead. This
/// happens when `timeout` passes before the lock is free (`LockError::Timeout`), when Redis
/// cannot be reached, or when no client is configured under the requested name.
///
/// Redis being unreachable does not fail a call at once: the attempt is repeated, with
/// backoff, until `timeout` passes (then `LockError::Timeout`, or the connection error if
/// Redis never answered) or, without a `timeout`, for the client's outage timeout (30 s by
/// default, see `ClientBuilder::outage_timeout`).
///
/// # When the lock is lost while the body runs
///
/// With `auto_renew`, the lease is renewed every third of it. A renewal that finds the key
/// gone or another owner's, or a lease that runs out before any renewal reached Redis,
/// means the lock is lost: from then on another caller may hold it. What happens next is
/// up to `on_lost`:
///
/// - `on_lost = "continue"` (the default): the body runs to completion, a `tracing`
///   warning names the lock, and the body's result is returned.
/// - `on_lost = "abort"` (`async fn` only): the body is stopped at its next `.await` (its
///   future is dropped) and the function returns `Err(LockError::Lost { .. }.into())`. On
///   a lock without `auto_renew`, the body is stopped when its lease ends.
///
/// A sync body cannot be stopped from outside, so `on_lost = "abort"` on a plain `fn` is a
/// compile error. A lock that expired without `auto_renew` (the body outlived `expire`)
/// does not change what a `"continue"` function returns either; the failed release is
/// logged as a warning.
///
/// # The lock inside the body
///
/// `guard = lock` binds `lock` in the body to the held lock: a `&redis_locked::LockGuard` in an
/// `async fn`, a `&redis_locked::BlockingLockGuard` in a sync one. It gives the fencing token
/// (`lock.fencing_token()`, a number greater than that of every earlier acquisition of the
/// same name: pass it to the resource you write to, and have it refuse smaller ones), the
/// lease left (`lock.remaining_lease()`), `lock.extend(Some(duration))`, whether renewal has
/// found the lock lost (`lock.is_lost()`), and, async, `lock.lost()`: a future that
/// completes when the lock is lost, for `tokio::select!` (sync: `lock.wait_lost(timeout)`).
/// The name must not be one a parameter binds.
///
/// ```ignore
/// #[redis_lock(name = "ledger:{account}", guard = lock)]
/// async fn post(account: u64, entry: Entry) -> Result<(), AppError> {
///     store.append(account, entry, lock.fencing_token()).await // refused if stale
/// }
/// ```
///
/// # Calls that would wait for themselves
///
/// A locked function that calls, directly or through other functions, one that locks the
/// same name (on the same client) in the same task (async) or thread (sync) would wait for
/// its own lock until the lease or timeout ran out. Such a call fails at once with
/// `LockError::WouldDeadlock` naming the lock. With `reentrant` on the inner function it
/// passes through instead: no Redis round trip, the same fencing token, and the lock is
/// released when the outermost call ends. A task spawned by the body, or another thread, is
/// not the holder and waits as usual. Locks taken with the programmatic API are not
/// tracked.
///
/// # Async and sync functions
///
/// On an `async fn`, waiting for the lock is asynchronous, and the returned future is
/// `Send` whenever the body's is, so it can be handed to `tokio::spawn`. If the future is
/// dropped while holding the lock, the lock is released in the background.
///
/// On a plain `fn`, the calling thread blocks until the lock is acquired (or `timeout`
/// passes), and the lock is released when the function returns. This works inside and
/// outside a Tokio runtime, but do not call it from async code: it would block a runtime
/// worker thread.
///
/// ```ignore
/// use redis_locked::{redis_lock, LockError};
///
/// struct Ledger { /* ... */ }
///
/// impl Ledger {
///     // Fail at once rather than wait when another process is already closing this day.
///     #[redis_lock(name = "ledger:close:{day}", expire = 60, timeout = 0)]
///     pub fn close_day(&mut self, day: u32) -> Result<Totals, LedgerError> {
///         let entries = self.load(day)?; // `LedgerError: From<LockError>`
///         Ok(self.sum(entries))
///     }
/// }
///
/// #[redis_lock(name = "reports", client = "analytics", timeout = 2.5)]
/// pub async fn rebuild_reports() -> Result<(), LockError> {
///     Ok(())
/// }
/// ```
///
/// The function keeps its attributes, visibility and signature, so it works on methods
/// (`self`, `&self`, `&mut self`), generic functions, trait impls and `unsafe fn`. It cannot
/// be applied to a `const fn` or to anything but a function.
///
/// # What it expands to
///
/// The attribute only wraps the body. The async example at the top becomes, roughly:
///
/// ```ignore
/// async fn bill(order_id: u64) -> Result<Receipt, AppError> {
///     let __redis_lock_guard = match ::redis_locked::__private::acquire(
///         ::redis_locked::__private::Options {
///             client: None,
///             expire: Some(Duration::from_nanos(10_000_000_000)),
///             auto_renew: Some(true),
///             timeout: None,
///         },
///         ::std::format!("invoice:{}", order_id),
///     )
///     .await
///     {
///         Ok(guard) => guard,
///         Err(error) => return ::redis_locked::__private::lock_failed(error), // Err(error.into())
///     };
///     // The body runs in its own block so that `return` and `?` still reach the release.
///     let __redis_lock_result = async move { /* the original body */ }.await;
///     ::redis_locked::__private::finish(__redis_lock_guard).await; // release
///     __redis_lock_result
/// }
/// ```
///
/// and a sync function becomes:
///
/// ```ignore
/// fn close_day(&mut self, day: u32) -> Result<Totals, LedgerError> {
///     let __redis_lock_guard = match ::redis_locked::__private::acquire_blocking(options, name) {
///         Ok(guard) => guard,
///         Err(error) => return ::redis_locked::__private::lock_failed(error),
///     };
///     { /* the original body */ } // the guard is dropped after it, releasing the lock
/// }
/// ```
///
/// The generated code refers to the runtime as `::redis_locked`. When the dependency is
/// renamed in `Cargo.toml` (`locks = { package = "redis-locked", ... }`) or reached through
/// another crate's re-export, say where it is: `#[redis_lock(name = "...", crate = "locks")]`.
#[proc_macro_attribute]
pub fn redis_lock(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::redis_lock(args.into(), item.into()).into()
}
