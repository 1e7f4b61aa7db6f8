//! [`Client`]: a client outside the registry, and the scopes in which it stands in for a
//! registered name.
//!
//! The registry is written once per process, which suits an application and not a test
//! binary: its tests run in parallel, each against a server of its own. A test builds a
//! [`Client`] and runs its code in the client's scope; there, every lock that asks for the
//! default client (or for the name the scope was given) gets this one, whatever is
//! registered. An async scope is a Tokio task-local, so it follows the future from thread
//! to thread; a sync scope is a thread-local. Neither reaches tasks or threads started
//! inside it: they see the registry, as the rest of the process does.

use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::algorithm::client::DEFAULT_CLIENT;
use crate::algorithm::client::LockClient;

/// Clients standing in for registered names, the innermost scope last.
type Overrides = Vec<(String, Arc<LockClient>)>;

tokio::task_local! {
    static IN_TASK: Overrides;
}

thread_local! {
    static ON_THREAD: RefCell<Overrides> = const { RefCell::new(Vec::new()) };
}

/// A client of its own, made by [`ClientBuilder::build`](crate::ClientBuilder::build)
/// rather than registered: for tests that each talk to a Redis server of their own, and for
/// code that would rather hand a client around than name one.
///
/// Clones share the client (connections, waiters, subscriptions). Dropping the last clone,
/// and every [`Lock`](crate::Lock) and guard made with it, closes its connections and ends its
/// background tasks.
///
/// ```no_run
/// use redis_locked::{ClientBuilder, LockError, redis_lock};
///
/// #[redis_lock(name = "invoice:{order_id}", expire = 10)]
/// async fn bill(order_id: u64) -> Result<u64, LockError> {
///     Ok(order_id)
/// }
///
/// # async fn demo() -> Result<(), LockError> {
/// let client = ClientBuilder::new("redis://127.0.0.1:6379").build()?;
/// // `bill` locks on `client`'s server here, whatever `init` registered.
/// client.scope(bill(42)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<LockClient>,
}

impl Client {
    pub(crate) fn new(inner: Arc<LockClient>) -> Client {
        Client { inner }
    }

    /// Runs `future` with this client as the default one: locks in it that name no client
    /// (the attribute without `client = ...`, [`Lock::new`](crate::Lock::new), `reset_all(None)`,
    /// `list_locks(None)`) use this client, and not the registered default.
    ///
    /// The scope follows the future across threads of a multi-threaded runtime, but not
    /// into tasks it spawns (Tokio's task-locals do not propagate): a spawned task sees the
    /// registry, unless it is given a scope of its own, `tokio::spawn(client.scope(task))`.
    /// Scopes nest; the innermost wins.
    pub fn scope<F: Future>(&self, future: F) -> impl Future<Output = F::Output> + use<F> {
        self.scope_as(DEFAULT_CLIENT, future)
    }

    /// [`scope`](Client::scope) for the client registered as `name`: locks in `future` that
    /// say `client = "name"` (or [`Lock::with_client`](crate::Lock::with_client)`("name", ...)`) use this client.
    pub fn scope_as<F: Future>(
        &self,
        name: &str,
        future: F,
    ) -> impl Future<Output = F::Output> + use<F> {
        let mut overrides = IN_TASK.try_with(Overrides::clone).unwrap_or_default();
        overrides.push((name.to_string(), self.inner.clone()));
        IN_TASK.scope(overrides, future)
    }

    /// Makes this client the default one on this thread until the returned guard is
    /// dropped, for sync code: as [`scope`](Client::scope), for the thread rather than a
    /// future. Threads started meanwhile see the registry. The guard restores what was
    /// before; guards are meant to be dropped in the reverse order of their making.
    ///
    /// An async scope ([`scope`](Client::scope)) wins over this one in the futures it runs.
    pub fn enter(&self) -> ClientScopeGuard {
        self.enter_as(DEFAULT_CLIENT)
    }

    /// [`enter`](Client::enter) for the client registered as `name`.
    pub fn enter_as(&self, name: &str) -> ClientScopeGuard {
        let restore_to = ON_THREAD.with_borrow_mut(|overrides| {
            overrides.push((name.to_string(), self.inner.clone()));
            overrides.len() - 1
        });
        ClientScopeGuard {
            restore_to,
            not_send: PhantomData,
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

/// A [`Client`] standing in on this thread (see [`Client::enter`]) until dropped.
#[must_use = "the client stands in only until the guard is dropped"]
pub struct ClientScopeGuard {
    /// How many overrides the thread had before this one.
    restore_to: usize,
    /// Made and dropped on one thread: the scope is that thread's.
    not_send: PhantomData<*const ()>,
}

impl Drop for ClientScopeGuard {
    fn drop(&mut self) {
        // `try_with`: a guard dropped while the thread exits finds its locals gone.
        let _ = ON_THREAD.try_with(|overrides| overrides.borrow_mut().truncate(self.restore_to));
    }
}

impl std::fmt::Debug for ClientScopeGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientScopeGuard").finish_non_exhaustive()
    }
}

/// The client standing in for `name` here: the innermost async scope of the current task,
/// else the innermost sync scope of the current thread.
pub(crate) fn scoped(name: &str) -> Option<Arc<LockClient>> {
    let innermost = |overrides: &Overrides| {
        overrides
            .iter()
            .rev()
            .find(|(scoped, _)| scoped == name)
            .map(|(_, client)| client.clone())
    };
    IN_TASK.try_with(innermost).ok().flatten().or_else(|| {
        ON_THREAD
            .try_with(|overrides| innermost(&overrides.borrow()))
            .ok()
            .flatten()
    })
}
