//! Compile tests of `#[redis_lock]`: what it accepts (`ui/pass`, built and run, never
//! touching Redis) and what it rejects, with the exact diagnostics (`ui/fail/*.stderr`).
//!
//! After changing a diagnostic, regenerate the snapshots with
//! `TRYBUILD=overwrite cargo test -p redis-locked-tests --test ui` and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
