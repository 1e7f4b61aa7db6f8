//! No two holders at once: async tasks, threads and a second process all increment one
//! counter with a non-atomic GET-then-SET inside the lock, and the final count is exact.

use std::process::Command;
use std::sync::Arc;

use redis_locked::{LockError, redis_lock};
use redis_locked_tests::{RedisServer, read_counter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TASKS: usize = 16;
const THREADS: usize = 4;
const PROCESS_ITERATIONS: u32 = 300;
const ITERATIONS: usize = 200;

/// A deliberately non-atomic increment over its own plain connection: a GET, a yield, a SET.
async fn raw(stream: &mut TcpStream, command: &[&str]) -> String {
    let mut out = format!("*{}\r\n", command.len());
    for part in command {
        out.push_str(&format!("${}\r\n{}\r\n", part.len(), part));
    }
    stream.write_all(out.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 256];
    let n = stream.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[redis_lock(name = "counter", client = "mutex", expire = 10)]
async fn increment_async(stream: &mut TcpStream) -> Result<(), LockError> {
    let reply = raw(stream, &["GET", "count"]).await;
    let value: i64 = reply
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    tokio::task::yield_now().await;
    raw(stream, &["SET", "count", &(value + 1).to_string()]).await;
    Ok(())
}

#[redis_lock(name = "counter", client = "mutex", expire = 10)]
fn increment_sync(conn: &mut redis::Connection) -> Result<(), LockError> {
    let value = read_counter(conn, "count");
    std::thread::yield_now();
    let _: () = redis::cmd("SET").arg("count").arg(value + 1).query(conn)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_threads_and_another_process_never_overlap() {
    let server = Arc::new(RedisServer::start());
    redis_locked::register("mutex", &server.url()).unwrap();

    let process = Command::new(env!("CARGO_BIN_EXE_contender"))
        .args(["count", &server.url(), "counter", "count"])
        .arg(PROCESS_ITERATIONS.to_string())
        .spawn()
        .unwrap();

    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let port = server.port();
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            for _ in 0..ITERATIONS {
                increment_async(&mut stream).await.unwrap();
            }
        }));
    }
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let server = server.clone();
            std::thread::spawn(move || {
                let mut conn = server.connection();
                for _ in 0..ITERATIONS {
                    increment_sync(&mut conn).unwrap();
                }
            })
        })
        .collect();

    for task in tasks {
        task.await.unwrap();
    }
    for thread in threads {
        thread.join().unwrap();
    }
    let status = tokio::task::spawn_blocking(move || {
        let mut process = process;
        process.wait()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(status.success());

    let expected = (TASKS * ITERATIONS + THREADS * ITERATIONS) as i64 + PROCESS_ITERATIONS as i64;
    assert_eq!(read_counter(&mut server.connection(), "count"), expected);
}
