//! One call of a `#[redis_lock]` function: acquiring, running the body, finishing, and
//! what the call reports about itself.
//!
//! The generated code drives a [`Call`] through its steps (see `__private.rs`). The call
//! owns the `tracing` span (lock, client, waited, held, outcome), feeds the metrics, and
//! keeps the record of which locks the current task or thread holds, which is how a call
//! that would wait for a lock its own caller holds is caught (see `held_here.rs`).

mod held_here;
mod set;

use held_here::Caller;

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::algorithm::hold::SharedHold;
use crate::api::guard::{BlockingLockGuard, LockGuard};
use crate::util::error::LockError;

/// The attribute's arguments, checked and converted at compile time.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `name = "..."` as written: labels the call's span and metrics.
    pub template: &'static str,
    /// `client = "..."`; `None` for the default client.
    pub client: Option<&'static str>,
    /// `expire = N`; `None` for the client's default lease.
    pub expire: Option<Duration>,
    /// `auto_renew`; `None` for the default (on exactly when `expire` is absent).
    pub auto_renew: Option<bool>,
    /// `timeout = N`; `None` to wait until acquired.
    pub timeout: Option<Duration>,
    /// `max_hold = N`: the longest the lock is held (see `Lock::max_hold`).
    pub max_hold: Option<Duration>,
    /// `min_hold = N`: the shortest the lock is held (see `Lock::min_hold`).
    pub min_hold: Option<Duration>,
    /// `permits = N`: how many may hold it at once (see `Lock::permits`); 1 by default.
    pub permits: u32,
    /// `shared`: a shared (read) lock (see `Lock::shared`).
    pub shared: bool,
    /// `on_lost = "abort"`.
    pub abort_on_lost: bool,
    /// `reentrant`: a nested call for a lock its caller holds passes through.
    pub reentrant: bool,
    /// Whether the call takes a fencing token: exactly when it binds its guard
    /// (`guard = ...`), the only way its body can read one (see `Lock::fencing`).
    pub fenced: bool,
}

/// One call of an annotated function, from before acquiring to after releasing.
pub struct Call {
    options: Options,
    name: String,
    span: tracing::Span,
    started: Instant,
    /// When the lock was had (also when passed through by reentrancy).
    acquired: OnceLock<Instant>,
    /// The held locks (one per lock of a set), once the body starts: their leases are lost
    /// by renewal or found expired at release.
    holds: OnceLock<Arc<[SharedHold]>>,
    /// The names of a call that takes several locks (`name = [...]`), as written in order;
    /// empty for one lock, `name`.
    set: Vec<String>,
    /// Until the body has finished, `Cancelled`: what a dropped future leaves.
    outcome: AtomicU8,
}

