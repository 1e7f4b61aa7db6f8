//! Tasks that start later on the background runtime, unless stopped first.
//!
//! A renewed lock's renewal sleeps a third of the lease before its first request, and most
//! locked calls end long before that. Spawning the renewal when the lock is taken and
//! aborting it at the release woke the background thread twice per call, from another
//! thread, for nothing (on the uncontended call, 6-7 µs of 25 µs with every CPU awake,
//! more on a VM whose idle CPUs halt). Here a task waits in one queue, sorted by its start
//! time, and a single scheduler task spawns it when that time comes; one stopped before
//! then is never spawned. The scheduler is woken only for a task due before the time it
//! already sleeps until, so a run of short calls costs it one wake-up per start time it
//! sleeps until, not two per call.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use tokio::task::AbortHandle;

use crate::util::sync::lock;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A task started later: stop it with [`Deferred::stop`] (dropping the handle does not).
pub(crate) struct Deferred {
    entry: Arc<Entry>,
}

struct Entry {
    task: Mutex<Started>,
    /// Set when stopped before it started, so that the queue can drop it early.
    stopped: AtomicBool,
}

enum Started {
    Not(Task),
    Yes(AbortHandle),
    Stopped,
}

impl Deferred {
    /// `task` spawned on the background runtime at `at` (at once if `at` has passed);
    /// `None` without a background runtime.
    pub(crate) fn start_at(
        at: Instant,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> Option<Deferred> {
        let scheduler = scheduler()?;
        let entry = Arc::new(Entry {
            task: Mutex::new(Started::Not(Box::pin(task))),
            stopped: AtomicBool::new(false),
        });
        let wake = {
            let mut queue = lock(&scheduler.queue);
            queue.compact_if_mostly_stopped(&scheduler.stopped);
            let sequence = queue.next_sequence;
            queue.next_sequence += 1;
            queue.waiting.push(Reverse(Queued {
                at,
                sequence,
                entry: entry.clone(),
            }));
            match queue.sleeps {
                Sleep::Awake => false,
                Sleep::Until(until) => at < until,
                Sleep::Idle => true,
            }
        };
        if wake {
            scheduler.wake.notify_one();
        }
        Some(Deferred { entry })
    }

    /// Stops the task: it never starts, or is aborted if it has.
    pub(crate) fn stop(&self) {
        let mut task = lock(&self.entry.task);
        match std::mem::replace(&mut *task, Started::Stopped) {
            Started::Not(_) => {
                self.entry.stopped.store(true, Ordering::Relaxed);
                if let Some(scheduler) = SCHEDULER.get().and_then(Option::as_ref) {
                    scheduler.stopped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Started::Yes(handle) => handle.abort(),
            Started::Stopped => {}
        }
    }
}

impl Entry {
    /// Spawns the task unless it was stopped.
    fn start(&self, runtime: &tokio::runtime::Handle) {
        let mut task = lock(&self.task);
        if !matches!(*task, Started::Not(_)) {
            return;
        }
        if let Started::Not(future) = std::mem::replace(&mut *task, Started::Stopped) {
            *task = Started::Yes(runtime.spawn(future).abort_handle());
        }
    }
}

struct Scheduler {
    queue: Mutex<Queue>,
    wake: tokio::sync::Notify,
    /// Tasks stopped before they started, still in the queue (about: reset by compaction).
    stopped: AtomicUsize,
}

struct Queue {
    waiting: BinaryHeap<Reverse<Queued>>,
    next_sequence: u64,
    sleeps: Sleep,
}

/// What the scheduler is doing, as it last said under the queue's lock.
enum Sleep {
    /// Looking at the queue: it sees whatever is added before it sleeps again.
    Awake,
    /// Asleep until the first task's start.
    Until(Instant),
    /// Asleep with nothing queued.
    Idle,
}

struct Queued {
    at: Instant,
    /// Ties broken in the order of arrival.
    sequence: u64,
    entry: Arc<Entry>,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Queued) -> bool {
        (self.at, self.sequence) == (other.at, other.sequence)
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Queued) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Queued) -> std::cmp::Ordering {
        (self.at, self.sequence).cmp(&(other.at, other.sequence))
    }
}

impl Queue {
    /// Drops stopped tasks once they are most of the queue: short calls under long leases
    /// would otherwise keep every call of the last third of a lease queued.
    fn compact_if_mostly_stopped(&mut self, stopped: &AtomicUsize) {
        let count = stopped.load(Ordering::Relaxed);
        if count < 1024 || count * 2 < self.waiting.len() {
            return;
        }
        self.waiting
            .retain(|Reverse(queued)| !queued.entry.stopped.load(Ordering::Relaxed));
        stopped.store(0, Ordering::Relaxed);
    }
}

static SCHEDULER: OnceLock<Option<Arc<Scheduler>>> = OnceLock::new();

/// The scheduler, its task started on the background runtime on first use.
fn scheduler() -> Option<&'static Arc<Scheduler>> {
    SCHEDULER
        .get_or_init(|| {
            let runtime = crate::util::background::handle().ok()?;
            let scheduler = Arc::new(Scheduler {
                queue: Mutex::new(Queue {
                    waiting: BinaryHeap::new(),
                    next_sequence: 0,
                    sleeps: Sleep::Awake,
                }),
                wake: tokio::sync::Notify::new(),
                stopped: AtomicUsize::new(0),
            });
            runtime.spawn(run(scheduler.clone(), runtime.clone()));
            Some(scheduler)
        })
        .as_ref()
}

