//! Lock names built from fields of parameters (`{req.id}`, `{order.customer.id}`,
//! `{pair.0}`) and from names bound by destructuring patterns: each call holds the lock
//! whose name the template describes, seen in Redis while the body runs.

use redis_locked::{LockError, redis_lock};
use redis_locked_tests::{RedisServer, lock_keys};

struct Customer {
    id: u32,
}

struct Order {
    id: u64,
    customer: Customer,
}

struct Path<T>(T);

/// The lock keys in Redis while the body runs.
type Held = Result<Vec<String>, LockError>;

fn held(url: &str) -> Vec<String> {
    let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    lock_keys(&mut conn)
}

#[redis_lock(
    name = "customer:{order.customer.id}:order:{order.id:04}",
    client = "names"
)]
async fn nested_fields(order: &Order, url: &str) -> Held {
    Ok(held(url))
}

#[redis_lock(name = "pair:{pair.0}:{pair.1.1}", client = "names")]
fn tuple_fields(pair: (u8, (u16, u32)), url: &str) -> Held {
    Ok(held(url))
}

#[redis_lock(name = "path:{id}", client = "names")]
async fn tuple_struct_pattern(Path(id): Path<u64>, url: &str) -> Held {
    Ok(held(url))
}

#[redis_lock(name = "range:{a}-{b}", client = "names")]
fn tuple_pattern((a, b): (u64, u64), url: &str) -> Held {
    Ok(held(url))
}

#[redis_lock(name = "order:{id}", client = "names")]
async fn struct_pattern(Order { id, .. }: Order, url: &str) -> Held {
    Ok(held(url))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_come_from_fields_and_patterns() {
    let server = RedisServer::start();
    redis_locked::register("names", &server.url()).unwrap();
    let url = server.url();
    let order = || Order {
        id: 7,
        customer: Customer { id: 42 },
    };

    let keys = nested_fields(&order(), &url).await.unwrap();
    assert_eq!(keys, ["lock:{customer:42:order:0007}"]);
    let keys = tuple_struct_pattern(Path(9), &url).await.unwrap();
    assert_eq!(keys, ["lock:{path:9}"]);
    let keys = struct_pattern(order(), &url).await.unwrap();
    assert_eq!(keys, ["lock:{order:7}"]);

    let sync_url = url.clone();
    let (pair, range) = tokio::task::spawn_blocking(move || {
        (
            tuple_fields((1, (2, 3)), &sync_url).unwrap(),
            tuple_pattern((10, 20), &sync_url).unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(pair, ["lock:{pair:1:3}"]);
    assert_eq!(range, ["lock:{range:10-20}"]);

    assert!(held(&url).is_empty(), "every lock was released");
}
