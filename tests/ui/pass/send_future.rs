#![deny(warnings)]

use std::sync::Arc;

use redis_locked::{LockError, redis_lock};

fn assert_send<T: Send>(_: &T) {}

#[redis_lock(name = "send:{id}", expire = 5, auto_renew)]
async fn work(id: u64, shared: Arc<Vec<u8>>) -> Result<usize, LockError> {
    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    Ok(shared.len() + id as usize)
}

struct Service {
    calls: tokio::sync::Mutex<u64>,
}

impl Service {
    #[redis_lock(name = "service")]
    async fn call(&self) -> Result<u64, LockError> {
        let mut calls = self.calls.lock().await;
        *calls += 1;
        Ok(*calls)
    }
}

// Type-checks that the futures can be handed to `tokio::spawn`; never called.
fn spawn(service: &'static Service) {
    drop(tokio::spawn(work(1, Arc::new(Vec::new()))));
    drop(tokio::spawn(service.call()));
}

fn main() {
    let future = work(1, Arc::new(vec![1, 2, 3]));
    assert_send(&future);
    let service = Service {
        calls: tokio::sync::Mutex::new(0),
    };
    assert_send(&service.call());
    let _ = spawn;
}
