#![deny(warnings)]

mod billing {
    use redis_locked::{LockError, redis_lock};

    #[redis_lock(name = "a")]
    pub fn public() -> Result<(), LockError> {
        Ok(())
    }

    #[redis_lock(name = "b")]
    pub(crate) async fn crate_visible() -> Result<(), LockError> {
        private()
    }

    #[redis_lock(name = "c")]
    pub(super) fn parent_visible() -> Result<(), LockError> {
        Ok(())
    }

    pub mod nested {
        use redis_locked::{LockError, redis_lock};

        #[redis_lock(name = "d")]
        pub(in crate::billing) fn path_visible() -> Result<(), LockError> {
            Ok(())
        }
    }

    #[redis_lock(name = "e")]
    fn private() -> Result<(), LockError> {
        nested::path_visible()
    }
}

fn main() {
    let _ = billing::public;
    let _ = billing::crate_visible();
    let _ = billing::parent_visible;
}
