//! Sync callers' requests on a Cluster. A request routed by its key goes on one of the
//! `redis` crate's blocking cluster connections (`blocking_conns.rs`), written and read on
//! the caller's thread. The rest (a request to every master, a pipeline, one that needs
//! the resend policy after a failure, or one that finds every blocking connection lent)
//! runs on the crate's async cluster connection: its driver runs on the runtime it was made
//! on, and a sync request sent to the connection on the background runtime wakes a thread
//! there and is woken back, two hand-offs between threads per request (on a VM whose idle
//! CPUs halt, each costs more than the round trip). So a sync caller outside any runtime
//! borrows a current-thread runtime from a small pool (`runtime_pool.rs`) and drives it on
//! its own thread, with the cluster connection made there (see `by_runtime.rs`). The pool
//! holds at most the client's `max_connections` runtimes; a caller that finds none free, or
//! that runs inside a runtime (which may not drive another one), sends its request through
//! the background runtime.

use std::future::Future;
use std::time::Instant;

use redis::cluster_routing::RoutingInfo;

use super::resend::{self, Next};
use super::{Cluster, reply_or_error};
use crate::transport::reply::Reply;
use crate::util::error::LockError;

impl Cluster {
    /// [`request`](Cluster::request) for sync callers: a request by key on a blocking
    /// connection of the pool (`blocking_conns.rs`); else on a runtime of the pool driven by
    /// this thread, else on the background runtime.
    pub(crate) fn request_blocking(
        &self,
        cmd: redis::Cmd,
        routing: Option<RoutingInfo>,
        resend_safe: bool,
        until: Option<Instant>,
    ) -> Result<Reply, LockError> {
        if routing.is_none()
            && let Some(mut lent) = self.inner.blocking_conns.lend(&cmd, resend_safe, until)
        {
            match lent.request(&cmd) {
                Ok(value) => {
                    lent.give_back();
                    return Ok(Reply::from(value));
                }
                Err(e) => match resend::after_error(&e, 1, resend_safe) {
                    Next::GiveUp => {
                        if matches!(e.kind(), redis::ErrorKind::Server(_)) {
                            // The server answered: the connection is in step.
                            lent.give_back();
                        }
                        return reply_or_error(e);
                    }
                    // It did not run (a redirect, a refusal), or running it again is
                    // running it once: the ordinary way sends it again, with its slot
                    // map and resend policy. The connection, out of step or with an
                    // old slot map, is dropped.
                    Next::Redirect { .. } | Next::After(_) => drop(lent),
                },
            }
        }
        if let Some(runtime) = self.inner.blocking.borrow_here() {
            return runtime
                .run(self.request(cmd, routing, resend_safe), until)
                .unwrap_or_else(|| Err(crate::util::error::deadline_passed()));
        }
        let cluster = self.handle();
        self.on_background(
            async move { cluster.request(cmd, routing, resend_safe).await },
            until,
        )
    }

    /// [`pipeline_to_master_of`](Cluster::pipeline_to_master_of) for sync callers, as
    /// [`request_blocking`](Cluster::request_blocking) does.
    pub(crate) fn pipeline_blocking(
        &self,
        key: &str,
        pipeline: redis::Pipeline,
        resend_safe: bool,
        until: Option<Instant>,
    ) -> Result<Vec<Reply>, LockError> {
        if let Some(runtime) = self.inner.blocking.borrow_here() {
            return runtime
                .run(
                    self.pipeline_to_master_of(key, pipeline, resend_safe),
                    until,
                )
                .unwrap_or_else(|| Err(crate::util::error::deadline_passed()));
        }
        let (cluster, key) = (self.handle(), key.to_string());
        self.on_background(
            async move {
                cluster
                    .pipeline_to_master_of(&key, pipeline, resend_safe)
                    .await
            },
            until,
        )
    }

    /// Runs `work` on the background runtime and waits for it until `until`.
    fn on_background<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, LockError>> + Send + 'static,
        until: Option<Instant>,
    ) -> Result<T, LockError> {
        let task = crate::util::background::handle()?.spawn(work);
        match crate::util::block_on::block_on_until(task, until) {
            Some(Ok(outcome)) => outcome,
            Some(Err(e)) => Err(std::io::Error::other(e.to_string()).into()),
            None => Err(crate::util::error::deadline_passed()),
        }
    }
}
