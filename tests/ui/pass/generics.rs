#![deny(warnings)]

use std::fmt::Display;
use std::hash::Hash;

use redis_locked::{LockError, redis_lock};

#[redis_lock(name = "cache:{key}")]
fn longest<'a, 'b: 'a, K>(key: K, a: &'a str, b: &'b str) -> Result<&'a str, LockError>
where
    K: Display + Hash,
{
    Ok(if a.len() >= b.len() { a } else { b })
}

#[redis_lock(name = "cache:{key}", expire = 1)]
async fn first<'a, K, T: Clone + Send + Sync, const N: usize>(
    key: &'a K,
    items: &'a [T; N],
) -> Result<Option<T>, LockError>
where
    K: Display + Sync + ?Sized,
{
    Ok(items.first().cloned())
}

fn main() {
    let _ = longest::<u8>;
    let _ = first("k", &[1, 2, 3]);
}
