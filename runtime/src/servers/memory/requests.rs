//! What reaches the store through a [`Route`](crate::servers::io::Route) rather than through
//! the backend's operations, answered as redis-server would.

use std::time::Duration;

use super::Memory;
use crate::protocol::counted::{COUNTED_ACQUIRE, COUNTED_EXTEND, COUNTED_HOLDERS, COUNTED_RELEASE};
use crate::protocol::scripts::{INSPECT, RELEASE, Script};
use crate::transport::reply::Reply;
use crate::util::error::LockError;

impl Memory {
    /// Runs `script` as redis-server would, for what reaches the store through a
    /// [`Route`](crate::servers::io::Route) rather than through the backend's operations: the
    /// readers' INSPECT and the background releases' RELEASE (see `cleanup.rs`).
    pub(crate) fn eval(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<Reply, LockError> {
        if script.sha == INSPECT.sha
            && let [key, ..] = keys
        {
            return Ok(match self.inspect(key) {
                None => Reply::Nil,
                Some(held) => Reply::Array(vec![
                    Reply::Bulk(held.value.into_bytes()),
                    Reply::Int(held.remaining.as_millis() as i64),
                    Reply::Bulk(held.fence.to_string().into_bytes()),
                    Reply::Int(held.subscribers as i64),
                ]),
            });
        }
        if script.sha == RELEASE.sha
            && let ([key, ..], [value, payload, ..]) = (keys, args)
        {
            return Ok(Reply::Int(i64::from(self.release(key, value, payload))));
        }
        if let Some(reply) = self.counted_eval(script, keys, args)? {
            return Ok(reply);
        }
        Err(not_run_here(script.body))
    }

    /// The scripts of locks several hold (see `memory/counted.rs`), or `None` for others.
    fn counted_eval(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<Option<Reply>, LockError> {
        let [key, ..] = keys else {
            return Ok(None);
        };
        let ms = |arg: &str| {
            arg.parse()
                .map(Duration::from_millis)
                .map_err(|_| not_run_here("a script with a malformed lease"))
        };
        Ok(match args {
            [value, lease, kind, flags] if script.sha == COUNTED_ACQUIRE.sha => {
                Some(self.counted_acquire(key, value, ms(lease)?, kind, flags.contains('f')))
            }
            [value, lease] if script.sha == COUNTED_EXTEND.sha => Some(Reply::Int(i64::from(
                self.counted_extend(key, value, ms(lease)?, None),
            ))),
            [value, hold, payload] if script.sha == COUNTED_EXTEND.sha => Some(Reply::Int(
                i64::from(self.counted_extend(key, value, ms(hold)?, Some(payload))),
            )),
            [value, payload, ..] if script.sha == COUNTED_RELEASE.sha => Some(Reply::Int(
                i64::from(self.counted_release(key, value, payload)),
            )),
            [] if script.sha == COUNTED_HOLDERS.sha => {
                Some(Reply::Int(self.counted_holders(key) as i64))
            }
            _ => None,
        })
    }

    /// Runs a plain command as redis-server would: `GET`, which the readers of a lock's
    /// owner send.
    pub(crate) fn command(&self, cmd: &redis::Cmd) -> Result<Reply, LockError> {
        let args: Vec<&[u8]> = cmd
            .args_iter()
            .filter_map(|arg| match arg {
                redis::Arg::Simple(bytes) => Some(bytes),
                // A cursor, or what a later `redis` adds: no `GET` has one.
                _ => None,
            })
            .collect();
        match args.as_slice() {
            [name, key] if name.eq_ignore_ascii_case(b"GET") => {
                let key = String::from_utf8_lossy(key);
                Ok(self
                    .get(&key)
                    .map_or(Reply::Nil, |value| Reply::Bulk(value.into_bytes())))
            }
            [name, ..] => Err(not_run_here(&String::from_utf8_lossy(name))),
            [] => Err(not_run_here("an empty command")),
        }
    }
}

/// A request the store does not answer: a bug in the crate, not the caller's input.
fn not_run_here(what: &str) -> LockError {
    LockError::invalid(format!(
        "internal error: the in-memory backend does not run {what}"
    ))
}
