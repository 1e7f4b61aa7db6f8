//! The blocking pool's models (tests/loom/src/pool.rs), each run with loom.

use redis_locked_loom::pool;

#[test]
fn open_is_idle_plus_checked_out_plus_connecting_at_every_step() {
    pool::open_is_idle_plus_checked_out_plus_connecting_at_every_step();
}

#[test]
fn no_caller_waits_while_a_place_is_free() {
    pool::no_caller_waits_while_a_place_is_free();
}

#[test]
fn a_resend_at_the_cap_does_not_wait_for_ever() {
    pool::a_resend_at_the_cap_does_not_wait_for_ever();
}

#[test]
fn a_pipelined_request_takes_only_idle_connections() {
    pool::a_pipelined_request_takes_only_idle_connections();
}
