//! What an acquisition keeps in memory while it waits: thousands of tasks may wait for one
//! lock at once.

use redis_locked::Lock;

/// An acquisition's future holds what waiting needs (its place in the queue, its deadline,
/// the holder's lease end), not the state of a request to Redis: an attempt's state, some
/// 3 KB with the `redis` crate's own, is on the heap only while the attempt runs. It was
/// 4,208 bytes when the attempt's state was part of it.
#[test]
fn a_waiting_acquisition_holds_under_a_kilobyte() {
    // Nothing listens there: making the future sends nothing.
    redis_locked::register("footprint", "redis://127.0.0.1:1").unwrap();
    let lock = Lock::with_client("footprint", "footprint").unwrap();
    let acquisition = lock.acquire(None);
    let size = std::mem::size_of_val(&acquisition);
    assert!(size <= 1024, "an acquisition's future is {size} bytes");
}
