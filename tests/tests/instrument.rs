//! `#[tracing::instrument]` and `#[redis_lock]` on one function, in both orders. Each
//! attribute wraps what the ones above it produced, so the lower one ends up outermost:
//! `#[instrument]` above `#[redis_lock]` enters the function's span inside the lock's,
//! after acquiring; `#[redis_lock]` above `#[instrument]` acquires inside the function's
//! span. Either way both spans are there, the body runs holding the lock, and it is
//! released after.
#![deny(warnings)]

use std::sync::{Arc, Mutex};

use redis_locked::{Lock, LockError, redis_lock};
use redis_locked_tests::RedisServer;
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const CLIENT: &str = "instrument";

/// For each event, the names of the spans it was logged in, innermost first.
#[derive(Clone, Default)]
struct Scopes(Arc<Mutex<Vec<Vec<&'static str>>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Scopes {
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let scope = ctx
            .event_scope(event)
            .map(|scope| scope.map(|span| span.name()).collect())
            .unwrap_or_default();
        self.0.lock().unwrap().push(scope);
    }
}

impl Scopes {
    fn take(&self) -> Vec<Vec<&'static str>> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

fn held(name: &str) -> bool {
    Lock::with_client(CLIENT, name)
        .unwrap()
        .is_locked_blocking()
        .unwrap()
}

async fn held_async(name: &str) -> bool {
    Lock::with_client(CLIENT, name)
        .unwrap()
        .is_locked()
        .await
        .unwrap()
}

#[tracing::instrument]
#[redis_lock(name = "above:{id}", client = "instrument")]
async fn instrument_above(id: u64) -> Result<bool, LockError> {
    tracing::info!("body");
    Ok(held_async(&format!("above:{id}")).await)
}

#[redis_lock(name = "below:{id}", client = "instrument")]
#[tracing::instrument]
async fn instrument_below(id: u64) -> Result<bool, LockError> {
    tracing::info!("body");
    Ok(held_async(&format!("below:{id}")).await)
}

#[tracing::instrument]
#[redis_lock(name = "above-sync:{id}", client = "instrument")]
fn instrument_above_sync(id: u64) -> Result<bool, LockError> {
    tracing::info!("body");
    Ok(held(&format!("above-sync:{id}")))
}

#[redis_lock(name = "below-sync:{id}", client = "instrument")]
#[tracing::instrument]
fn instrument_below_sync(id: u64) -> Result<bool, LockError> {
    tracing::info!("body");
    Ok(held(&format!("below-sync:{id}")))
}

#[tokio::test]
async fn both_orders_hold_the_lock_in_both_spans() {
    let server = RedisServer::start();
    redis_locked::register(CLIENT, &server.url()).unwrap();
    let scopes = Scopes::default();
    // This thread only: the test runs on a current-thread runtime.
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(scopes.clone()));

    assert!(instrument_above(1).await.unwrap(), "held in the body");
    assert!(!held_async("above:1").await, "released after");
    assert_eq!(scopes.take(), [["instrument_above", "redis_lock"]]);

    assert!(instrument_below(2).await.unwrap(), "held in the body");
    assert!(!held_async("below:2").await, "released after");
    assert_eq!(scopes.take(), [["redis_lock", "instrument_below"]]);

    // The sync functions block this thread, which is what they are for in a test.
    assert!(instrument_above_sync(3).unwrap());
    assert!(!held_async("above-sync:3").await);
    assert_eq!(scopes.take(), [["instrument_above_sync", "redis_lock"]]);

    assert!(instrument_below_sync(4).unwrap());
    assert!(!held_async("below-sync:4").await);
    assert_eq!(scopes.take(), [["redis_lock", "instrument_below_sync"]]);
}
