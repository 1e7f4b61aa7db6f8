//! Unit tests of the in-memory store that the differential test cannot reach.

use std::time::Duration;

use super::{Handoff, Memory};

const LEASE: Duration = Duration::from_secs(60);

/// A handover goes to everyone, announced, when another process subscribes: the
/// store's one subscriber is not counted as the releaser's own (`own` = 0).
#[test]
fn a_handover_releases_to_everyone_when_others_subscribe() {
    let memory = Memory::new();
    let mut announcements = memory.listen();
    memory.acquire("k", "old", LEASE, true);
    memory.subscribe("k");
    assert!(matches!(
        memory.handoff("k", ["old", "new"], LEASE, true, 1, "me"),
        Handoff::Handed { .. }
    ));
    assert!(
        announcements.try_recv().is_err(),
        "handed over: not announced"
    );
    assert_eq!(
        memory.handoff("k", ["new", "next"], LEASE, true, 0, "me"),
        Handoff::Released
    );
    assert!(memory.get("k").is_none());
    let announced = announcements.try_recv().unwrap();
    assert_eq!(
        (announced.channel.as_str(), announced.payload.as_str()),
        ("k", "me")
    );
    memory.unsubscribe(&["k".to_string()]);
    memory.reset("k", "me");
    assert!(announcements.try_recv().is_err(), "nobody subscribes");
}
