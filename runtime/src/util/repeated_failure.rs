//! A warning for a failure that a loop retries several times a second: logged when the
//! failures begin, then at most once every [`WARN_EVERY`] with how many there were since,
//! so that an outage fills no log with the same line four times a second.

use std::time::{Duration, Instant};

/// At most one warning this often while the failures go on.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(10);

/// The failures of one retried operation since it last worked.
#[derive(Debug, Default)]
pub(crate) struct RepeatedFailure {
    /// Failures not yet counted in a warning.
    unwarned: u32,
    /// When the last warning was logged; `None` while the operation works.
    warned_at: Option<Instant>,
}

impl RepeatedFailure {
    /// The operation failed at `now`: how many failures a warning logged now should name
    /// (this one included), or `None` when it is too soon after the last one.
    pub(crate) fn failed(&mut self, now: Instant) -> Option<u32> {
        self.unwarned += 1;
        match self.warned_at {
            Some(at) if now.saturating_duration_since(at) < WARN_EVERY => None,
            _ => {
                self.warned_at = Some(now);
                Some(std::mem::take(&mut self.unwarned))
            }
        }
    }

    /// The operation worked: whether it had failed since it last worked, so that its
    /// recovery is worth a line. The next failure warns at once.
    pub(crate) fn worked(&mut self) -> bool {
        std::mem::take(self).warned_at.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_at_the_first_failure_then_once_per_period_with_the_count_since() {
        let start = Instant::now();
        let mut failures = RepeatedFailure::default();
        assert_eq!(failures.failed(start), Some(1));
        // Four retries a second for the rest of the period: no warning.
        for quarter in 1..40 {
            let now = start + Duration::from_millis(250 * quarter);
            assert_eq!(failures.failed(now), None, "at {quarter} quarters");
        }
        assert_eq!(failures.failed(start + WARN_EVERY), Some(40));
        assert_eq!(failures.failed(start + WARN_EVERY), None);
    }

    #[test]
    fn after_it_works_again_the_next_failure_warns_at_once() {
        let start = Instant::now();
        let mut failures = RepeatedFailure::default();
        assert!(!failures.worked(), "nothing failed");
        assert_eq!(failures.failed(start), Some(1));
        assert_eq!(failures.failed(start + Duration::from_secs(1)), None);
        assert!(failures.worked(), "a recovery");
        assert_eq!(failures.failed(start + Duration::from_secs(2)), Some(1));
    }
}
