//! The two ways of talking to Redis and of waiting: async (on the caller's Tokio runtime)
//! and blocking (on the caller's thread). The lock algorithm in `lock.rs` is written once,
//! generic over [`Io`]; with [`SyncIo`] every step completes at once, so sync callers run it
//! through `block_on` without any runtime.

mod join;
pub(crate) use join::{ByBody, EachRequest};

use std::future::Future;
use std::time::Instant;

use crate::util::block_on::block_on_until;
use redis::cluster_routing::RoutingInfo;

use crate::protocol::scripts::Script;
use crate::servers::cluster::Cluster;
use crate::servers::memory::Memory;
use crate::servers::single::Single;
use crate::transport::reply::Reply;
use crate::util::error::LockError;

pub(crate) trait Io: Send + Sync {
    /// Sends one command on a pooled connection and reads its reply, giving up at
    /// `until` (waiting for a free connection included) or after the client's response
    /// timeout, whichever comes first. Only a `resend_safe` command is sent again when the
    /// reused connection it went out on turns out closed.
    fn request(
        &self,
        single: &Single,
        cmd: redis::Cmd,
        until: Option<Instant>,
        resend_safe: bool,
    ) -> impl Future<Output = Result<Reply, LockError>> + Send;

    /// Sends one command through a Redis Cluster connection, where `routing` says (or to
    /// its key's slot when `None`), giving up at `until`. Only a `resend_safe` command is
    /// sent again after a failure that leaves its outcome unknown.
    fn cluster_request(
        &self,
        cluster: &Cluster,
        cmd: redis::Cmd,
        routing: Option<RoutingInfo>,
        resend_safe: bool,
        until: Option<Instant>,
    ) -> impl Future<Output = Result<Reply, LockError>> + Send;

    /// Sends `pipeline` on one connection to the master of `key`'s slot of a Redis Cluster,
    /// giving up at `until`, sent again as [`cluster_request`](Io::cluster_request) is.
    fn cluster_pipeline(
        &self,
        cluster: &Cluster,
        key: &str,
        pipeline: redis::Pipeline,
        resend_safe: bool,
        until: Option<Instant>,
    ) -> impl Future<Output = Result<Vec<Reply>, LockError>> + Send;

    /// Where the state of one step of a longer operation (an acquisition's attempt) lives
    /// while the step runs: see [`Io::step`].
    type Step<F: Future + Send>: Future<Output = F::Output> + Send;

    /// `step`, to be awaited where its state should not be part of the caller's own: on
    /// the heap for async callers, so that an acquisition that waits (for a release, as
    /// thousands of tasks may) holds only what waiting needs, not the largest step's state
    /// besides (an attempt's, some 3 KB: its request and the `redis` crate's); inline for
    /// sync callers, whose acquisition lives on their stack for just the call.
    fn step<F: Future + Send>(step: F) -> Self::Step<F>;

    /// Waits for `event`, or until `until` passes. True when the event happened.
    fn wait_until<F: Future<Output = ()> + Send>(
        &self,
        event: F,
        until: Option<Instant>,
    ) -> impl Future<Output = bool> + Send;

    /// Runs the requests of `futures` side by side (one per server of a Redlock quorum);
    /// their outputs in order.
    fn join_all<F>(&self, futures: Vec<F>) -> impl Future<Output = Vec<F::Output>> + Send
    where
        F: Future + Send,
        F::Output: Send;

    /// Sends `request` to every server of `members` at once (see [`EachRequest`]); the
    /// outcomes in order.
    fn each_request(
        &self,
        members: &[&Single],
        request: EachRequest<'_>,
    ) -> impl Future<Output = Vec<Result<Reply, LockError>>> + Send;
}

/// Async I/O on the caller's Tokio runtime.
pub(crate) struct AsyncIo;

impl Io for AsyncIo {
    type Step<F: Future + Send> = std::pin::Pin<Box<F>>;

    fn step<F: Future + Send>(step: F) -> Self::Step<F> {
        Box::pin(step)
    }

    async fn request(
        &self,
        single: &Single,
        cmd: redis::Cmd,
        until: Option<Instant>,
        resend_safe: bool,
    ) -> Result<Reply, LockError> {
        let server = single.server(until).await?;
        let request = single
            .async_pools
            .request(&server.endpoint, &cmd, resend_safe);
        let outcome = match until {
            None => request.await,
            // Dropping the request half-way leaves the connection in step (see `pool.rs`).
            Some(until) => tokio::time::timeout_at(until.into(), request)
                .await
                .unwrap_or_else(|_| Err(crate::util::error::deadline_passed())),
        };
        single.check(&outcome);
        outcome
    }

