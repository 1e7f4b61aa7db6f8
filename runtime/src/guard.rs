//! What an acquisition holds, its auto-renewal, and its release on every way out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::block_on::block_on;
use crate::client::LockClient;
use crate::error::LockError;
use crate::io::{AsyncIo, Io, SyncIo, eval};
use crate::lock::lease_millis;
use crate::scripts::{EXTEND, HANDOFF, RELEASE};

/// One acquisition: the owner token and what is needed to renew and release it.
pub(crate) struct Held {
    client: &'static LockClient,
    name: String,
    key: String,
    token: String,
    lease: Duration,
    auto_renew: bool,
    /// Set by the renewal task when it finds the lock gone.
    lost: Arc<AtomicBool>,
    renewal: Option<tokio::task::AbortHandle>,
}

impl Held {
    pub(crate) fn new(
        client: &'static LockClient,
        name: String,
        key: String,
        token: String,
        lease: Duration,
        auto_renew: bool,
    ) -> Held {
        Held {
            client,
            name,
            key,
            token,
            lease,
            auto_renew,
            lost: Arc::new(AtomicBool::new(false)),
            renewal: None,
        }
    }

    /// Starts renewing every third of the lease, on `runtime`.
    fn start_renewal(&mut self, runtime: &tokio::runtime::Handle) {
        if !self.auto_renew {
            return;
        }
        let task = renew(
            self.client,
            self.name.clone(),
            self.key.clone(),
            self.token.clone(),
            self.lease,
            self.lost.clone(),
        );
        self.renewal = Some(runtime.spawn(task).abort_handle());
    }

    fn stop_renewal(&mut self) {
        if let Some(task) = self.renewal.take() {
            task.abort();
        }
    }

    async fn extend_with<I: Io>(&self, io: &I, lease: Option<Duration>) -> Result<(), LockError> {
        let ms = lease_millis(lease.unwrap_or(self.lease))?.to_string();
        let extended = eval(io, self.client, &EXTEND, &self.key, &[&self.token, &ms])
            .await?
            .as_int()?;
        if extended == 1 {
            Ok(())
        } else {
            Err(LockError::Expired {
                name: self.name.clone(),
            })
        }
    }

    /// Releases the lock; hands it straight to the next waiter of this process when there
    /// is one (one round trip instead of release, notify and re-acquire).
    async fn release_with<I: Io>(&mut self, io: &I) -> Result<(), LockError> {
        self.stop_renewal();
        if self.lost.load(Ordering::Acquire) {
            self.client.waiters.notify(&self.key);
            return Err(LockError::Lost {
                name: self.name.clone(),
            });
        }
        let waiters = &self.client.waiters;
        let mut token = self.token.clone();
        while let Some(offer) = waiters.offer_handoff(&self.key) {
            let ms = lease_millis(offer.lease)?.to_string();
            let own = offer.own_subscriptions.to_string();
            let attempt = HandoffAttempt {
                client: self.client,
                key: &self.key,
                offer: &offer,
                done: false,
            };
            let args = [
                token.as_str(),
                &offer.token,
                &ms,
                &own,
                &self.client.instance_id,
            ];
            let result = eval(io, self.client, &HANDOFF, &self.key, &args)
                .await
                .and_then(|r| r.as_int());
            let handed = matches!(result, Ok(1));
            // When not handed over, `finish` pokes the waiter: it tries for itself.
            if attempt.finish(handed) {
                return match result {
                    Ok(1 | 2) => Ok(()),
                    Ok(_) => Err(LockError::Expired {
                        name: self.name.clone(),
                    }),
                    Err(e) => Err(e),
                };
            }
            // The waiter left while we handed it the lock: it is ours under its token now.
            token = offer.token;
        }
        let released = eval(
            io,
            self.client,
            &RELEASE,
            &self.key,
            &[&token, &self.client.instance_id],
        )
        .await;
        waiters.notify(&self.key);
        if released?.as_int()? == 1 {
            Ok(())
        } else {
            Err(LockError::Expired {
                name: self.name.clone(),
            })
        }
    }
}

/// Completes a handover in the wait table, also when the releasing future is dropped
/// half-way (then as failed, so the waiter is not left waiting for an answer).
struct HandoffAttempt<'a> {
    client: &'static LockClient,
    key: &'a str,
    offer: &'a crate::waiters::HandoffOffer,
    done: bool,
}

impl HandoffAttempt<'_> {
    fn finish(mut self, handed: bool) -> bool {
        self.done = true;
        self.client
            .waiters
            .finish_handoff(self.key, self.offer, handed)
    }
}

impl Drop for HandoffAttempt<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.client
                .waiters
                .finish_handoff(self.key, self.offer, false);
        }
    }
}

