//! The axum example served on a free loopback port, against a redis-server of its own,
//! taking concurrent requests for one order and for several.

use std::net::SocketAddr;

use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use redis_locked::ClientBuilder;
use redis_locked_examples::axum_service::{Billing, app};
use redis_locked_tests::{RedisServer, lock_keys, read_counter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Sends `POST path` and returns the status code and the body.
async fn post(address: SocketAddr, path: String) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bills_of_one_order_never_overlap() {
    let server = RedisServer::start();
    let client = ClientBuilder::new(server.url()).build().unwrap();
    let store = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // The server runs each connection in a task of its own, which a scope does not reach:
    // the scope goes around each request instead (README, "Testing your code").
    let app = app(Billing::new(store)).layer(from_fn(move |request: Request, next: Next| {
        client.scope(next.run(request))
    }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    // 20 requests for order 1 and 5 each for orders 2 to 4, all sent at once.
    let orders =
        std::iter::repeat_n(1, 20).chain((2..=4).flat_map(|id| std::iter::repeat_n(id, 5)));
    let requests: Vec<_> = orders
        .map(|id| {
            let request = tokio::spawn(post(address, format!("/orders/{id}/bill")));
            (id, request)
        })
        .collect();
    let mut numbers = vec![Vec::new(); 5];
    for (id, request) in requests {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200, "{body}");
        numbers[id].push(body.parse::<u64>().unwrap());
    }

    // Each bill read the count the one before it wrote: no two of one order overlapped.
    let mut conn = server.connection();
    for (id, expected) in [(1, 20), (2, 5), (3, 5), (4, 5)] {
        numbers[id].sort();
        assert_eq!(
            numbers[id],
            (1..=expected).collect::<Vec<u64>>(),
            "order {id}"
        );
        assert_eq!(
            read_counter(&mut conn, &format!("bills:{id}")),
            expected as i64
        );
    }
    let locks: Vec<String> = lock_keys(&mut conn)
        .into_iter()
        .filter(|key| !key.starts_with("bills:"))
        .collect();
    assert!(locks.is_empty(), "every lock released: {locks:?}");
}
