//! One background thread with its own current-thread Tokio runtime, shared by all clients.
//!
//! It hosts what must outlive any runtime of the caller's: the pub/sub subscribers, the
//! auto-renewal of locks held by sync code, and releases started by dropping an async
//! guard (a cancelled future or a panic), which cannot be awaited where they start.

use std::sync::OnceLock;

use crate::util::error::LockError;

static BACKGROUND: OnceLock<Result<tokio::runtime::Handle, String>> = OnceLock::new();

/// The background runtime's handle, starting its thread on first use.
pub(crate) fn handle() -> Result<&'static tokio::runtime::Handle, LockError> {
    BACKGROUND
        .get_or_init(start)
        .as_ref()
        .map_err(|reason| std::io::Error::other(reason.clone()).into())
}

fn start() -> Result<tokio::runtime::Handle, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the redis-locked background runtime: {e}"))?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("redis-locked".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .map_err(|e| format!("could not start the redis-locked background thread: {e}"))?;
    Ok(handle)
}
