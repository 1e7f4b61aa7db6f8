//! Where a client's requests go, by backend kind: the servers a lock may live on, the one
//! its pub/sub connection goes to, and the store of an in-memory client.

use crate::backends::backend::Backend;
use crate::servers::io::Route;
use crate::servers::memory::Memory;
use crate::servers::single::Single;

impl Backend {
    /// Where a lock may live: its route, or each server of a Redlock quorum.
    pub(crate) fn servers(&self) -> Vec<Route<'_>> {
        match self {
            Backend::Single(single) => vec![Route::Single(single)],
            Backend::Cluster(cluster) => vec![Route::Cluster(cluster)],
            Backend::Redlock(quorum) => quorum.members.iter().map(Route::Single).collect(),
            Backend::Memory(memory) => vec![Route::Memory(memory)],
        }
    }

    /// The server a pub/sub connection goes to: a client's one server (`member`: `None`),
    /// or server `member` of a Redlock quorum. `None` on a cluster.
    pub(crate) fn server_of(&self, member: Option<usize>) -> Option<&Single> {
        match self {
            Backend::Single(single) => Some(single),
            Backend::Redlock(quorum) => quorum.members.get(member?),
            Backend::Cluster(_) | Backend::Memory(_) => None,
        }
    }

    /// The server of a client of one server (a Sentinel-managed one included).
    pub(crate) fn single(&self) -> Option<&Single> {
        match self {
            Backend::Single(single) => Some(single),
            Backend::Redlock(_) | Backend::Cluster(_) | Backend::Memory(_) => None,
        }
    }

    /// The store of an in-memory client.
    pub(crate) fn memory(&self) -> Option<&Memory> {
        match self {
            Backend::Memory(memory) => Some(memory),
            Backend::Single(_) | Backend::Redlock(_) | Backend::Cluster(_) => None,
        }
    }
}
