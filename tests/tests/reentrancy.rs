//! A locked function that calls, directly or through others, one locking the same name in
//! the same task or thread would wait for itself. By default the inner call fails at once
//! with `WouldDeadlock`; with `reentrant` it passes through without asking Redis, and the
//! lock is released when the outermost call ends. Other tasks and threads still wait.

use std::time::{Duration, Instant};

use redis_locked::{LockError, redis_lock};
use redis_locked_tests::{RedisServer, scripts_run};

fn held(server: &RedisServer, name: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(format!("lock:{{{name}}}"))
        .query(&mut server.connection())
        .unwrap()
}

// Not reentrant: the nested call fails at once.
#[redis_lock(name = "plain:{id}", client = "reenter", expire = 10)]
async fn plain_outer(id: u32) -> Result<Result<(), LockError>, LockError> {
    Ok(plain_middle(id).await)
}

async fn plain_middle(id: u32) -> Result<(), LockError> {
    plain_inner(id).await
}

#[redis_lock(name = "plain:{id}", client = "reenter", expire = 10, timeout = 5)]
async fn plain_inner(id: u32) -> Result<(), LockError> {
    Ok(())
}

// Reentrant: recursion and a call chain through a second function.
#[redis_lock(name = "tree:{id}", client = "reenter", expire = 10, reentrant, guard = lock)]
async fn descend(server: &RedisServer, id: u32, depth: u32) -> Result<(u64, u64), LockError> {
    let fence = lock.fencing_token();
    if depth == 0 {
        return Ok((fence, scripts_run(server)));
    }
    let (inner_fence, scripts) = Box::pin(descend(server, id, depth - 1)).await?;
    assert_eq!(
        inner_fence, fence,
        "the nested call holds the same acquisition"
    );
    assert!(
        held(server, &format!("tree:{id}")),
        "still held after the nested call"
    );
    Ok((fence, scripts))
}

#[redis_lock(name = "chain:{id}", client = "reenter", expire = 10, reentrant)]
async fn chain_outer(server: &RedisServer, id: u32) -> Result<u64, LockError> {
    let before = scripts_run(server);
    chain_middle(server, id).await?;
    Ok(scripts_run(server) - before)
}

async fn chain_middle(server: &RedisServer, id: u32) -> Result<(), LockError> {
    chain_inner(server, id).await
}

#[redis_lock(name = "chain:{id}", client = "reenter", expire = 10, reentrant)]
async fn chain_inner(server: &RedisServer, id: u32) -> Result<(), LockError> {
    assert!(held(server, &format!("chain:{id}")));
    Ok(())
}

// Sync: the same, on a thread.
#[redis_lock(name = "sync:{id}", client = "reenter-sync", expire = 10)]
fn sync_outer(id: u32) -> Result<Result<(), LockError>, LockError> {
    Ok(sync_inner(id))
}

#[redis_lock(name = "sync:{id}", client = "reenter-sync", expire = 10, timeout = 5)]
fn sync_inner(id: u32) -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(
    name = "sync-tree:{id}",
    client = "reenter-sync",
    expire = 10,
    reentrant
)]
fn sync_descend(server: &RedisServer, id: u32, depth: u32) -> Result<u32, LockError> {
    if depth == 0 {
        return Ok(0);
    }
    let below = sync_descend(server, id, depth - 1)?;
    assert!(held(server, &format!("sync-tree:{id}")));
    Ok(below + 1)
}

// Another task or thread is not the holder: it waits as usual.
#[redis_lock(name = "shared:{id}", client = "reenter", expire = 10, reentrant)]
async fn spawn_while_holding(id: u32) -> Result<Result<(), LockError>, LockError> {
    let other_task = tokio::spawn(timed_out_try(id)).await.unwrap();
    let other_thread = std::thread::spawn(move || sync_try(id)).join().unwrap();
    assert!(
        matches!(other_thread, Err(LockError::Timeout { .. })),
        "{other_thread:?}"
    );
    Ok(other_task)
}