/// How a call ended, as its span's `outcome` says it.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Outcome {
    /// The future was dropped before the body finished.
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
            holds: OnceLock::new(),
            set: Vec::new(),
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
        // A missing client is a failed call like any other: reported, not "cancelled".
        let result = match self.lock() {
            Err(error) => Err(error),
            Ok(lock) => match held_here::find(
                lock.client(),
                &self.name,
                self.options.reentrant,
                Caller::Task,
            ) {
                Some(found) => found.map(LockGuard::new),
                None => {
                    let _waiting = crate::util::metrics::Waiting::new(self.options.template);
                    // Inline: an acquisition's future is under a kilobyte, its attempts' and
                    // releases' state on the heap only while they run (see `Io::step`).
                    lock.acquire(self.options.timeout)
                        .instrument(self.span.clone())
                        .await
                }
            },
        };
        self.acquired(result)
    }

    /// Acquires the lock of a sync `fn` (or passes through a lock this thread holds).
    pub fn acquire_blocking(&self) -> Result<BlockingLockGuard, LockError> {
        let _entered = self.span.enter();
        let result = self.lock().and_then(|lock| {
            match held_here::find(
                lock.client(),
                &self.name,
                self.options.reentrant,
                Caller::Thread,
            ) {
                Some(found) => found.map(BlockingLockGuard::new),
                None => {
                    let _waiting = crate::util::metrics::Waiting::new(self.options.template);
                    lock.acquire_blocking(self.options.timeout)
                }
            }
        });
        self.acquired(result)
    }

    fn lock(&self) -> Result<crate::Lock, LockError> {
        self.lock_named(self.name.clone())
    }

    /// Lock `name` as the attribute's arguments configure it.
    fn lock_named(&self, name: String) -> Result<crate::Lock, LockError> {
        let options = &self.options;
        let mut lock = match options.client {
            None => crate::Lock::new(name)?,
            Some(client) => crate::Lock::with_client(client, name)?,
        };
        if let Some(lease) = options.expire {
            lock = lock.expire(lease);
        }
        if let Some(on) = options.auto_renew {
            lock = lock.auto_renew(on);
        }
        if let Some(hold) = options.max_hold {
            lock = lock.max_hold(hold);
        }
        if let Some(hold) = options.min_hold {
            lock = lock.min_hold(hold);
        }
        lock = match options.shared {
            true => lock.shared(),
            false => lock.permits(options.permits),
        };
        Ok(lock.fencing(options.fenced).template(options.template))
    }

    /// Records how acquiring went, in the span, the metrics and the logs.
    fn acquired<G>(&self, result: Result<G, LockError>) -> Result<G, LockError> {
        let waited = self.started.elapsed();
        self.span.record("waited_ms", millis(waited));
        let template = self.options.template;
        match &result {
            Ok(_) => {
                let _ = self.acquired.set(Instant::now());
                crate::util::metrics::acquired(template, waited);
            }
            Err(error @ LockError::Timeout { .. }) => {
                self.set_outcome(Outcome::Timeout);
                crate::util::metrics::timed_out(template);
                // Normal under contention; the span carries it for whoever wants it.
                tracing::debug!(parent: &self.span, lock = %self.name, %error, "redis-locked: the lock was not acquired in time");
            }
            Err(error) => {
                self.set_outcome(Outcome::Failed);
                let cause = error as &(dyn std::error::Error + 'static);
                tracing::warn!(parent: &self.span, lock = %self.name, error = cause, "redis-locked: could not take the lock");
            }
        }
        result
    }

    /// Runs an `async fn`'s body: inside the span (so the body's own events and spans nest
    /// under it, as with `#[instrument]`), with this lock recorded as held by the task, and
    /// with `on_lost = "abort"` raced against the loss of the lock.
    pub async fn run<F: Future>(&self, guard: &LockGuard, body: F) -> Result<F::Output, LockError> {
        self.run_holding(Arc::new([guard.shared()]), guard.lost(), body)
            .await
    }

    /// [`run`](Call::run) for the locks `holds`, which are lost when `lost` completes.
    async fn run_holding<F: Future>(
        &self,
        holds: Arc<[SharedHold]>,
        lost: impl Future<Output = ()>,
        body: F,
    ) -> Result<F::Output, LockError> {
        let body = held_here::in_task(&holds, body);
        let _ = self.holds.set(holds);
        let result = async {
            if self.options.abort_on_lost {
                tokio::select! {
                    biased;
                    output = body => Ok(output),
                    () = lost => Err(LockError::Lost { name: self.name.clone() }),
                }
            } else {
                Ok(body.await)
            }
        }
        .instrument(self.span.clone())
        .await;
        self.set_outcome(match result {
            Ok(_) => Outcome::Completed,
            Err(_) => Outcome::Lost,
        });
        result
    }

    /// Lets go of a lock the body was stopped for losing: frees it if it is still ours after
    /// all, without the warning [`finish`](Call::finish) would give.
    pub async fn abandon(&self, guard: LockGuard) {
        self.abandon_one(guard).await
    }

    async fn abandon_one(&self, guard: LockGuard) {
        if !guard.is_lost() && guard.remaining_lease().is_zero() {
            // Not renewed, its lease ran out under the body: renewal did not report it.
            crate::util::metrics::lost(Some(self.options.template));
            tracing::warn!(parent: &self.span, lock = %self.name, "redis-locked: lock lost while held: its lease ran out before the body finished");
        }
        let _ = guard.release().instrument(self.span.clone()).await;
    }

    /// Releases an `async fn`'s lock after its body; a lost or expired lock becomes a warning
    /// naming the lock, and the body's result is returned regardless.
    pub async fn finish(&self, guard: LockGuard) {
        guard.release_and_log().instrument(self.span.clone()).await
    }

    /// Enters a sync `fn`'s body: the span, and this lock recorded as held by the thread,
    /// until the returned value is dropped (before the guard, which releases the lock).
    pub fn enter<'a>(&'a self, guard: &BlockingLockGuard) -> Entered<'a> {
        self.enter_holding(Arc::new([guard.shared()]))
    }

    fn enter_holding(&self, holds: Arc<[SharedHold]>) -> Entered<'_> {
        let on_thread = held_here::on_thread(&holds, self.span.clone());
        let _ = self.holds.set(holds);
        Entered {
            call: self,
            _on_thread: on_thread,
        }
    }
}

/// A sync body in progress; see [`Call::enter`].
pub struct Entered<'a> {
    call: &'a Call,
    _on_thread: held_here::OnThread,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        // The body is done (a panic is told apart when the call is dropped).
        self.call.set_outcome(Outcome::Completed);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.set_outcome(Outcome::Panicked);
        } else if matches!(self.outcome(), Outcome::Completed)
            && self
                .holds
                .get()
                .is_some_and(|holds| holds.iter().any(|hold| hold.state.is_lost()))
        {
            // Lost while the body ran (renewal found it gone), or found expired at release,
            // which for a sync call comes after the body.
            self.set_outcome(Outcome::Lost);
        }
        if let Some(acquired) = self.acquired.get() {
            let held = acquired.elapsed();
            self.span.record("held_ms", millis(held));
            crate::util::metrics::held(self.options.template, held);
        }
        self.span.record("outcome", self.outcome().as_str());
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
