//! Requests run side by side (one per server of a Redlock quorum). Async callers poll them
//! together. Sync callers, whose requests block, write every server's request first and
//! then read the replies in turn (`transport/pool/pipelined.rs`), each by its own deadline:
//! the round trips overlap without a thread per server, and a paused server holds up the
//! others no longer than its own bound, since theirs are read by then. Only a request that
//! needs a connection opened or waited for runs on a thread of its own, as does anything
//! else joined for sync callers ([`on_threads`]).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::Poll;
use std::time::Instant;

use crate::protocol::scripts::Script;
use crate::servers::single::Single;
use crate::transport::pool::pipelined::Progress;
use crate::transport::reply::Reply;
use crate::util::block_on::block_on;
use crate::util::error::LockError;

/// The request [`Io::each_request`](crate::servers::io::Io::each_request) sends to every server of a round.
#[derive(Clone, Copy)]
pub(crate) struct EachRequest<'a> {
    pub(crate) cmd: &'a redis::Cmd,
    /// Sent at once, without waiting for the others, to a server that answers `NOSCRIPT`
    /// to `cmd`: the script by body.
    pub(crate) if_noscript: Option<&'a ByBody<'a>>,
    /// Each request gives up then, or after the client's response timeout.
    pub(crate) until: Option<Instant>,
    /// Sent again as in [`Io::request`](crate::servers::io::Io::request).
    pub(crate) resend_safe: bool,
}

/// A script's `EVAL` by body, built only when a server turns out not to know the script:
/// the command carries the whole body, and almost every round gets by with `EVALSHA`.
pub(crate) struct ByBody<'a> {
    script: &'a Script,
    keys: &'a [&'a str],
    args: &'a [&'a str],
    eval: OnceLock<redis::Cmd>,
}

impl<'a> ByBody<'a> {
    pub(crate) fn new(script: &'a Script, keys: &'a [&'a str], args: &'a [&'a str]) -> Self {
        ByBody {
            script,
            keys,
            args,
            eval: OnceLock::new(),
        }
    }

    fn cmd(&self) -> &redis::Cmd {
        self.eval.get_or_init(|| {
            let mut eval = redis::cmd("EVAL");
            eval.arg(self.script.body)
                .arg(self.keys.len())
                .arg(self.keys)
                .arg(self.args);
            eval
        })
    }
}

impl<'a> EachRequest<'a> {
    /// The request a server that answered `NOSCRIPT` is sent instead.
    pub(super) fn by_body(self) -> EachRequest<'a> {
        match self.if_noscript {
            Some(eval) => EachRequest {
                cmd: eval.cmd(),
                if_noscript: None,
                ..self
            },
            None => self,
        }
    }
}

/// Polls every future until all are done; their outputs in order.
pub(super) async fn poll_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}

/// `Io::each_request` for async callers: the requests polled
/// together under one timer for the round (they share their deadline), not one each.
pub(super) async fn each_async(
    members: &[&Single],
    request: EachRequest<'_>,
) -> Vec<Result<Reply, LockError>> {
    /// One server's request, unbounded but for the round's timer.
    async fn send(single: &Single, request: EachRequest<'_>) -> Result<Reply, LockError> {
        let server = single.server(request.until).await?;
        let pools = &single.async_pools;
        (pools.request(&server.endpoint, request.cmd, request.resend_safe)).await
    }
    let until = request.until;
    let requests = members.iter().map(|member| async move {
        let outcome = send(member, request).await;
        match request.if_noscript {
            Some(_) if noscript(&outcome) => send(member, request.by_body()).await,
            _ => outcome,
        }
    });
    let mut futures: Vec<_> = requests.map(|future| Some(Box::pin(future))).collect();
    let mut outcomes: Vec<Option<Result<Reply, LockError>>> =
        members.iter().map(|_| None).collect();
    let mut deadline = until.map(|until| Box::pin(tokio::time::sleep_until(until.into())));
    poll_fn(|cx| {
        let mut pending = false;
        for (slot, outcome) in futures.iter_mut().zip(outcomes.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *outcome = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if !pending {
            return Poll::Ready(());
        }
        if let Some(deadline) = &mut deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            // Dropping a request half-way leaves its connection in step (see `pool.rs`).
            for (slot, outcome) in futures.iter_mut().zip(outcomes.iter_mut()) {
                if slot.take().is_some() {
                    *outcome = Some(Err(crate::util::error::deadline_passed()));
                }
            }
            return Poll::Ready(());
        }
        Poll::Pending
    })
    .await;
    let outcomes: Vec<_> = outcomes
        .into_iter()
        .map(|o| o.expect("every request ended"))
        .collect();
    for (member, outcome) in members.iter().zip(&outcomes) {
        member.check(outcome);
    }
    outcomes
}

/// Runs each future to completion on a thread of its own (the first on this one): a
/// blocking request completes when first polled, so polling them in turn would ask one
/// server after another, and one slow server would eat the time of the rest.
pub(super) fn on_threads<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        let mut futures = futures.into_iter();
        let first = futures.next();
        let others: Vec<_> = futures
            .map(|future| scope.spawn(move || block_on(future)))
            .collect();
        let mut outputs: Vec<F::Output> = first.into_iter().map(block_on).collect();
        outputs.extend(others.into_iter().map(|thread| {
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }));
        outputs
    })
}

