//! A minimal executor for sync callers: polls a future on the calling thread, parking it
//! between wake-ups. It needs no Tokio runtime, so sync functions work outside any runtime
//! and inside one of any flavour alike (it never enters or nests a runtime).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Instant;

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `fut` to completion on this thread.
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    match block_on_until(fut, None) {
        Some(out) => out,
        None => unreachable!("no deadline was given"),
    }
}

thread_local! {
    /// This thread's waker, made once: a sync call runs two of these executors (acquire,
    /// release), and a waker made for each would be two allocations per call.
    static WAKER: Waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
}

/// Runs `fut` until it completes (`Some`) or `until` passes (`None`).
pub(crate) fn block_on_until<F: Future>(fut: F, until: Option<Instant>) -> Option<F::Output> {
    let mut fut = pin!(fut);
    // During a thread's destruction (a lock released by a thread-local's destructor) its
    // waker may be gone already: then one made for this call.
    let waker = WAKER
        .try_with(Waker::clone)
        .unwrap_or_else(|_| Waker::from(Arc::new(ThreadWaker(std::thread::current()))));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return Some(out);
        }
        match until {
            None => std::thread::park(),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return None;
                }
                std::thread::park_timeout(deadline - now);
            }
        }
    }
}
