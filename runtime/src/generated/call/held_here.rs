//! Which locks the current task (async) or thread (sync) holds through `#[redis_lock]`.
//!
//! A locked function that calls, directly or through others, a function locking the same
//! name would wait for itself until its lease or timeout ran out. The calls record what
//! they hold here: async bodies in a task-local scope around the body (so a nested call in
//! the same task sees it, while a spawned task, or a sibling future in a `join!`, does not),
//! sync bodies in a thread-local stack. A call that finds its lock here fails at once with
//! `LockError::WouldDeadlock`, or with `reentrant` passes through without asking Redis.

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::runtime::{Handle, RuntimeFlavor};

use crate::algorithm::client::LockClient;
use crate::algorithm::held::Held;
use crate::algorithm::hold::SharedHold;
use crate::util::error::LockError;
use crate::util::sync::lock;

tokio::task_local! {
    static HELD_IN_TASK: Arc<[SharedHold]>;
}

thread_local! {
    static HELD_ON_THREAD: RefCell<Vec<SharedHold>> = const { RefCell::new(Vec::new()) };
}

/// Locks held by async bodies running on current-thread runtimes, with their runtime. A
/// sync call that blocks such a runtime's thread while one of its tasks holds the lock it
/// wants would stop the holder from ever releasing it. Only current-thread runtimes are
/// recorded: on a multi-thread runtime the holder runs on another worker.
static HELD_ON_CURRENT_THREAD_RUNTIMES: Mutex<Vec<(tokio::runtime::Id, SharedHold)>> =
    Mutex::new(Vec::new());

/// The current runtime, when it is a current-thread one.
fn current_thread_runtime() -> Option<tokio::runtime::Id> {
    Handle::try_current()
        .ok()
        .filter(|handle| handle.runtime_flavor() == RuntimeFlavor::CurrentThread)
        .map(|handle| handle.id())
}

/// Who is asking: an `async fn` (a task) or a sync `fn` (a thread).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Caller {
    Task,
    Thread,
}

/// Looks for lock `name` of `client` among those this task or thread holds: `None` when
/// not held here; else a guard passing through (`reentrant`) or the deadlock it would be.
///
/// The thread's record is consulted for sync callers only. A task that a sync body drives
/// on its own thread (a current-thread runtime's `block_on`, a `LocalSet`) runs on the
/// holder's thread but is not the holder: several such tasks would otherwise all pass
/// through at once and run their critical sections interleaved. A sync call made inside an
/// async body (blocking the task) is still that task's.
pub(super) fn find(
    client: &LockClient,
    name: &str,
    reentrant: bool,
    caller: Caller,
) -> Option<Result<Held, LockError>> {
    let matches = |hold: &&SharedHold| hold.is(client, name);
    let in_task = || {
        HELD_IN_TASK
            .try_with(|held| held.iter().find(matches).cloned())
            .ok()
            .flatten()
    };
    let on_thread = || HELD_ON_THREAD.with_borrow(|held| held.iter().find(matches).cloned());
    if caller == Caller::Thread
        && let Some(runtime) = current_thread_runtime()
        && lock(&HELD_ON_CURRENT_THREAD_RUNTIMES)
            .iter()
            .any(|(id, hold)| *id == runtime && hold.is(client, name))
    {
        // A task of the runtime this thread drives holds it: blocking here would keep
        // that task from ever releasing it. Passing through would interleave the two
        // critical sections, so not even `reentrant` does.
        return Some(Err(LockError::WouldDeadlock {
            name: name.to_string(),
        }));
    }
    let found = match caller {
        Caller::Task => in_task(),
        Caller::Thread => in_task().or_else(on_thread),
    }?;
    Some(if reentrant {
        Ok(Held::pass_through(&found))
    } else {
        Err(LockError::WouldDeadlock {
            name: name.to_string(),
        })
    })
}

/// Runs `body` with `holds` added to the locks this task holds.
pub(super) fn in_task<F: Future>(
    holds: &Arc<[SharedHold]>,
    body: F,
) -> impl Future<Output = F::Output> + use<F> {
    let on_runtime: Vec<OnRuntime> = match current_thread_runtime() {
        Some(runtime) => holds
            .iter()
            .map(|hold| OnRuntime::new(runtime, hold.clone()))
            .collect(),
        None => Vec::new(),
    };
    // The outermost locked call of a task (the usual case) shares its own list.
    let held = match HELD_IN_TASK.try_with(Arc::clone) {
        Ok(outer) => outer.iter().chain(holds.iter()).cloned().collect(),
        Err(_) => holds.clone(),
    };
    let body = HELD_IN_TASK.scope(held, body);
    async move {
        let _on_runtime = on_runtime;
        body.await
    }
}

/// A lock held by a task of a current-thread runtime, recorded until dropped.
struct OnRuntime {
    runtime: tokio::runtime::Id,
    hold: SharedHold,
}

impl OnRuntime {
    fn new(runtime: tokio::runtime::Id, hold: SharedHold) -> OnRuntime {
        lock(&HELD_ON_CURRENT_THREAD_RUNTIMES).push((runtime, hold.clone()));
        OnRuntime { runtime, hold }
    }
}

impl Drop for OnRuntime {
    fn drop(&mut self) {
        let mut held = lock(&HELD_ON_CURRENT_THREAD_RUNTIMES);
        if let Some(at) = held
            .iter()
            .position(|(id, hold)| *id == self.runtime && hold.same_as(&self.hold))
        {
            held.swap_remove(at);
        }
    }
}

/// Adds `holds` to the locks this thread holds, and enters `span`, until the returned value
/// is dropped.
pub(super) fn on_thread(holds: &[SharedHold], span: tracing::Span) -> OnThread {
    let count = holds.len();
    HELD_ON_THREAD.with_borrow_mut(|held| held.extend_from_slice(holds));
    OnThread {
        count,
        _entered: span.entered(),
    }
}

pub(super) struct OnThread {
    /// How many locks this call recorded.
    count: usize,
    _entered: tracing::span::EnteredSpan,
}

impl Drop for OnThread {
    fn drop(&mut self) {
        // Sync calls nest strictly on a thread: the last ones recorded are this call's.
        HELD_ON_THREAD.with_borrow_mut(|held| held.truncate(held.len().saturating_sub(self.count)));
    }
}
