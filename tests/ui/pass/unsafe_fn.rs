#![deny(warnings)]

use redis_locked::{LockError, redis_lock};

/// # Safety
///
/// `ptr` must be valid for reads.
#[redis_lock(name = "raw")]
unsafe fn read(ptr: *const u32) -> Result<u32, LockError> {
    Ok(unsafe { *ptr })
}

/// # Safety
///
/// `ptr` must be valid for reads.
#[redis_lock(name = "raw")]
async unsafe fn read_async(ptr: *const u32) -> Result<u32, LockError> {
    Ok(unsafe { *ptr })
}

#[redis_lock(name = "extern")]
#[allow(improper_ctypes_definitions)]
extern "C" fn callback() -> Result<(), LockError> {
    Ok(())
}

fn main() {
    let _ = read;
    let _ = unsafe { read_async(std::ptr::null()) };
    let _ = callback;
}
