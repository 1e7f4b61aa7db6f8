//! A held lock's auto-renewal.

use std::time::{Duration, Instant};

use crate::algorithm::hold::SharedHold;
use crate::algorithm::lease_state::LeaseState;
use crate::servers::io::{AsyncIo, Io};
use crate::util::lease::lease_millis;

/// When the first renewal of a lease of `lease` is due: a third of it after it started.
pub(crate) fn first_renewal(state: &LeaseState, lease: Duration) -> Instant {
    state.valid_until() - lease + lease / 3
}

/// Renews the lease every third of it. The lock counts as lost when Redis says it is not
/// ours any more, and also when the lease runs out before a renewal got through (Redis
/// unreachable or stalled): from then on another owner may hold it. With a maximum hold,
/// the last renewal takes the lease only to the hold's end, and the lock counts as lost
/// when that lease runs out: Redis lets it go then on its own.
pub(crate) async fn renew(hold: SharedHold) {
    let (client, name, key, value) = (&hold.client, &hold.name, &hold.key, &hold.value);
    let (lease, state, template, kind) = (hold.lease, &hold.state, hold.template, hold.kind);
    let every = lease / 3;
    let lose = |why: &str| {
        state.set_lost();
        crate::util::metrics::lost(template);
        tracing::warn!(lock = %name, "redis-locked: lock lost while held: {why}");
    };
    const HELD_TOO_LONG: &str = "it was held for its maximum hold (max_hold), and renewal stopped";
    let mut next = first_renewal(state, lease);
    // Renewals failed in a row: the first of a run is a warning, the retries are not.
    let mut failures = 0u32;
    // Set by the renewal that took the lease to the end of the maximum hold: the last one.
    let mut last_renewed = false;
    loop {
        tokio::time::sleep_until(next.min(state.valid_until()).into()).await;
        // Read again: `extend` may have moved it while this task slept.
        let valid_until = state.valid_until();
        let sent = Instant::now();
        let within_hold = state.lease_within_hold(sent, lease);
        if sent >= valid_until {
            return lose(match last_renewed || within_hold.is_none() {
                true => HELD_TOO_LONG,
                false => "its lease ran out before a renewal reached Redis",
            });
        }
        let Some(renewal) = within_hold else {
            // Less than a millisecond of the hold is left: nothing to renew; it ends with
            // the lease.
            last_renewed = true;
            next = valid_until;
            continue;
        };
        let Ok(ms) = lease_millis(renewal) else {
            return;
        };
        // A renewal that may restore the key never runs while the guard releases it.
        let _out = match client.backend.renewal_restores() {
            true => Some(state.renewing.lock().await),
            false => None,
        };
        let ms = ms.to_string();
        // Each request on the heap while it runs (see `Io::step`): this task sleeps for
        // most of a held lock's life, and needs none of a request's state meanwhile.
        let renewed = match kind.is_counted() {
            true => AsyncIo::step(client.backend.counted_extend(&AsyncIo, key, value, &ms)).await,
            false => {
                let extend =
                    client
                        .backend
                        .extend(&AsyncIo, name, key, value, &ms, Some(valid_until));
                AsyncIo::step(extend).await
            }
        };
        match renewed {
            Ok(true) => {
                state.renewed(sent + renewal - client.backend.drift(renewal));
                next = sent + every;
                if renewal < lease {
                    // The lease now ends with the hold: sleep until then, then let go.
                    last_renewed = true;
                    next = state.valid_until();
                }
                if failures > 0 {
                    tracing::info!(lock = %name, failures, "redis-locked: renewing the lock works again");
                    failures = 0;
                }
            }
            Ok(false) => return lose("auto-renewal found it expired or taken by another owner"),
            Err(e) => {
                failures += 1;
                let error = &e as &(dyn std::error::Error + 'static);
                if failures == 1 {
                    tracing::warn!(lock = %name, error, "redis-locked: renewing the lock failed; retrying");
                } else {
                    tracing::debug!(lock = %name, error, failures, "redis-locked: renewing the lock failed again; retrying");
                }
                // Sooner than usual: the lease is running out.
                next = Instant::now() + (every / 3).min(RENEWAL_RETRY);
            }
        }
    }
}

/// The longest pause between renewal attempts after one failed.
const RENEWAL_RETRY: Duration = Duration::from_millis(500);
