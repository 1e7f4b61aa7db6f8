//! Lock names built from arguments, named clients, and the registry's errors.

use std::time::Duration;

use redis_locked::{ClientBuilder, LockError, redis_lock};
use redis_locked_tests::{RedisServer, lock_keys, token_in};

struct Order {
    id: u64,
}

impl std::fmt::Display for Order {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "order-{}", self.id)
    }
}

/// Reads the lock key's owner from inside the body, through a plain connection.
#[redis_lock(name = "invoice:{customer}:{order}", client = "named-a", expire = 30)]
fn key_inside(
    customer: &str,
    order: &Order,
    conn: &mut redis::Connection,
) -> Result<Option<String>, LockError> {
    Ok(redis::cmd("GET")
        .arg(format!("lock:{{invoice:{customer}:{order}}}"))
        .query(conn)?)
}

#[redis_lock(name = "shared", client = "named-b", expire = 30)]
async fn on_client_b(conn: &mut redis::aio::MultiplexedConnection) -> Result<bool, LockError> {
    Ok(redis::cmd("EXISTS")
        .arg("b:{shared}")
        .query_async(conn)
        .await?)
}

#[redis_lock(name = "x", client = "never-registered")]
async fn unknown_client() -> Result<(), LockError> {
    Ok(())
}

#[test]
fn placeholders_format_arguments_into_the_key() {
    let server = RedisServer::start();
    redis_locked::register("named-a", &server.url()).unwrap();
    let mut conn = server.connection();
    let owner = key_inside("acme", &Order { id: 7 }, &mut conn).unwrap();
    assert!(
        owner.is_some_and(|v| token_in(&v).len() == 32),
        "key lock:{{invoice:acme:order-7}} held in the body"
    );
    let keys = lock_keys(&mut conn);
    assert!(keys.is_empty(), "released after: {keys:?}");
}

#[tokio::test]
async fn named_clients_are_separate_servers_with_their_own_options() {
    let server_a = RedisServer::start();
    let server_b = RedisServer::start();
    ClientBuilder::new(server_b.url())
        .key_prefix("b:")
        .default_lease(Duration::from_secs(3))
        .register("named-b")
        .unwrap();
    let mut conn = redis::Client::open(server_b.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    assert!(
        on_client_b(&mut conn).await.unwrap(),
        "held on server b under prefix b:"
    );
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut server_a.connection())
        .unwrap();
    assert!(keys.is_empty(), "nothing on server a: {keys:?}");
}

#[tokio::test]
async fn unknown_client_is_an_error_and_the_body_does_not_run() {
    match unknown_client().await {
        Err(LockError::UnknownClient { client }) => assert_eq!(client, "never-registered"),
        other => panic!("{other:?}"),
    }
}
