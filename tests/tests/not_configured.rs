//! Without `init`, the default client is missing: a `NotConfigured` error, not a panic.

use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "anything")]
async fn needs_default_client() -> Result<(), LockError> {
    unreachable!("the body must not run without a lock");
}

#[redis_lock(name = "anything")]
fn needs_default_client_sync() -> Result<(), LockError> {
    unreachable!("the body must not run without a lock");
}

#[tokio::test]
async fn no_default_client_is_not_configured() {
    assert!(matches!(
        needs_default_client().await,
        Err(LockError::NotConfigured)
    ));
    assert!(matches!(
        needs_default_client_sync(),
        Err(LockError::NotConfigured)
    ));
}
