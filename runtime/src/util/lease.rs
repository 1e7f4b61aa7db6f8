//! Leases as Redis takes them: whole milliseconds, within bounds.

use std::time::Duration;

use crate::util::error::LockError;

/// The longest lease: what `u64` nanoseconds hold (about 584 years), the same bound the
/// attribute's `expire` has. Redis itself refuses expiries near `i64::MAX` ms.
const MAX_LEASE: Duration = Duration::from_nanos(u64::MAX);

/// A lease in whole milliseconds, as Redis takes it; at least 1 ms.
pub(crate) fn lease_millis(lease: Duration) -> Result<u64, LockError> {
    if lease > MAX_LEASE {
        return Err(LockError::invalid(format!(
            "a lease must be at most {} seconds (about 584 years)",
            MAX_LEASE.as_secs()
        )));
    }
    match lease.as_millis() {
        0 => Err(LockError::invalid("a lease must be at least 1 ms")),
        // At most u64::MAX / 10^6, checked above.
        ms => Ok(ms as u64),
    }
}