#[redis_lock(
    name = "shared:{id}",
    client = "reenter",
    expire = 10,
    timeout = 0.2,
    reentrant
)]
async fn timed_out_try(id: u32) -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(
    name = "shared:{id}",
    client = "reenter",
    expire = 10,
    timeout = 0.2,
    reentrant
)]
fn sync_try(id: u32) -> Result<(), LockError> {
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_calls_fail_fast_or_pass_through() {
    let server = RedisServer::start();
    redis_locked::register("reenter", &server.url()).unwrap();

    // Without `reentrant`: at once, not after the inner call's 5 s timeout.
    let start = Instant::now();
    let inner = plain_outer(1).await.unwrap();
    assert!(
        matches!(&inner, Err(LockError::WouldDeadlock { name }) if name == "plain:1"),
        "{inner:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(!held(&server, "plain:1"), "the outer call released");

    // With it: recursion three deep, one acquisition, released at the end.
    let before = scripts_run(&server);
    let (_, at_bottom) = descend(&server, 2, 3).await.unwrap();
    assert_eq!(
        at_bottom - before,
        1,
        "only the outermost call took the lock"
    );
    assert!(!held(&server, "tree:2"));

    // And through a function in between.
    assert_eq!(
        chain_outer(&server, 3).await.unwrap(),
        0,
        "no script for the nested call"
    );
    assert!(!held(&server, "chain:3"));

    // A spawned task and another thread are not the holder: they wait, and time out.
    let other = spawn_while_holding(4).await.unwrap();
    assert!(matches!(other, Err(LockError::Timeout { .. })), "{other:?}");
}

#[test]
fn nested_sync_calls_fail_fast_or_pass_through() {
    let server = RedisServer::start();
    redis_locked::register("reenter-sync", &server.url()).unwrap();
    let start = Instant::now();
    let inner = sync_outer(1).unwrap();
    assert!(
        matches!(&inner, Err(LockError::WouldDeadlock { name }) if name == "sync:1"),
        "{inner:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(sync_descend(&server, 2, 4).unwrap(), 4);
    assert!(!held(&server, "sync-tree:2"));
}

// A sync holder whose body drives tasks of its own on a current-thread runtime.
#[redis_lock(name = "driven:{id}", client = "reenter-driven", expire = 10)]
fn sync_holder_driving_tasks(id: u32) -> Result<Vec<Result<(), LockError>>, LockError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let inside = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let local = tokio::task::LocalSet::new();
    let tasks: Vec<_> = (0..2)
        .map(|_| local.spawn_local(driven_task(id, inside.clone())))
        .collect();
    Ok(runtime.block_on(local.run_until(async move {
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    })))
}

#[redis_lock(
    name = "driven:{id}",
    client = "reenter-driven",
    reentrant,
    timeout = 0.2
)]
async fn driven_task(
    id: u32,
    inside: std::sync::Arc<std::sync::atomic::AtomicU32>,
) -> Result<(), LockError> {
    use std::sync::atomic::Ordering;
    let others = inside.fetch_add(1, Ordering::SeqCst);
    tokio::task::yield_now().await;
    inside.fetch_sub(1, Ordering::SeqCst);
    assert_eq!(others, 0, "two critical sections of one lock at once");
    Ok(())
}

/// Item 5 of the partial-failures review: the thread's record of a sync holder belongs to
/// that holder's own nested sync calls. Tasks its body drives on the same thread (a
/// current-thread runtime, a `LocalSet`) are not the holder: they wait for the lock like
/// anyone else (here until their timeout) instead of passing through side by side.
#[test]
fn tasks_driven_by_a_sync_holder_are_not_the_holder() {
    let server = RedisServer::start();
    redis_locked::register("reenter-driven", &server.url()).unwrap();
    let results = sync_holder_driving_tasks(1).unwrap();
    assert_eq!(results.len(), 2);
    for result in results {
        assert!(
            matches!(result, Err(LockError::Timeout { .. })),
            "{result:?}"
        );
    }
}

#[redis_lock(name = "same-runtime", client = "reenter-runtime", expire = 2)]
async fn async_holder(
    entered: tokio::sync::oneshot::Sender<()>,
    leave: tokio::sync::oneshot::Receiver<()>,
) -> Result<(), LockError> {
    entered.send(()).unwrap();
    leave.await.unwrap();
    Ok(())
}

#[redis_lock(
    name = "same-runtime",
    client = "reenter-runtime",
    expire = 2,
    reentrant
)]
fn sync_on_the_holders_thread() -> Result<(), LockError> {
    Ok(())
}

/// Item 18 of the partial-failures review: a sync locked function called on a
/// current-thread runtime while a task of that runtime holds its lock would block the
/// holder until its lease ran out and then run both critical sections; it fails at once.
#[test]
fn a_sync_call_blocking_the_holders_runtime_fails_fast() {
    let server = RedisServer::start();
    redis_locked::register("reenter-runtime", &server.url()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (entered, is_in) = tokio::sync::oneshot::channel();
        let (leave, left) = tokio::sync::oneshot::channel();
        let holder = tokio::spawn(async_holder(entered, left));
        is_in.await.unwrap();
        let start = Instant::now();
        let result = sync_on_the_holders_thread();
        assert!(
            matches!(&result, Err(LockError::WouldDeadlock { name }) if name == "same-runtime"),
            "{result:?}"
        );
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "{:?}",
            start.elapsed()
        );
        leave.send(()).unwrap();
        holder.await.unwrap().unwrap();
        // Once the task let go, the same call goes through.
        sync_on_the_holders_thread().unwrap();
    });
}
