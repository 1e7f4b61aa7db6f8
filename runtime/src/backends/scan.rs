//! Walking a client's lock keys with `SCAN` (never `KEYS`, which blocks the server), for
//! `reset_all` and the listing of held locks. On a Redis Cluster each master holds its own
//! slots' keys, so the walk visits every master in turn; on a Redlock quorum, every server.
//! An in-memory client's store lists its keys in one page.

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use std::collections::BTreeSet;

use crate::backends::backend::Backend;
use crate::backends::redlock::Quorum;
use crate::servers::cluster::Cluster;
use crate::servers::io::{Io, Route, command, routed};
use crate::servers::memory::Memory;
use crate::servers::single::Single;
use crate::transport::reply::{Reply, unexpected};
use crate::util::error::LockError;

/// The lock keys of one client, a page of `SCAN` at a time. A key present for the whole
/// walk is returned at least once; keys written during the walk may be missed.
pub(crate) struct LockKeys<'a> {
    backend: Walked<'a>,
    /// `<prefix>[{}]*` (both key layouts of `keys.rs`), the prefix's glob characters escaped.
    pattern: String,
    /// `None` once the server said the walk is over.
    cursor: Option<Vec<u8>>,
    /// On a cluster, the masters (`host`, `port`) still to walk, the current one last;
    /// learnt at the first page.
    masters: Option<Vec<(String, u16)>>,
}

/// What a walk visits.
#[derive(Clone, Copy)]
enum Walked<'a> {
    Single(&'a Single),
    Quorum(&'a Quorum),
    Cluster(&'a Cluster),
    /// A store, and the prefix of its lock keys.
    Memory(&'a Memory, &'a str),
}

impl<'a> LockKeys<'a> {
    /// The keys with prefix `prefix` that `backend` holds.
    pub(crate) fn new(backend: &'a Backend, prefix: &'a str) -> LockKeys<'a> {
        let backend = match backend {
            Backend::Single(single) => Walked::Single(single),
            Backend::Redlock(quorum) => Walked::Quorum(quorum),
            Backend::Cluster(cluster) => Walked::Cluster(cluster),
            Backend::Memory(memory) => Walked::Memory(memory, prefix),
        };
        LockKeys {
            backend,
            pattern: format!("{}[{{}}]*", glob_escape(prefix)),
            cursor: Some(b"0".to_vec()),
            masters: None,
        }
    }

    /// The lock keys of the next page (perhaps none), or `None` when the walk is over.
    /// Fencing counters (`<lock key>:fence`) and queues of waiting processes
    /// (`<lock key>:queue`) are left out: lock keys end with `}`.
    pub(crate) async fn next_page<I: Io>(
        &mut self,
        io: &I,
    ) -> Result<Option<Vec<String>>, LockError> {
        let Some(cursor) = self.cursor.take() else {
            return Ok(None);
        };
        let mut scan = redis::cmd("SCAN");
        scan.arg(&cursor)
            .arg("MATCH")
            .arg(&self.pattern)
            .arg("COUNT")
            .arg(1000);
        let reply = match self.backend {
            // Every server's keys, each once, as one page (a majority must answer).
            Walked::Quorum(quorum) => {
                let prefix = &self.pattern;
                return Box::pin(quorum_keys(io, quorum, prefix)).await.map(Some);
            }
            Walked::Cluster(cluster) => {
                if self.masters.is_none() {
                    self.masters = Some(masters(io, cluster).await?);
                }
                let Some((host, port)) = self.masters.as_ref().and_then(|m| m.last()).cloned()
                else {
                    return Ok(None);
                };
                let node = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                routed(io, cluster, scan, node, None).await?
            }
            Walked::Single(single) => command(io, Route::Single(single), &scan).await?,
            // Every key at once, so the walk is over after this page.
            Walked::Memory(memory, prefix) => return Ok(Some(memory.keys(prefix))),
        };
        let Reply::Array(mut parts) = reply else {
            return Err(unexpected(&reply));
        };
        let (Some(Reply::Array(keys)), Some(Reply::Bulk(next))) = (parts.pop(), parts.pop()) else {
            return Err(unexpected(&Reply::Array(parts)));
        };
        if next != b"0" {
            self.cursor = Some(next);
        } else if let Some(masters) = &mut self.masters {
            // This master is done: the next one from the start.
            masters.pop();
            if !masters.is_empty() {
                self.cursor = Some(b"0".to_vec());
            }
        }
        Ok(Some(
            keys.into_iter()
                .filter_map(|key| match key {
                    Reply::Bulk(key) if key.ends_with(b"}") => {
                        Some(String::from_utf8_lossy(&key).into_owned())
                    }
                    _ => None,
                })
                .collect(),
        ))
    }
}

/// A cluster's masters, from `CLUSTER SLOTS` (each range: start, end, master, replicas...).
async fn masters<I: Io>(io: &I, cluster: &Cluster) -> Result<Vec<(String, u16)>, LockError> {
    let any = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
    let reply = routed(
        io,
        cluster,
        redis::cmd("CLUSTER").arg("SLOTS").clone(),
        any,
        None,
    )
    .await?;
    let Reply::Array(ranges) = reply else {
        return Err(unexpected(&reply));
    };
    let mut masters = Vec::new();
    for range in &ranges {
        let Reply::Array(parts) = range else {
            return Err(unexpected(range));
        };
        let master = match parts.get(2) {
            Some(Reply::Array(node)) => match node.as_slice() {
                [Reply::Bulk(host), Reply::Int(port), ..] => {
                    (String::from_utf8_lossy(host).into_owned(), *port as u16)
                }
                _ => return Err(unexpected(range)),
            },
            _ => return Err(unexpected(range)),
        };
        if !masters.contains(&master) {
            masters.push(master);
        }
    }
    Ok(masters)
}

/// The lock keys of every server of a Redlock quorum that answered (a majority must),
/// each once, walked with `pattern`.
async fn quorum_keys<I: Io>(
    io: &I,
    quorum: &Quorum,
    pattern: &str,
) -> Result<Vec<String>, LockError> {
    // One server after another: this is for operators, not for the lock's hot path.
    let mut outcomes = Vec::with_capacity(quorum.members.len());
    for member in &quorum.members {
        let mut walk = LockKeys {
            backend: Walked::Single(member),
            pattern: pattern.to_string(),
            cursor: Some(b"0".to_vec()),
            masters: None,
        };
        let keys = async {
            let mut keys = Vec::new();
            while let Some(page) = walk.next_page(io).await? {
                keys.extend(page);
            }
            Ok::<_, LockError>(keys)
        };
        outcomes.push(keys.await);
    }
    let mut keys = BTreeSet::new();
    for answer in quorum.answers("", outcomes)?.into_iter().flatten() {
        keys.extend(answer);
    }
    Ok(keys.into_iter().collect())
}

/// `s` as a glob pattern that matches exactly `s`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::glob_escape;

    #[test]
    fn escapes_glob_characters() {
        assert_eq!(glob_escape("lock:"), "lock:");
        assert_eq!(glob_escape(r"a*b?c[d]e\f"), r"a\*b\?c\[d\]e\\f");
    }
}
