//! `#[redis_lock]` on `#[async_trait]` methods. `#[async_trait]` on the impl runs first and
//! turns each `async fn` into a plain `fn` returning `Box::pin(async move { .. })`; the
//! lock must still be held while that future runs, not only while it is made.

use async_trait::async_trait;
use redis_locked::{Lock, LockError, redis_lock};
use redis_locked_tests::RedisServer;
use tokio::sync::oneshot;

const CLIENT: &str = "async-trait";

/// Where a body waits, so the test can look at the lock in the middle of it.
struct Pause {
    started: oneshot::Sender<()>,
    finish: oneshot::Receiver<()>,
}

impl Pause {
    async fn hold(self) {
        self.started.send(()).unwrap();
        self.finish.await.unwrap();
    }
}

#[async_trait]
trait Billing {
    async fn bill(&self, order_id: u64, pause: Pause) -> Result<u64, LockError>;

    // A provided method: `#[async_trait]` on the trait rewrites it the same way.
    #[redis_lock(name = "refund:{order_id}", client = "async-trait", timeout = 0)]
    async fn refund(&self, order_id: u64, pause: Pause) -> Result<u64, LockError> {
        pause.hold().await;
        Ok(order_id)
    }
}

struct Biller {
    fee: u64,
}

#[async_trait]
impl Billing for Biller {
    #[redis_lock(name = "invoice:{order_id}", client = "async-trait", guard = lock)]
    async fn bill(&self, order_id: u64, pause: Pause) -> Result<u64, LockError> {
        pause.hold().await;
        Ok(order_id * self.fee + lock.fencing_token())
    }
}

fn pause() -> (Pause, oneshot::Receiver<()>, oneshot::Sender<()>) {
    let (started, started_rx) = oneshot::channel();
    let (finish_tx, finish) = oneshot::channel();
    (Pause { started, finish }, started_rx, finish_tx)
}

async fn is_locked(name: &str) -> bool {
    Lock::with_client(CLIENT, name)
        .unwrap()
        .is_locked()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_is_held_while_the_future_runs() {
    let server = RedisServer::start();
    redis_locked::register(CLIENT, &server.url()).unwrap();
    // Through a trait object, which is what `#[async_trait]` is for.
    let biller: std::sync::Arc<dyn Billing + Send + Sync> = std::sync::Arc::new(Biller { fee: 10 });

    let (body_pause, started, finish) = pause();
    let call = tokio::spawn({
        let biller = biller.clone();
        async move { biller.bill(7, body_pause).await }
    });
    started.await.unwrap();
    assert!(
        is_locked("invoice:7").await,
        "held in the middle of the body"
    );
    let contender = Lock::with_client(CLIENT, "invoice:7").unwrap();
    assert!(contender.try_acquire().await.unwrap().is_none());
    finish.send(()).unwrap();
    assert_eq!(call.await.unwrap().unwrap(), 7 * 10 + 1);
    assert!(!is_locked("invoice:7").await, "released after the body");

    let (body_pause, started, finish) = pause();
    let call = tokio::spawn({
        let biller = biller.clone();
        async move { biller.refund(3, body_pause).await }
    });
    started.await.unwrap();
    assert!(
        is_locked("refund:3").await,
        "held in the middle of the provided method"
    );
    // A second refund of the same order cannot have the lock (`timeout = 0`).
    let (second_pause, _, _) = pause();
    assert!(matches!(
        biller.refund(3, second_pause).await,
        Err(LockError::Timeout { .. })
    ));
    finish.send(()).unwrap();
    assert_eq!(call.await.unwrap().unwrap(), 3);
    assert!(
        !is_locked("refund:3").await,
        "released after the provided method"
    );
}
