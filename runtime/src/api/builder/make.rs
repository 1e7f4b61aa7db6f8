//! What a [`ClientBuilder`]'s settings are made into: the backend of the kind they name,
//! checked, and the client around it, not yet connected.

use crate::algorithm::client::LockClient;
use crate::backends::backend::Backend;
use crate::backends::redlock::Quorum;
use crate::servers::memory::Memory;
use crate::servers::single::{Place, Single};
use crate::transport::sentinel::SentinelMaster;
use crate::transport::server::Server;
use crate::util::error::LockError;

use super::{ClientBuilder, TargetConfig};

impl ClientBuilder {
    /// The client these options describe, named `name` in logs; checked, not yet connected
    /// (but a Sentinel-managed master is looked for at once).
    pub(super) fn make(&self, name: &str) -> Result<LockClient, LockError> {
        if crate::util::lease::lease_millis(self.default_lease).is_err() {
            return Err(LockError::invalid(
                "the default lease must be at least 1 ms",
            ));
        }
        if self.connect_timeout.is_zero() || self.response_timeout.is_zero() {
            return Err(LockError::invalid("timeouts must be greater than zero"));
        }
        if self.max_connections == 0 {
            return Err(LockError::invalid("max_connections must be at least 1"));
        }
        crate::util::keys::check_prefix(&self.prefix).map_err(LockError::invalid)?;
        let (replicas, replica_timeout) = self.min_replicas;
        if replicas > 0 {
            if !matches!(self.target, TargetConfig::Cluster { .. }) {
                return Err(LockError::invalid(
                    "min_replicas is supported by cluster clients only",
                ));
            }
            if replica_timeout.is_zero() || replica_timeout >= self.response_timeout {
                return Err(LockError::invalid(
                    "the min_replicas timeout must be above zero and below the response timeout",
                ));
            }
        }
        let tls = &self.tls;
        let target = match &self.target {
            TargetConfig::Url(url) => Backend::Single(self.fixed(Server::from_url(
                name,
                url,
                tls,
                self.connect_timeout,
                self.response_timeout,
            )?)),
            TargetConfig::Info(info) => Backend::Single(self.fixed(Server::from_connection_info(
                name,
                info,
                tls,
                self.connect_timeout,
                self.response_timeout,
            )?)),
            TargetConfig::Sentinel {
                master,
                sentinel_urls,
                credentials,
            } => Backend::Single(Single::new(
                Place::Sentinel(SentinelMaster::new(
                    name,
                    master,
                    sentinel_urls,
                    credentials.clone(),
                    tls,
                    self.connect_timeout,
                    self.response_timeout,
                )?),
                self.max_connections,
            )),
            TargetConfig::Redlock(urls) => Backend::Redlock(self.quorum(name, urls)?),
            TargetConfig::Cluster { seed_urls } => {
                let mut cluster = crate::servers::cluster::Cluster::new(
                    name,
                    seed_urls,
                    tls,
                    self.connect_timeout,
                    self.response_timeout,
                    self.max_connections,
                )?;
                (cluster.min_replicas, cluster.replica_timeout) = self.min_replicas;
                Backend::Cluster(cluster)
            }
            TargetConfig::Memory => Backend::Memory(Memory::new()),
        };
        let client = LockClient::new(
            name.to_string(),
            target,
            self.prefix.clone(),
            self.default_lease,
            self.outage_timeout,
        )?;
        started(&client);
        Ok(client)
    }
}

/// What a new client does at once, before its first lock.
fn started(client: &LockClient) {
    if let Some(single) = client.backend.single() {
        // A Sentinel-managed master is looked for now, in the background, so that first
        // use need not wait.
        single.refresh();
    }
}

impl ClientBuilder {
    /// The connections to `server`, at a fixed address, with this builder's cap.
    fn fixed(&self, server: Server) -> Single {
        Single::new(Place::Fixed(server), self.max_connections)
    }

    /// One client per Redlock server, with this builder's settings.
    fn quorum(&self, name: &str, urls: &[String]) -> Result<Quorum, LockError> {
        if urls.len() < 3 || urls.len().is_multiple_of(2) {
            return Err(LockError::invalid(format!(
                "a Redlock client needs an odd number of servers, at least 3 (got {})",
                urls.len()
            )));
        }
        let mut members = Vec::with_capacity(urls.len());
        for url in urls {
            // Named after the Redlock client: each server sees one client of this process.
            let server = Server::from_url(
                name,
                url,
                &self.tls,
                self.connect_timeout,
                self.response_timeout,
            )?;
            members.push(self.fixed(server));
        }
        Ok(Quorum::new(members, self.response_timeout))
    }
}