    async fn cluster_request(
        &self,
        cluster: &Cluster,
        cmd: redis::Cmd,
        routing: Option<RoutingInfo>,
        resend_safe: bool,
        until: Option<Instant>,
    ) -> Result<Reply, LockError> {
        let request = cluster.request(cmd, routing, resend_safe);
        match until {
            None => request.await,
            Some(until) => tokio::time::timeout_at(until.into(), request)
                .await
                .unwrap_or_else(|_| Err(crate::util::error::deadline_passed())),
        }
    }

    async fn cluster_pipeline(
        &self,
        cluster: &Cluster,
        key: &str,
        pipeline: redis::Pipeline,
        resend_safe: bool,
        until: Option<Instant>,
    ) -> Result<Vec<Reply>, LockError> {
        let request = cluster.pipeline_to_master_of(key, pipeline, resend_safe);
        match until {
            None => request.await,
            Some(until) => tokio::time::timeout_at(until.into(), request)
                .await
                .unwrap_or_else(|_| Err(crate::util::error::deadline_passed())),
        }
    }

    async fn wait_until<F: Future<Output = ()> + Send>(
        &self,
        event: F,
        until: Option<Instant>,
    ) -> bool {
        match until {
            None => {
                event.await;
                true
            }
            Some(deadline) => tokio::time::timeout_at(deadline.into(), event)
                .await
                .is_ok(),
        }
    }

    fn join_all<F>(&self, futures: Vec<F>) -> impl Future<Output = Vec<F::Output>> + Send
    where
        F: Future + Send,
        F::Output: Send,
    {
        join::poll_all(futures)
    }

    async fn each_request(
        &self,
        members: &[&Single],
        request: EachRequest<'_>,
    ) -> Vec<Result<Reply, LockError>> {
        join::each_async(members, request).await
    }
}

/// Blocking I/O on the caller's thread.
pub(crate) struct SyncIo;

impl Io for SyncIo {
    type Step<F: Future + Send> = F;

    fn step<F: Future + Send>(step: F) -> Self::Step<F> {
        step
    }

    fn request(
        &self,
        single: &Single,
        cmd: redis::Cmd,
        until: Option<Instant>,
        resend_safe: bool,
    ) -> impl Future<Output = Result<Reply, LockError>> + Send {
        let outcome = join::request_blocking(single, &cmd, until, resend_safe, false);
        single.check(&outcome);
        std::future::ready(outcome)
    }

    fn cluster_request(
        &self,
        cluster: &Cluster,
        cmd: redis::Cmd,
        routing: Option<RoutingInfo>,
        resend_safe: bool,
        until: Option<Instant>,
    ) -> impl Future<Output = Result<Reply, LockError>> + Send {
        std::future::ready(cluster.request_blocking(cmd, routing, resend_safe, until))
    }

    fn cluster_pipeline(
        &self,
        cluster: &Cluster,
        key: &str,
        pipeline: redis::Pipeline,
        resend_safe: bool,
        until: Option<Instant>,
    ) -> impl Future<Output = Result<Vec<Reply>, LockError>> + Send {
        std::future::ready(cluster.pipeline_blocking(key, pipeline, resend_safe, until))
    }

    fn wait_until<F: Future<Output = ()> + Send>(
        &self,
        event: F,
        until: Option<Instant>,
    ) -> impl Future<Output = bool> + Send {
        std::future::ready(block_on_until(event, until).is_some())
    }

    /// Each on a thread of its own: see [`join::on_threads`].
    fn join_all<F>(&self, futures: Vec<F>) -> impl Future<Output = Vec<F::Output>> + Send
    where
        F: Future + Send,
        F::Output: Send,
    {
        std::future::ready(join::on_threads(futures))
    }

    /// Pipelined from this thread: see [`join::each_blocking`].
    fn each_request(
        &self,
        members: &[&Single],
        request: EachRequest<'_>,
    ) -> impl Future<Output = Vec<Result<Reply, LockError>>> + Send {
        let outcomes = join::each_blocking(members, request);
        for (member, outcome) in members.iter().zip(&outcomes) {
            member.check(outcome);
        }
        std::future::ready(outcomes)
    }
}

