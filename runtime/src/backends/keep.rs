//! The release of a lock whose body ended before its minimum hold (`Lock::min_hold`): the
//! key is left to expire when the hold ends instead of being deleted (the KEEP script).

use std::time::Duration;

use crate::backends::backend::Backend;
use crate::protocol::counted::COUNTED_EXTEND;
use crate::protocol::scripts::KEEP;
use crate::servers::io::{Io, Route, eval_until};
use crate::transport::reply::Reply;
use crate::util::error::LockError;
use crate::util::kind::LockKind;

impl Backend {
    /// Leaves lock `key`, held under `value`, to expire `hold` from now (whole milliseconds,
    /// rounded up) and announces it, so that waiters look again; true when it was ours (on
    /// a Redlock quorum: on a majority).
    pub(crate) async fn keep<I: Io>(
        &self,
        io: &I,
        (name, key, value): (&str, &str, &str),
        hold: Duration,
        payload: &str,
        kind: LockKind,
    ) -> Result<bool, LockError> {
        // Rounded up: the lock must not end before the hold does.
        let ms = hold.as_nanos().div_ceil(1_000_000).max(1);
        let hold_ms = ms.to_string();
        let (keys, args) = ([key], [value, hold_ms.as_str(), payload]);
        let kept = |reply: Result<Reply, LockError>| Ok(reply?.as_int()? == 1);
        // A place among several holders is kept in their hash (see `protocol/counted.rs`).
        let script = match kind.is_counted() {
            true => &*COUNTED_EXTEND,
            false => &*KEEP,
        };
        match self {
            Backend::Redlock(quorum) => Ok(quorum
                .vote(io, name, &KEEP, &keys, &args, None)
                .await?
                .majority()),
            Backend::Single(single) => {
                kept(eval_until(io, Route::Single(single), script, &keys, &args, None).await)
            }
            Backend::Cluster(cluster) => {
                kept(eval_until(io, Route::Cluster(cluster), script, &keys, &args, None).await)
            }
            Backend::Memory(memory) if kind.is_counted() => kept(memory.eval(script, &keys, &args)),
            Backend::Memory(memory) => Ok(memory.keep(
                key,
                value,
                Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)),
                payload,
            )),
        }
    }
}
