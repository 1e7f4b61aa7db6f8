#![deny(warnings)]

use redis_locked::{LockError, redis_lock};

/// Docs are kept.
///
/// The `cfg`d twin below would clash with this function if either `cfg` were dropped.
#[must_use = "the report is the point"]
#[inline]
#[cfg(all())]
#[redis_lock(name = "report")]
#[allow(clippy::needless_return)]
pub fn report() -> Result<u32, LockError> {
    return Ok(1);
}

#[cfg(any())]
#[redis_lock(name = "report")]
pub fn report() -> Result<u32, LockError> {
    Ok(2)
}

// Attributes after `#[redis_lock]` reach it as part of the item and must be kept too.
#[redis_lock(name = "twin")]
#[cfg(any())]
pub fn twin() -> Result<u32, LockError> {
    this_does_not_exist()
}

#[redis_lock(name = "twin")]
#[cfg(all())]
#[deprecated = "kept"]
pub fn twin() -> Result<u32, LockError> {
    Ok(3)
}

#[redis_lock(name = "inner")]
fn inner_attributes() -> Result<(), LockError> {
    #![allow(unused_variables)]
    let unused = 1;
    Ok(())
}

#[redis_lock(name = "inner")]
async fn inner_attributes_async() -> Result<(), LockError> {
    #![allow(unused_variables)]
    let unused = 1;
    Ok(())
}

#[allow(deprecated)]
fn main() {
    let _ = report;
    let _ = twin;
    let _ = inner_attributes;
    let _ = inner_attributes_async();
}
