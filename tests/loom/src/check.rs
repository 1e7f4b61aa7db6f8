//! How the models are run: loom, bounded.

/// Preemptions per execution when `LOOM_MAX_PREEMPTIONS` does not say. At 3 the whole
/// crate runs in about 40 s of one core; at 2 the bug these models found (a handover of
/// unknown outcome to a waiter that had left) went unseen. Set the variable to look
/// deeper: at 4 they pass too, in about 10 minutes.
const PREEMPTIONS: usize = 3;

/// Runs `model` in every interleaving of its threads that preempts at most
/// [`PREEMPTIONS`] times (or `LOOM_MAX_PREEMPTIONS`).
pub(crate) fn check(model: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound.get_or_insert(PREEMPTIONS);
    builder.check(model);
}
