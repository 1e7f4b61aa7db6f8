//! Replica acknowledgement of a lock's write on a Redis Cluster (`min_replicas`).
//!
//! Redis replicates asynchronously: a master that fails right after granting a lock may
//! not have passed the write on, and the promoted replica would grant it again. `WAIT`
//! after the acquisition blocks until enough replicas hold it. It counts the writes of
//! the connection it runs on, so it goes on the shared cluster connection that carried
//! the acquisition, to the master of the lock's slot.

use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};

use crate::client::{LockClient, Target};
use crate::error::LockError;
use crate::io::{Io, routed};
use crate::resp::Reply;

/// Waits until the client's `min_replicas` replicas acknowledged `key`'s latest write; an
/// error when fewer did within its replica timeout. Nothing to do for other clients.
pub(crate) async fn confirm<I: Io>(
    io: &I,
    client: &LockClient,
    name: &str,
    key: &str,
) -> Result<(), LockError> {
    let Target::Cluster(cluster) = &client.target else {
        return Ok(());
    };
    if cluster.min_replicas == 0 {
        return Ok(());
    }
    let mut wait = redis::cmd("WAIT");
    wait.arg(cluster.min_replicas)
        .arg(cluster.replica_timeout.as_millis().max(1) as u64);
    let to_master = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_key(
        key,
        SlotAddr::Master,
    )));
    let acknowledged = match routed(io, client, wait, to_master, None).await? {
        Reply::Int(n) => n.max(0) as usize,
        other => return Err(crate::resp::unexpected(&other)),
    };
    if acknowledged < cluster.min_replicas {
        return Err(LockError::NotReplicated {
            name: name.to_string(),
            wanted: cluster.min_replicas,
            acknowledged,
        });
    }
    Ok(())
}
