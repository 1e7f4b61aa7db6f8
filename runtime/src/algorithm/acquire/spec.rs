//! What an acquisition is for: the lock's client, name, key, lease and renewal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::algorithm::client::LockClient;
use crate::algorithm::held::{Acquired, Held, HoldBounds};
use crate::util::error::LockError;
use crate::util::kind::LockKind;

/// One lock as the acquisition algorithm sees it, borrowed from a [`Lock`](crate::Lock).
pub(crate) struct Spec<'a> {
    pub(crate) client: &'a Arc<LockClient>,
    pub(crate) name: &'a str,
    pub(crate) key: &'a str,
    pub(crate) lease: Duration,
    pub(crate) auto_renew: bool,
    /// The attribute's name template (see `holder.rs`); `None` for programmatic use.
    pub(crate) template: Option<&'static str>,
    /// Whether the holder may ask for its fencing token (see `Lock::fencing`).
    pub(crate) fenced: bool,
    /// How long the holder may and must hold the lock.
    pub(crate) bounds: HoldBounds,
    /// How many may hold it at once.
    pub(crate) kind: LockKind,
}

impl Spec<'_> {
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    /// An acquisition under owner value `value` and fencing token `fence`, whose lease
    /// began no earlier than `since`.
    pub(crate) fn held(&self, value: String, fence: u64, since: Instant) -> Held {
        Held::new(
            self.client.clone(),
            self.name.to_string(),
            self.key.to_string(),
            Acquired {
                value,
                fence,
                since,
            },
            self.lease,
            self.auto_renew,
            self.bounds,
        )
        .with_template(self.template)
        .with_kind(self.kind)
    }

    pub(crate) fn timed_out(&self, start: Instant) -> LockError {
        LockError::Timeout {
            name: self.name.to_string(),
            waited: start.elapsed(),
        }
    }
}
