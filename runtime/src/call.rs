//! One call of a `#[redis_lock]` function: acquiring, running the body, finishing, and
//! what the call reports about itself.
//!
//! The generated code drives a [`Call`] through its steps (see `__private.rs`). The call
//! owns the `tracing` span (lock, client, waited, held, outcome), feeds the metrics, and
//! keeps the record of which locks the current task or thread holds, which is how a call
//! that would wait for a lock its own caller holds is caught (see `held_here.rs`).

mod held_here;

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::__private::Options;
use crate::error::LockError;
use crate::guard::{BlockingLockGuard, LockGuard};

/// One call of an annotated function, from before acquiring to after releasing.
pub struct Call {
    options: Options,
    name: String,
    span: tracing::Span,
    started: Instant,
    /// When the lock was had (also when passed through by reentrancy).
    acquired: OnceLock<Instant>,
    outcome: AtomicU8,
}

/// How a call ended, as its span's `outcome` says it.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Outcome {
    /// The future was dropped before the call finished.
    Cancelled,
    Completed,
    Timeout,
    Failed,
    Lost,
    Panicked,
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Cancelled,
        Outcome::Completed,
        Outcome::Timeout,
        Outcome::Failed,
        Outcome::Lost,
        Outcome::Panicked,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Cancelled => "cancelled",
            Outcome::Completed => "completed",
            Outcome::Timeout => "timeout",
            Outcome::Failed => "failed",
            Outcome::Lost => "lost",
            Outcome::Panicked => "panicked",
        }
    }
}

impl Call {
    /// Starts a call of the lock `name` (the template filled in with the arguments).
    pub fn new(options: Options, name: String) -> Call {
        let span = tracing::info_span!(
            "redis_lock",
            lock = options.template,
            name = %name,
            client = options.client.unwrap_or(crate::DEFAULT_CLIENT),
            waited_ms = tracing::field::Empty,
            held_ms = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        Call {
            options,
            name,
            span,
            started: Instant::now(),
            acquired: OnceLock::new(),
            outcome: AtomicU8::new(Outcome::Cancelled as u8),
        }
    }

    fn set_outcome(&self, outcome: Outcome) {
        self.outcome.store(outcome as u8, Ordering::Relaxed);
    }

    fn outcome(&self) -> Outcome {
        Outcome::ALL[usize::from(self.outcome.load(Ordering::Relaxed))]
    }

    /// Acquires the lock of an `async fn` (or passes through a lock this task holds).
    pub async fn acquire(&self) -> Result<LockGuard, LockError> {
        let result = match held_here::find(self.options.client, &self.name, self.options.reentrant)
        {
            Some(found) => found.map(LockGuard::new),
            None => {
                let lock = self.lock()?;
                let _waiting = crate::metrics::Waiting::new(self.options.template);
                lock.acquire(self.options.timeout)
                    .instrument(self.span.clone())
                    .await
            }
        };
        self.acquired(result)
    }

    /// Acquires the lock of a sync `fn` (or passes through a lock this thread holds).
    pub fn acquire_blocking(&self) -> Result<BlockingLockGuard, LockError> {
        let _entered = self.span.enter();
        let result = match held_here::find(self.options.client, &self.name, self.options.reentrant)
        {
            Some(found) => found.map(BlockingLockGuard::new),
            None => {
                let lock = self.lock()?;
                let _waiting = crate::metrics::Waiting::new(self.options.template);
                lock.acquire_blocking(self.options.timeout)
            }
        };
        self.acquired(result)
    }

    fn lock(&self) -> Result<crate::Lock, LockError> {
        let options = &self.options;
        let mut lock = match options.client {
            None => crate::Lock::new(self.name.clone())?,
            Some(client) => crate::Lock::with_client(client, self.name.clone())?,
        };
        if let Some(lease) = options.expire {
            lock = lock.expire(lease);
        }
        if let Some(on) = options.auto_renew {
            lock = lock.auto_renew(on);
        }
        Ok(lock.template(options.template))
    }

    /// Records how acquiring went, in the span, the metrics and the logs.
    fn acquired<G>(&self, result: Result<G, LockError>) -> Result<G, LockError> {
        let waited = self.started.elapsed();
        self.span.record("waited_ms", millis(waited));
        let template = self.options.template;
        match &result {
            Ok(_) => {
                let _ = self.acquired.set(Instant::now());
                self.set_outcome(Outcome::Completed);
                crate::metrics::acquired(template, waited);
            }
            Err(error @ LockError::Timeout { .. }) => {
                self.set_outcome(Outcome::Timeout);
                crate::metrics::timed_out(template);
                // Normal under contention; the span carries it for whoever wants it.
                tracing::debug!(parent: &self.span, lock = %self.name, %error, "redis-lock: {error}");
            }
            Err(error) => {
                self.set_outcome(Outcome::Failed);
                tracing::warn!(parent: &self.span, lock = %self.name, %error, "redis-lock: could not take the lock: {error}");
            }
        }
        result
    }

    /// Runs an `async fn`'s body: inside the span, with this lock recorded as held by the
    /// task, and with `on_lost = "abort"` raced against the loss of the lock.
    pub async fn run<F: Future>(&self, guard: &LockGuard, body: F) -> Result<F::Output, LockError> {
        let body = held_here::in_task(guard.shared(), body);
        let result = if self.options.abort_on_lost {
            tokio::select! {
                biased;
                output = body => Ok(output),
                () = guard.lost() => Err(LockError::Lost { name: self.name.clone() }),
            }
        } else {
            Ok(body.await)
        };
        if result.is_err() {
            self.set_outcome(Outcome::Lost);
        }
        result
    }

    /// Lets go of a lock the body was stopped for losing: frees it if it is still ours after
    /// all, without the warning [`finish`](Call::finish) would give.
    pub async fn abandon(&self, guard: LockGuard) {
        let _ = guard.release().await;
    }

    /// Releases an `async fn`'s lock after its body; a lost or expired lock becomes a warning
    /// naming the lock, and the body's result is returned regardless.
    pub async fn finish(&self, guard: LockGuard) {
        if guard.is_lost() {
            self.set_outcome(Outcome::Lost);
        }
        guard.release_and_log().instrument(self.span.clone()).await
    }

    /// Enters a sync `fn`'s body: the span, and this lock recorded as held by the thread,
    /// until the returned value is dropped (before the guard, which releases the lock).
    pub fn enter<'a>(&'a self, guard: &BlockingLockGuard) -> Entered<'a> {
        Entered {
            call: self,
            lost: guard.lost_flag(),
            _on_thread: held_here::on_thread(guard.shared(), self.span.clone()),
        }
    }
}

/// A sync body in progress; see [`Call::enter`].
pub struct Entered<'a> {
    call: &'a Call,
    lost: std::sync::Arc<crate::guard::LeaseState>,
    _on_thread: held_here::OnThread,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        if self.lost.is_lost() {
            self.call.set_outcome(Outcome::Lost);
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.set_outcome(Outcome::Panicked);
        }
        if let Some(acquired) = self.acquired.get() {
            let held = acquired.elapsed();
            self.span.record("held_ms", millis(held));
            crate::metrics::held(self.options.template, held);
        }
        self.span.record("outcome", self.outcome().as_str());
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
