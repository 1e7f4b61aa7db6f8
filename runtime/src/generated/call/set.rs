//! A call of a `#[redis_lock(name = ["...", "..."])]` function: the steps of [`Call`] for
//! a set of locks, taken all or none in canonical order (see `LockSet`).

use std::future::Future;

use tracing::Instrument;

use super::held_here::{self, Caller};
use super::{Call, Entered, Options};
use crate::api::lock_set::LockSet;
use crate::api::set_guard::{BlockingLockSetGuard, LockSetGuard};
use crate::util::error::LockError;

impl Call {
    /// Starts a call of the locks `names` (the templates filled in with the arguments, in
    /// the order written). Its span names them together.
    pub fn new_set(options: Options, names: Vec<String>) -> Call {
        let mut call = Call::new(options, names.join(", "));
        call.set = names;
        call
    }

    fn lock_set(&self) -> Result<LockSet, LockError> {
        let locks = self
            .set
            .iter()
            .map(|name| self.lock_named(name.clone()))
            .collect::<Result<_, _>>()?;
        Ok(LockSet::of(locks)?.template(self.options.template))
    }

    /// Acquires the locks of an `async fn`: those this task holds pass through (with
    /// `reentrant`) or fail the call as a deadlock, like a call for one lock.
    pub async fn acquire_set(&self) -> Result<LockSetGuard, LockError> {
        let result = match self.lock_set() {
            Err(error) => Err(error),
            Ok(set) => {
                let _waiting = crate::util::metrics::Waiting::new(self.options.template);
                let reentrant = self.options.reentrant;
                let held_here = |lock: &crate::Lock| {
                    held_here::find(lock.client(), lock.name(), reentrant, Caller::Task)
                };
                Box::pin(set.acquire_passing(self.options.timeout, held_here))
                    .instrument(self.span.clone())
                    .await
            }
        };
        self.acquired(result)
    }

    /// Acquires the locks of a sync `fn`.
    pub fn acquire_set_blocking(&self) -> Result<BlockingLockSetGuard, LockError> {
        let _entered = self.span.enter();
        let result = self.lock_set().and_then(|set| {
            let _waiting = crate::util::metrics::Waiting::new(self.options.template);
            let reentrant = self.options.reentrant;
            let held_here = |lock: &crate::Lock| {
                held_here::find(lock.client(), lock.name(), reentrant, Caller::Thread)
            };
            set.acquire_blocking_passing(self.options.timeout, held_here)
        });
        self.acquired(result)
    }

    /// Runs an `async fn`'s body holding every lock of the set; with `on_lost = "abort"`,
    /// stopped when any of them is lost.
    pub async fn run_set<F: Future>(
        &self,
        guard: &LockSetGuard,
        body: F,
    ) -> Result<F::Output, LockError> {
        let holds = guard.guards().iter().map(|one| one.shared()).collect();
        self.run_holding(holds, guard.lost(), body).await
    }

    /// [`abandon`](Call::abandon) for a set: lets go of every lock.
    pub async fn abandon_set(&self, guard: LockSetGuard) {
        for one in guard.into_guards().into_iter().rev() {
            self.abandon_one(one).await;
        }
    }

    /// [`finish`](Call::finish) for a set: releases every lock, the last taken first.
    pub async fn finish_set(&self, guard: LockSetGuard) {
        for one in guard.into_guards().into_iter().rev() {
            self.finish(one).await;
        }
    }

    /// [`enter`](Call::enter) for a set.
    pub fn enter_set<'a>(&'a self, guard: &BlockingLockSetGuard) -> Entered<'a> {
        let holds = guard.guards().iter().map(|one| one.shared()).collect();
        self.enter_holding(holds)
    }
}
