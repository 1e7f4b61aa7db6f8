//! Independent redis-servers, as the Redlock algorithm uses them.

use crate::RedisServer;

/// `n` independent redis-servers (no replication between them), for quorum tests; all
/// stopped when dropped.
pub struct RedlockServers {
    servers: Vec<RedisServer>,
}

impl RedlockServers {
    /// Starts `n` servers.
    pub fn start(n: usize) -> RedlockServers {
        RedlockServers {
            servers: (0..n).map(|_| RedisServer::start()).collect(),
        }
    }

    /// Every server's URL, in order (killed ones included: they keep their ports).
    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(RedisServer::url).collect()
    }

    /// The servers, in order.
    pub fn servers(&self) -> &[RedisServer] {
        &self.servers
    }

    /// Server `i`.
    pub fn server(&self, i: usize) -> &RedisServer {
        &self.servers[i]
    }

    /// How many servers there are.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// SIGKILLs server `i` (see [`RedisServer::kill`]).
    pub fn kill(&mut self, i: usize) {
        self.servers[i].kill();
    }

    /// Starts server `i` again on its port after [`kill`](RedlockServers::kill), empty
    /// (the servers keep no data on disk unless started so).
    pub fn start_again(&mut self, i: usize) {
        self.servers[i].start_again();
    }

    /// Freezes server `i` (see [`RedisServer::pause`]).
    pub fn pause(&self, i: usize) {
        self.servers[i].pause();
    }

    /// Thaws server `i` (see [`RedisServer::resume`]).
    pub fn resume(&self, i: usize) {
        self.servers[i].resume();
    }
}
