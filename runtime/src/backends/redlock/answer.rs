//! One server's answer to a Redlock acquisition (the QUORUM_ACQUIRE script), decoded in
//! this one place.

use crate::transport::reply::{Reply, unexpected};
use crate::util::error::LockError;

/// One server's reply to an acquisition (QUORUM_ACQUIRE).
pub(super) struct Answer {
    pub(super) granted: bool,
    /// When refused: the holder's remaining lease (PTTL).
    pub(super) pttl: i64,
    /// The server's fencing counter for the lock; `None` where it has none.
    pub(super) counter: Option<u64>,
    /// When granted: the server's clock in microseconds.
    pub(super) clock: u64,
}

impl Answer {
    /// A server's answer to a bare `SET NX PX` (a plain attempt): whether it granted it.
    /// A refusal does not tell the holder's lease (a PTTL of -2, "gone": the caller's next
    /// attempt, the script, is made at once and tells it).
    pub(super) fn of_set(granted: bool) -> Answer {
        Answer {
            granted,
            pttl: -2,
            counter: None,
            clock: 0,
        }
    }

    pub(super) fn parse(reply: &Reply) -> Result<Answer, LockError> {
        let number = |part: &Reply| match part {
            Reply::Bulk(bytes) => std::str::from_utf8(bytes).ok()?.parse::<u64>().ok(),
            _ => None,
        };
        let counter = |part: &Reply| match part {
            Reply::Nil => Ok(None),
            part => number(part).map(Some).ok_or_else(|| unexpected(reply)),
        };
        match reply {
            Reply::Array(parts) => match parts.as_slice() {
                [Reply::Int(1), held, clock] => Ok(Answer {
                    granted: true,
                    pttl: 0,
                    counter: counter(held)?,
                    clock: number(clock).ok_or_else(|| unexpected(reply))?,
                }),
                [Reply::Int(0), Reply::Int(pttl), held] => Ok(Answer {
                    granted: false,
                    pttl: *pttl,
                    counter: counter(held)?,
                    clock: 0,
                }),
                _ => Err(unexpected(reply)),
            },
            _ => Err(unexpected(reply)),
        }
    }
}
