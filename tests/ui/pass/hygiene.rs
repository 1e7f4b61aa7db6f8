#![deny(warnings)]
#![allow(dead_code)]

// Everything the expansion names is reached by absolute path, and its locals cannot be
// seen from, nor clash with, the user's code.
mod core {}

struct Result;
enum Option {}
struct Ok;
struct Err;
struct Duration;
struct String;
mod __private {}

type Outcome<T> = std::result::Result<T, redis_locked::LockError>;

// Parameters named like the generated locals: were the expansion unhygienic, its guard
// would shadow them and the bodies would not type-check.
#[redis_locked::redis_lock(name = "hygiene:{__redis_lock_guard}", expire = 1.5, timeout = 0)]
fn sync_locked(__redis_lock_guard: u8, __redis_lock_error: u8) -> Outcome<u8> {
    std::result::Result::Ok(__redis_lock_guard + __redis_lock_error)
}

#[redis_locked::redis_lock(name = "hygiene:{__redis_lock_result}", expire = 1, client = "c")]
async fn async_locked(__redis_lock_guard: u8, __redis_lock_result: u8) -> Outcome<u8> {
    let sum = __redis_lock_guard + __redis_lock_result;
    std::result::Result::Ok(sum)
}

macro_rules! locked {
    ($name:ident, $param:ident, $lease:expr) => {
        #[redis_locked::redis_lock(name = "macro:{id}", expire = $lease)]
        fn $name($param: u8) -> Outcome<u8> {
            std::result::Result::Ok($param)
        }
    };
}

locked!(from_macro, id, 2);

fn main() {
    let _ = sync_locked;
    let _ = async_locked(1, 2);
    let _ = from_macro;
}
