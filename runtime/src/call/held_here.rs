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

use crate::client::LockClient;
use crate::error::LockError;
use crate::guard::{Held, SharedHold};

tokio::task_local! {
    static HELD_IN_TASK: Vec<SharedHold>;
}

thread_local! {
    static HELD_ON_THREAD: RefCell<Vec<SharedHold>> = const { RefCell::new(Vec::new()) };
}

/// Looks for lock `name` of `client` among those this task or thread holds: `None` when
/// not held here; else a guard passing through (`reentrant`) or the deadlock it would be.
pub(super) fn find(
    client: &LockClient,
    name: &str,
    reentrant: bool,
) -> Option<Result<Held, LockError>> {
    let matches = |hold: &&SharedHold| hold.is(client, name);
    let found = HELD_IN_TASK
        .try_with(|held| held.iter().find(matches).cloned())
        .ok()
        .flatten()
        .or_else(|| HELD_ON_THREAD.with_borrow(|held| held.iter().find(matches).cloned()))?;
    Some(if reentrant {
        Ok(found.pass_through())
    } else {
        Err(LockError::WouldDeadlock {
            name: name.to_string(),
        })
    })
}

/// Runs `body` with `hold` added to the locks this task holds.
pub(super) fn in_task<F: Future>(hold: SharedHold, body: F) -> impl Future<Output = F::Output> {
    let mut held = HELD_IN_TASK.try_with(Vec::clone).unwrap_or_default();
    held.push(hold);
    HELD_IN_TASK.scope(held, body)
}

/// Adds `hold` to the locks this thread holds, and enters `span`, until the returned value
/// is dropped.
pub(super) fn on_thread(hold: SharedHold, span: tracing::Span) -> OnThread {
    HELD_ON_THREAD.with_borrow_mut(|held| held.push(hold));
    OnThread {
        _entered: span.entered(),
    }
}

pub(super) struct OnThread {
    _entered: tracing::span::EnteredSpan,
}

impl Drop for OnThread {
    fn drop(&mut self) {
        // Sync calls nest strictly on a thread: the last one recorded is this one.
        HELD_ON_THREAD.with_borrow_mut(|held| held.pop());
    }
}
