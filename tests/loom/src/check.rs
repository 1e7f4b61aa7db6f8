//! How the models are run: loom, bounded.

/// Preemptions per execution when `LOOM_MAX_PREEMPTIONS` does not say. At 3 the whole
/// crate runs in about half a minute on one core; at 2 one of the bugs these models found
/// (a handover of unknown outcome to a waiter that left) went unseen. Set the variable to
/// look deeper: at 4 the models take about half an hour.
const PREEMPTIONS: usize = 3;

/// Runs `model` in every interleaving of its threads that preempts at most
/// [`PREEMPTIONS`] times (or `LOOM_MAX_PREEMPTIONS`).
pub(crate) fn check(model: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound.get_or_insert(PREEMPTIONS);
    builder.check(model);
}