/// Where one request goes: one server, a Redis Cluster (the master of its key's slot), or
/// a client's in-process store, which answers at once.
#[derive(Clone, Copy)]
pub(crate) enum Route<'a> {
    Single(&'a Single),
    Cluster(&'a Cluster),
    Memory(&'a Memory),
}

/// Runs a command; a server error becomes `LockError::Redis`.
pub(crate) async fn command<I: Io>(
    io: &I,
    route: Route<'_>,
    cmd: &redis::Cmd,
) -> Result<Reply, LockError> {
    command_until(io, route, cmd, None).await
}

/// [`command`], giving up at `until`.
pub(crate) async fn command_until<I: Io>(
    io: &I,
    route: Route<'_>,
    cmd: &redis::Cmd,
    until: Option<Instant>,
) -> Result<Reply, LockError> {
    // The plain commands sent this way only read.
    send(io, route, cmd.clone(), until, true)
        .await?
        .into_result()
}

/// [`command_until`] for a command that writes and must not run twice: not sent again when
/// its connection turns out closed (the outcome is then unknown, an error).
pub(crate) async fn command_once_until<I: Io>(
    io: &I,
    route: Route<'_>,
    cmd: redis::Cmd,
    until: Option<Instant>,
) -> Result<Reply, LockError> {
    send(io, route, cmd, until, false).await?.into_result()
}

/// Sends a command to the server, or on a cluster to the master of its key's slot.
async fn send<I: Io>(
    io: &I,
    route: Route<'_>,
    cmd: redis::Cmd,
    until: Option<Instant>,
    resend_safe: bool,
) -> Result<Reply, LockError> {
    match route {
        Route::Cluster(cluster) => {
            io.cluster_request(cluster, cmd, None, resend_safe, until)
                .await
        }
        Route::Single(single) => io.request(single, cmd, until, resend_safe).await,
        Route::Memory(memory) => memory.command(&cmd),
    }
}

/// Runs a command on a cluster node chosen by `routing`; a server error becomes
/// `LockError::Redis`.
pub(crate) async fn routed<I: Io>(
    io: &I,
    cluster: &Cluster,
    cmd: redis::Cmd,
    routing: RoutingInfo,
    until: Option<Instant>,
) -> Result<Reply, LockError> {
    // The routed commands (SCAN, listing) only read.
    io.cluster_request(cluster, cmd, Some(routing), true, until)
        .await?
        .into_result()
}

/// Runs a script by hash, loading it by body only when the server does not know it;
/// gives up at `until`.
pub(crate) async fn eval_until<I: Io>(
    io: &I,
    route: Route<'_>,
    script: &Script,
    keys: &[&str],
    args: &[&str],
    until: Option<Instant>,
) -> Result<Reply, LockError> {
    // A cluster announces on sharded pub/sub: the script's variant for that.
    let script = match route {
        Route::Cluster(_) => crate::protocol::scripts::sharded(script),
        Route::Single(_) => script,
        Route::Memory(memory) => return memory.eval(script, keys, args),
    };
    let first = evalsha(script, keys, args);
    match send(io, route, first, until, script.resend_safe).await? {
        Reply::Error(message) if message.starts_with("NOSCRIPT") => {
            let mut eval = redis::cmd("EVAL");
            eval.arg(script.body).arg(keys.len()).arg(keys).arg(args);
            send(io, route, eval, until, script.resend_safe)
                .await?
                .into_result()
                .map_err(crate::protocol::explain::explain)
        }
        reply => reply
            .into_result()
            .map_err(crate::protocol::explain::explain),
    }
}

/// `EVALSHA` of `script` on `keys` with `args`: how every script is first sent.
pub(crate) fn evalsha(script: &Script, keys: &[&str], args: &[&str]) -> redis::Cmd {
    let bytes = keys.iter().chain(args).map(|arg| arg.len()).sum::<usize>();
    let mut evalsha = command_with_room(
        "EVALSHA",
        2 + keys.len() + args.len(),
        script.sha.len() + 20 + bytes,
    );
    evalsha.arg(&script.sha).arg(keys.len()).arg(keys).arg(args);
    evalsha
}

/// An empty command `name` with room for `args` more arguments of `bytes` in all: built in
/// one allocation each for its data and its argument list, where growing them argument by
/// argument reallocates several times on every request.
pub(crate) fn command_with_room(name: &str, args: usize, bytes: usize) -> redis::Cmd {
    let mut cmd = redis::Cmd::with_capacity(1 + args, name.len() + bytes);
    cmd.arg(name);
    cmd
}
