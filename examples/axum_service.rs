//! An axum service that bills orders, one bill of an order at a time across every instance
//! of the service: `POST /orders/{id}/bill` takes the Redis lock `order:{id}` around the
//! billing. Bills of different orders run side by side. `examples/examples/axum_service.rs`
//! is its `main`; the test serves [`app`] on a free port (`examples/tests/axum_service.rs`).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use redis::AsyncCommands;
use redis_locked::{LockError, redis_lock};

/// Where bills are counted: the count of order `id` is the Redis key `bills:{id}`.
#[derive(Clone)]
pub struct Billing {
    store: redis::aio::MultiplexedConnection,
}

impl Billing {
    pub fn new(store: redis::aio::MultiplexedConnection) -> Billing {
        Billing { store }
    }
}

/// The service's routes.
pub fn app(billing: Billing) -> Router {
    Router::new()
        .route("/orders/{id}/bill", post(bill_order))
        .with_state(billing)
}

/// Answers with the number of the bill just made (`1` for an order's first), or
/// `503 Service Unavailable` when the order's lock could not be had.
async fn bill_order(
    State(billing): State<Billing>,
    Path(id): Path<u64>,
) -> Result<String, (StatusCode, String)> {
    match bill(id, &billing).await {
        Ok(number) => Ok(number.to_string()),
        Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

/// Makes the next bill of order `id`. Reading the count and writing it back are two
/// requests to Redis: correct only because no other bill of the order runs in between, in
/// this process or any other. A caller waits at most 5 s for the order's lock.
#[redis_lock(name = "order:{id}", expire = 10, timeout = 5)]
pub async fn bill(id: u64, billing: &Billing) -> Result<u64, LockError> {
    let mut store = billing.store.clone();
    let key = format!("bills:{id}");
    let count: Option<u64> = store.get(&key).await?;
    let number = count.unwrap_or(0) + 1;
    let () = store.set(&key, number).await?;
    Ok(number)
}