/// [`request_blocking`], then by body when the server does not know the script.
fn request_blocking_or(
    single: &Single,
    request: EachRequest<'_>,
    fresh: bool,
) -> Result<Reply, LockError> {
    let EachRequest {
        cmd,
        until,
        resend_safe,
        ..
    } = request;
    let outcome = request_blocking(single, cmd, until, resend_safe, fresh);
    match request.if_noscript {
        Some(eval) if noscript(&outcome) => {
            request_blocking(single, eval.cmd(), until, resend_safe, false)
        }
        _ => outcome,
    }
}

/// One server's request made the ordinary way, blocking: it may wait for the server's
/// address (Sentinel), for a connection under the cap, or open one (`fresh`: a new one,
/// after an idle one turned out closed).
pub(super) fn request_blocking(
    single: &Single,
    cmd: &redis::Cmd,
    until: Option<Instant>,
    resend_safe: bool,
    fresh: bool,
) -> Result<Reply, LockError> {
    let server = single.server_blocking(until)?;
    let pool = &single.sync_pool;
    match fresh {
        false => pool.request(&server.endpoint, cmd, until, resend_safe),
        true => pool.request_fresh(&server.endpoint, cmd, until, resend_safe),
    }
}

/// `cmd` on every server of `members` at once from this thread, each bounded by `until`,
/// and `if_noscript` at once on a server that answers `NOSCRIPT`; the outcomes in order.
pub(super) fn each_blocking(
    members: &[&Single],
    request: EachRequest<'_>,
) -> Vec<Result<Reply, LockError>> {
    let EachRequest {
        cmd,
        if_noscript,
        until,
        resend_safe,
    } = request;
    /// Where one server's request stands.
    #[allow(
        clippy::large_enum_variant,
        reason = "one per server of a round; boxing would allocate for every request"
    )]
    enum State<'a, T> {
        /// Written on a pooled connection; `by_body` once `if_noscript` was sent instead.
        Pipelined {
            progress: Progress<'a>,
            by_body: bool,
        },
        /// Made the ordinary way on a thread of its own.
        Apart(T),
        Finished(Result<Reply, LockError>),
        /// Only while the state that follows is worked out.
        Replaced,
    }
    let servers: Vec<_> = members.iter().map(|member| member.server_now()).collect();
    // The same bytes go to every server.
    let packed = cmd.get_packed_command();
    std::thread::scope(|scope| {
        // Server `i`'s request (by body: `if_noscript`) on a thread of its own.
        let apart = |i: usize, by_body: bool, fresh: bool| {
            let member: &Single = members[i];
            let request = if by_body { request.by_body() } else { request };
            State::Apart(scope.spawn(move || request_blocking_or(member, request, fresh)))
        };
        let mut states: Vec<_> = members
            .iter()
            .zip(&servers)
            .enumerate()
            .map(|(i, (member, server))| {
                let started = server.as_ref().and_then(|server| {
                    let pool = &member.sync_pool;
                    pool.start_packed(&server.endpoint, cmd, Some(&packed), until, resend_safe)
                });
                match started {
                    Some(progress) => State::Pipelined {
                        progress,
                        by_body: false,
                    },
                    None => apart(i, false, false),
                }
            })
            .collect();
        // Every request is written by now: each reply is read by its own deadline, and a
        // written check is followed by its request, read in the next round.
        loop {
            let mut waiting = false;
            for (i, state) in states.iter_mut().enumerate() {
                if !matches!(state, State::Pipelined { .. }) {
                    continue;
                }
                *state = match std::mem::replace(state, State::Replaced) {
                    State::Pipelined {
                        progress: Progress::Sent(outstanding),
                        by_body,
                    } => {
                        waiting = true;
                        State::Pipelined {
                            progress: outstanding.advance(),
                            by_body,
                        }
                    }
                    State::Pipelined {
                        progress: Progress::Done(done),
                        by_body,
                    } => match if_noscript {
                        // Sent by body at once, on the connection that answered.
                        Some(eval) if !by_body && noscript(&done) => {
                            waiting = true;
                            let endpoint = &servers[i].as_ref().expect("pipelined").endpoint;
                            let pool = &members[i].sync_pool;
                            match pool.start(endpoint, eval.cmd(), until, resend_safe) {
                                Some(progress) => State::Pipelined {
                                    progress,
                                    by_body: true,
                                },
                                None => apart(i, true, false),
                            }
                        }
                        _ => State::Finished(done),
                    },
                    State::Pipelined {
                        progress: Progress::Again,
                        by_body,
                    } => apart(i, by_body, true),
                    other => other,
                };
            }
            if !waiting {
                break;
            }
        }
        states
            .into_iter()
            .map(|state| match state {
                State::Finished(outcome) => outcome,
                State::Apart(thread) => thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                State::Pipelined { .. } | State::Replaced => {
                    unreachable!("every pipelined request was read")
                }
            })
            .collect()
    })
}

/// Whether a request's outcome is a server's `NOSCRIPT`: it does not know the script sent
/// by hash.
fn noscript(outcome: &Result<Reply, LockError>) -> bool {
    matches!(outcome, Ok(Reply::Error(message)) if message.starts_with("NOSCRIPT"))
}
