//! The pool of current-thread runtimes that sync callers drive for their requests on a
//! Cluster (see `blocking.rs`): at most the client's `max_connections`, each with the
//! cluster connection made on it (see `by_runtime.rs`), lent to one thread at a time.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use crate::util::sync::lock;

/// After this long unused, a runtime's connections may have been closed meanwhile: they
/// are given a turn to notice before a request is sent on them (as a blocking connection
/// unused this long is checked first, see `transport/conn.rs`).
const NOTICE_AFTER: Duration = crate::transport::conn::CHECK_AFTER;

/// The current-thread runtimes sync callers drive, idle ones with when they were last used.
pub(super) struct BlockingRuntimes {
    idle: Mutex<Vec<(Runtime, Instant)>>,
    /// How many exist, idle or in use.
    made: Mutex<usize>,
    cap: usize,
}

impl BlockingRuntimes {
    pub(super) fn new(cap: usize) -> BlockingRuntimes {
        BlockingRuntimes {
            idle: Mutex::new(Vec::new()),
            made: Mutex::new(0),
            cap,
        }
    }

    /// A runtime this thread may drive: `None` inside a runtime (which may not drive
    /// another one) or when every runtime of the pool is in use.
    pub(super) fn borrow_here(&self) -> Option<Borrowed<'_>> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return None;
        }
        self.borrow()
    }

    /// An idle runtime, or a new one under the cap.
    fn borrow(&self) -> Option<Borrowed<'_>> {
        if let Some(taken) = lock(&self.idle).pop() {
            return Some(Borrowed {
                pool: self,
                taken: Some(taken),
            });
        }
        {
            let mut made = lock(&self.made);
            if *made >= self.cap {
                return None;
            }
            *made += 1;
        }
        let built = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match built {
            Ok(runtime) => Some(Borrowed {
                pool: self,
                taken: Some((runtime, Instant::now())),
            }),
            Err(_) => {
                *lock(&self.made) -= 1;
                None
            }
        }
    }
}

/// A runtime taken from the pool, given back when dropped; one that a panic unwound through
/// is shut down instead (with its connection), and its place freed.
pub(super) struct Borrowed<'a> {
    pool: &'a BlockingRuntimes,
    taken: Option<(Runtime, Instant)>,
}

impl Borrowed<'_> {
    /// Runs `work` on this thread until it ends or `until` passes (then it is dropped, as
    /// an async caller's request is when its future is).
    pub(super) fn run<F: Future>(&self, work: F, until: Option<Instant>) -> Option<F::Output> {
        let (runtime, last_used) = self.taken.as_ref()?;
        if last_used.elapsed() >= NOTICE_AFTER {
            // Lets the connections' driver tasks read what arrived while nobody drove
            // them (a closed connection): the first yield has the I/O driver polled, the
            // second lets the tasks it woke run.
            runtime.block_on(async {
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
            });
        }
        runtime.block_on(async move {
            match until {
                Some(until) => tokio::time::timeout_at(until.into(), work).await.ok(),
                None => Some(work.await),
            }
        })
    }
}

impl Drop for Borrowed<'_> {
    fn drop(&mut self) {
        let Some((runtime, _)) = self.taken.take() else {
            return;
        };
        if std::thread::panicking() {
            runtime.shutdown_background();
            *lock(&self.pool.made) -= 1;
            return;
        }
        lock(&self.pool.idle).push((runtime, Instant::now()));
    }
}

impl Drop for BlockingRuntimes {
    /// Shuts the runtimes down without waiting: the client may be dropped inside an async
    /// task, where dropping a runtime the ordinary way would panic.
    fn drop(&mut self) {
        for (runtime, _) in lock(&self.idle).drain(..) {
            runtime.shutdown_background();
        }
    }
}
