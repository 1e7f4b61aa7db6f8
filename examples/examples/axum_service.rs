//! An axum service whose `POST /orders/{id}/bill` bills order `id` under the Redis lock
//! `order:{id}` (see `redis_locked_examples::axum_service`).
//!
//! ```text
//! cargo run -p redis-locked-examples --example axum_service   # REDIS_URL, else redis://127.0.0.1:6379
//! curl -X POST http://127.0.0.1:3000/orders/7/bill             # the number of the bill made
//! ```

use redis_locked_examples::axum_service::{Billing, app};

/// Where the service listens: loopback only, as befits an example.
const ADDRESS: &str = "127.0.0.1:3000";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    redis_locked::init(&url)?;
    let store = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let listener = tokio::net::TcpListener::bind(ADDRESS).await?;
    println!("billing orders on http://{ADDRESS}/orders/{{id}}/bill");
    axum::serve(listener, app(Billing::new(store))).await?;
    Ok(())
}
