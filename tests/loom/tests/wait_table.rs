//! The wait table's models (tests/loom/src/wait_table.rs), each run with loom.

use redis_locked_loom::wait_table;

#[test]
fn only_the_head_attempts_one_request_at_a_time() {
    wait_table::only_the_head_attempts_one_request_at_a_time();
}

#[test]
fn every_offer_is_settled_exactly_once() {
    wait_table::every_offer_is_settled_exactly_once();
}

#[test]
fn a_releaser_cut_short_leaves_nobody_waiting() {
    wait_table::a_releaser_cut_short_leaves_nobody_waiting();
}

#[test]
fn a_granted_waiter_holds_the_lock_or_its_token_is_freed() {
    wait_table::a_granted_waiter_holds_the_lock_or_its_token_is_freed();
}

#[test]
fn the_head_is_poked_after_everything_that_frees_the_lock() {
    wait_table::the_head_is_poked_after_everything_that_frees_the_lock();
}
