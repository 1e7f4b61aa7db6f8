//! The model checked: with every fix in, no reachable state within the bound violates a
//! property; with one fix reverted, the checker finds the bug it fixes. Run with
//! `--nocapture` to see state counts and the counter-examples, step by step.

use redis_locked_model::check::{self, Report, Run};
use redis_locked_model::properties::{self, DEADLINE, FREE_LOCK, ORPHANS, UNKNOWN, VALIDITY};
use redis_locked_model::{Config, Fix, Fixes, LockModel};

/// How deep the standard check goes, in steps: every state reachable in this many steps
/// is checked. Deeper than the longest counter-example below (item 8, 18 steps).
const STEPS: usize = 22;

/// The bound `steps` of an exhaustive check, plus `REDIS_LOCKED_MODEL_EXTRA_STEPS` for a
/// deeper check.
fn steps(steps: usize) -> usize {
    let extra: usize = std::env::var("REDIS_LOCKED_MODEL_EXTRA_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    steps + extra
}

fn print_violations(report: &Report) {
    for (property, path) in &report.violations {
        println!("violated: {property}, after {} steps:", path.len());
        for step in path {
            println!("    {step}");
        }
    }
}

/// Checks `config` exhaustively to `steps` and asserts that nothing is violated, and that
/// the exploration reached handovers, announcements, confirmations and cleanups (a check
/// that never got there would prove nothing).
fn assert_holds(config: Config, steps: usize) {
    let report = check::run(LockModel::new(config), &Run::exhaustive(steps));
    println!(
        "{} states within {} steps, in {:.1?}",
        report.unique_states, report.steps, report.elapsed
    );
    print_violations(&report);
    assert!(
        report.violations.is_empty(),
        "the fixed protocol violates a property"
    );
    for property in [
        properties::HANDED_OVER,
        properties::ANNOUNCED,
        properties::CONFIRMING,
        properties::CLEANING,
    ] {
        assert!(
            report.reached.contains(&property),
            "the exploration never reached: {property}"
        );
    }
}

#[test]
fn with_every_fix_no_reachable_state_violates_a_property() {
    assert_holds(Config::standard(), steps(STEPS));
}

#[test]
fn with_every_fix_processes_that_wait_for_each_other_violate_nothing() {
    assert_holds(Config::waiting_processes(), steps(18));
}

#[test]
fn with_every_fix_three_processes_violate_nothing() {
    assert_holds(Config::three_processes(), steps(14));
}

/// Reverts `fix` in the standard configuration and asserts that the checker finds a state
/// violating `property` within the standard check's bound. Returns the counter-example's
/// length.
fn finds_when_reverted(fix: Fix, property: &'static str) -> usize {
    let config = Config::standard().with_fixes(Fixes::all().without(fix));
    let report = check::run(LockModel::new(config), &Run::find(property, STEPS));
    let Some(path) = report.violation(property) else {
        panic!("{fix:?} reverted: no counter-example to \"{property}\" within {STEPS} steps");
    };
    let item = fix
        .item()
        .map_or("found by the model".to_string(), |n| format!("item {n}"));
    println!(
        "{fix:?} ({item}) reverted: \"{property}\" violated after {} steps ({} states searched)",
        path.len(),
        report.unique_states
    );
    for step in path {
        println!("    {step}");
    }
    path.len()
}

#[test]
fn item_1_a_lease_counted_from_the_grant_outlives_redis_expiry() {
    finds_when_reverted(Fix::LeaseFromHandoffSent, VALIDITY);
}

#[test]
fn item_7_a_granted_waiter_dropped_strands_its_grant() {
    finds_when_reverted(Fix::GrantedDropReleases, ORPHANS);
}

#[test]
fn item_8_the_next_waiter_sleeps_on_a_free_lock_when_the_offered_one_left() {
    finds_when_reverted(Fix::PokeAfterOfferedLeft, FREE_LOCK);
}

#[test]
fn item_9_a_failed_handoff_strands_the_lock() {
    finds_when_reverted(Fix::HandoffFailureCleansUp, ORPHANS);
}

#[test]
fn item_10_a_cancelled_release_strands_the_lock() {
    finds_when_reverted(Fix::CancelledReleaseCleansUp, ORPHANS);
}

#[test]
fn item_12_a_resent_acquire_waits_on_its_own_token() {
    finds_when_reverted(Fix::IdempotentScripts, UNKNOWN);
}

#[test]
fn item_13_a_waiter_with_a_handover_pending_overstays_its_deadline() {
    finds_when_reverted(Fix::DeadlineWithHandoffPending, DEADLINE);
}

#[test]
fn an_offer_to_a_head_whose_attempt_is_in_flight_deletes_the_heads_lock() {
    finds_when_reverted(Fix::NoOfferDuringAttempt, VALIDITY);
}

#[test]
fn a_cleanup_that_pokes_nobody_leaves_a_late_release_unheard() {
    finds_when_reverted(Fix::CleanupPokes, FREE_LOCK);
}

#[test]
fn an_idempotent_handoff_that_keeps_the_old_expiry_outlives_it() {
    finds_when_reverted(Fix::IdempotentHandoffRestartsLease, VALIDITY);
}

/// A bug in the runtime's queue in Redis, found by this model with every fix in: ACQUIRE
/// checks with `LPOS` whether the entry is queued already only when ARGV[3] has `q`, which
/// the first attempt that joins (`j`) lacks. Resent after its reply was lost (ACQUIRE is
/// `resend_safe`), that attempt queues the acquisition twice; the withdraw of an
/// acquisition that gives up (`LREM ... 1`) takes out one entry; the holder's release
/// hands the lock to the other, its process still subscribed (the sweep comes later), which
/// ignores the message: nobody frees the lock until its lease ends. Asserted found until
/// the runtime fixes it (ACQUIRE checking `LPOS` whenever it joins: the checker then finds
/// nothing here to 24 steps).
#[test]
fn runtime_bug_a_resent_first_join_queues_an_acquisition_twice() {
    let report = check::run(
        LockModel::new(Config::queueing()),
        &Run::find(ORPHANS, STEPS),
    );
    let path = report
        .violation(ORPHANS)
        .expect("the duplicate entry strands a lock");
    println!("\"{ORPHANS}\" violated after {} steps:", path.len());
    for step in path {
        println!("    {step}");
    }
    assert!(path.iter().any(|step| step.contains("resent: Acquire")));
}

/// The fencing property has teeth: after an empty restart without the `TIME` floor, the
/// counter starts again from zero.
#[test]
fn without_the_time_floor_an_empty_restart_sends_fencing_tokens_back() {
    let mut config = Config::standard();
    config.time_floor = false;
    let report = check::run(
        LockModel::new(config),
        &Run::find(properties::FENCING, STEPS),
    );
    print_violations(&report);
    assert!(report.violation(properties::FENCING).is_some());
}

/// A wider check than the suite's: three processes, two faults a run, holders that extend
/// their lease. Takes minutes; run it with
/// `cargo test -p redis-locked-model -- --ignored --nocapture`.
#[test]
#[ignore]
fn deeper() {
    let mut config = Config::three_processes();
    config.faults = 2;
    config.extend = true;
    assert_holds(config, steps(15));
}