/// Spawns each queued task at its time, sleeping in between.
async fn run(scheduler: Arc<Scheduler>, runtime: tokio::runtime::Handle) {
    loop {
        let (due, until) = {
            let mut queue = lock(&scheduler.queue);
            let now = Instant::now();
            let mut due = Vec::new();
            while let Some(Reverse(first)) = queue.waiting.peek()
                && first.at <= now
            {
                let Some(Reverse(first)) = queue.waiting.pop() else {
                    break;
                };
                if first.entry.stopped.load(Ordering::Relaxed) {
                    let _ =
                        scheduler
                            .stopped
                            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                                n.checked_sub(1)
                            });
                }
                due.push(first.entry);
            }
            let until = queue.waiting.peek().map(|Reverse(first)| first.at);
            queue.sleeps = match (due.is_empty(), until) {
                (false, _) => Sleep::Awake,
                (true, Some(until)) => Sleep::Until(until),
                (true, None) => Sleep::Idle,
            };
            (due, until)
        };
        if !due.is_empty() {
            for entry in due {
                entry.start(&runtime);
            }
            continue;
        }
        match until {
            Some(until) => {
                tokio::select! {
                    () = tokio::time::sleep_until(until.into()) => {}
                    () = scheduler.wake.notified() => {}
                }
            }
            None => scheduler.wake.notified().await,
        }
        lock(&scheduler.queue).sleeps = Sleep::Awake;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, mpsc};
    use std::time::{Duration, Instant};

    use super::Deferred;

    #[test]
    fn a_task_starts_at_its_time_and_a_stopped_one_never() {
        let (sender, started) = mpsc::channel();
        let start = Instant::now();
        let later = start + Duration::from_millis(150);
        let sent = sender.clone();
        let _kept = Deferred::start_at(later, async move {
            sent.send(Instant::now()).unwrap();
        })
        .unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let counted = ran.clone();
        let stopped = Deferred::start_at(start + Duration::from_millis(50), async move {
            counted.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
        stopped.stop();
        // An earlier task queued after a later one wakes the scheduler for it.
        let sent = sender.clone();
        let _earlier = Deferred::start_at(start + Duration::from_millis(20), async move {
            sent.send(Instant::now()).unwrap();
        })
        .unwrap();
        let first = started.recv_timeout(Duration::from_secs(5)).unwrap();
        let second = started.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(first >= start + Duration::from_millis(20), "started early");
        assert!(first < later, "the earlier task waited for the later one");
        assert!(second >= later, "started early");
        assert_eq!(ran.load(Ordering::Relaxed), 0, "a stopped task ran");
    }

    #[test]
    fn a_started_task_is_aborted_by_stop() {
        let (sender, dropped) = mpsc::channel::<()>();
        struct OnDrop(mpsc::Sender<()>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let (running, is_running) = mpsc::channel();
        let guard = OnDrop(sender);
        let task = Deferred::start_at(Instant::now(), async move {
            let _guard = guard;
            running.send(()).unwrap();
            std::future::pending::<()>().await
        })
        .unwrap();
        is_running.recv_timeout(Duration::from_secs(5)).unwrap();
        task.stop();
        dropped.recv_timeout(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn stopped_tasks_do_not_pile_up() {
        let far = Instant::now() + Duration::from_secs(3600);
        for _ in 0..10_000 {
            Deferred::start_at(far, async {}).unwrap().stop();
        }
        let scheduler = super::scheduler().unwrap();
        let queued = super::lock(&scheduler.queue).waiting.len();
        assert!(queued <= 3_000, "{queued} stopped tasks still queued");
    }
}