async fn renew(
    client: &'static LockClient,
    name: String,
    key: String,
    token: String,
    lease: Duration,
    lost: Arc<AtomicBool>,
) {
    let every = lease / 3;
    let Ok(ms) = lease_millis(lease) else { return };
    let ms = ms.to_string();
    loop {
        tokio::time::sleep(every).await;
        let renewed = eval(&AsyncIo, client, &EXTEND, &key, &[&token, &ms])
            .await
            .and_then(|r| r.as_int());
        match renewed {
            Ok(1) => {}
            Ok(_) => {
                lost.store(true, Ordering::Release);
                tracing::warn!(lock = %name, "redis-lock: lock lost while held: auto-renewal found it expired or taken by another owner");
                return;
            }
            Err(e) => {
                tracing::warn!(lock = %name, error = %e, "redis-lock: renewing the lock failed; retrying");
            }
        }
    }
}

/// What both guards answer alike about the acquisition they hold.
macro_rules! held_accessors {
    ($guard:ident) => {
        impl $guard {
            fn held(&self) -> &Held {
                self.held
                    .as_ref()
                    .expect("a guard holds its lock until consumed")
            }

            /// The lock's name.
            pub fn name(&self) -> &str {
                &self.held().name
            }

            /// This acquisition's owner token (128 random bits, hex).
            pub fn token(&self) -> &str {
                &self.held().token
            }

            /// True once auto-renewal has found the lock taken away: work done now is not
            /// exclusive.
            pub fn is_lost(&self) -> bool {
                self.held().lost.load(Ordering::Acquire)
            }
        }

        impl std::fmt::Debug for $guard {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($guard))
                    .field("name", &self.name())
                    .finish_non_exhaustive()
            }
        }
    };
}

held_accessors!(LockGuard);
held_accessors!(BlockingLockGuard);

/// A held lock, acquired by async code. Release it with [`release`](LockGuard::release);
/// if it is dropped instead (a panic, a cancelled future), it is released in the background
/// within milliseconds, without blocking the executor.
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard {
    held: Option<Held>,
}

impl LockGuard {
    pub(crate) fn new(mut held: Held) -> LockGuard {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            held.start_renewal(&runtime);
        }
        LockGuard { held: Some(held) }
    }

    /// Resets the lease to `lease` (`None`: the lock's own lease) from now.
    /// Fails with [`LockError::Expired`] if the lock is no longer ours.
    pub async fn extend(&self, lease: Option<Duration>) -> Result<(), LockError> {
        self.held().extend_with(&AsyncIo, lease).await
    }

    /// Releases the lock. Fails with [`LockError::Lost`] if auto-renewal had found it taken
    /// away, and with [`LockError::Expired`] if its lease ran out before this call.
    pub async fn release(mut self) -> Result<(), LockError> {
        let mut held = self
            .held
            .take()
            .expect("a guard holds its lock until consumed");
        held.release_with(&AsyncIo).await
    }

    /// Releases the lock; a failure becomes a warning that names the lock.
    pub(crate) async fn release_and_log(mut self) {
        let mut held = self
            .held
            .take()
            .expect("a guard holds its lock until consumed");
        let result = held.release_with(&AsyncIo).await;
        log_release(&held, result);
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(mut held) = self.held.take() {
            held.stop_renewal();
            match crate::background::handle() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        let result = held.release_with(&AsyncIo).await;
                        log_release(&held, result);
                    });
                }
                Err(e) => {
                    tracing::warn!(lock = %held.name, error = %e, "redis-lock: could not release the lock; it expires with its lease")
                }
            }
        }
    }
}

/// A held lock, acquired by sync code. Release it with
/// [`release`](BlockingLockGuard::release), or drop it: the drop releases it on this
/// thread before returning (also while unwinding from a panic).
#[must_use = "the lock is released when the guard is dropped"]
pub struct BlockingLockGuard {
    held: Option<Held>,
}

impl BlockingLockGuard {
    pub(crate) fn new(mut held: Held) -> BlockingLockGuard {
        if let Ok(runtime) = crate::background::handle() {
            held.start_renewal(runtime);
        }
        BlockingLockGuard { held: Some(held) }
    }

    /// Resets the lease to `lease` (`None`: the lock's own lease) from now.
    pub fn extend(&self, lease: Option<Duration>) -> Result<(), LockError> {
        block_on(self.held().extend_with(&SyncIo, lease))
    }

    /// Releases the lock; errors as for [`LockGuard::release`].
    pub fn release(mut self) -> Result<(), LockError> {
        let mut held = self
            .held
            .take()
            .expect("a guard holds its lock until consumed");
        block_on(held.release_with(&SyncIo))
    }
}

impl Drop for BlockingLockGuard {
    fn drop(&mut self) {
        if let Some(mut held) = self.held.take() {
            let result = block_on(held.release_with(&SyncIo));
            log_release(&held, result);
        }
    }
}

/// Reports the outcome of a release nobody can be handed: a lost or expired lock is a
/// warning that names the lock.
fn log_release(held: &Held, result: Result<(), LockError>) {
    if let Err(e) = result {
        tracing::warn!(lock = %held.name, error = %e, "redis-lock: {e}");
    }
}
