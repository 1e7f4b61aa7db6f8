//! Replica acknowledgement of a lock's write on a Redis Cluster (`min_replicas`).
//!
//! Redis replicates asynchronously: a master that fails right after granting a lock may
//! not have passed the write on, and the promoted replica would grant it again. `WAIT`
//! after the acquisition blocks until enough replicas hold it. It counts only the writes
//! of the connection it runs on: on a connection that wrote nothing it returns at once with
//! the number of connected replicas, whatever they hold. So the acquisition script and its
//! `WAIT` go as one pipeline, on one connection, to the master of the lock's slot. Should
//! the pipeline go again (a redirect after a failover, a connection lost: see
//! `resend.rs`), both go again together: the script, finding the key taken by our token, takes it
//! again (a write), and `WAIT` waits for that write, which the replicas receive after the
//! first one. A separate `WAIT` could instead be sent alone on a fresh connection, or to a
//! promoted replica, and count a lock nobody replicated.

use crate::protocol::scripts::Script;
use crate::servers::cluster::Cluster;
use crate::servers::io::Io;
use crate::transport::reply::{Reply, unexpected};
use crate::util::error::LockError;

/// Runs the acquisition `script` on `keys` (the lock's key first) with `args`, then `WAIT`
/// for the cluster's `min_replicas`, in one pipeline. Returns the script's reply and how
/// many replicas acknowledged this connection's writes (meaningful when the script wrote).
pub(crate) async fn acquire<I: Io>(
    io: &I,
    cluster: &Cluster,
    script: &Script,
    keys: &[&str],
    args: &[&str],
    until: Option<std::time::Instant>,
) -> Result<(Reply, usize), LockError> {
    let script = crate::protocol::scripts::sharded(script);
    let mut by_hash = redis::cmd("EVALSHA");
    by_hash.arg(&script.sha).arg(keys.len()).arg(keys).arg(args);
    let (reply, acknowledged) = with_wait(io, cluster, script, keys[0], by_hash, until).await?;
    match reply {
        // The script was not run, and `WAIT` counted nothing: again, with the script's body.
        Reply::Error(message) if message.starts_with("NOSCRIPT") => {
            let mut by_body = redis::cmd("EVAL");
            by_body.arg(script.body).arg(keys.len()).arg(keys).arg(args);
            let (reply, acknowledged) =
                with_wait(io, cluster, script, keys[0], by_body, until).await?;
            Ok((
                reply
                    .into_result()
                    .map_err(crate::protocol::explain::explain)?,
                acknowledged,
            ))
        }
        reply => Ok((
            reply
                .into_result()
                .map_err(crate::protocol::explain::explain)?,
            acknowledged,
        )),
    }
}

/// Sends `eval` then `WAIT` as one pipeline to the master of `key`'s slot.
async fn with_wait<I: Io>(
    io: &I,
    cluster: &Cluster,
    script: &Script,
    key: &str,
    eval: redis::Cmd,
    until: Option<std::time::Instant>,
) -> Result<(Reply, usize), LockError> {
    let mut pipeline = redis::pipe();
    pipeline.add_command(eval);
    pipeline
        .cmd("WAIT")
        .arg(cluster.min_replicas)
        .arg(cluster.replica_timeout.as_millis().max(1) as u64);
    // `WAIT` blocks up to the replica timeout on top of the request's own time.
    let until = until.and_then(|until| until.checked_add(cluster.replica_timeout));
    let replies = io
        .cluster_pipeline(cluster, key, pipeline, script.resend_safe, until)
        .await?;
    let [reply, acknowledged]: [Reply; 2] = match replies.try_into() {
        Ok(pair) => pair,
        Err(replies) => return Err(unexpected(&Reply::Array(replies))),
    };
    let acknowledged = match acknowledged {
        Reply::Int(n) => n.max(0) as usize,
        other => return Err(unexpected(&other)),
    };
    Ok((reply, acknowledged))
}
