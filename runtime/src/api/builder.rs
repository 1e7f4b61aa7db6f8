//! [`ClientBuilder`]: a client's settings, checked, made into a client that is registered
//! (see `registry.rs`) or built for use in a scope (see `scope.rs`). What the settings are
//! made into is in `builder/make.rs`.

mod debug;
mod make;

use std::sync::Arc;
use std::time::Duration;

use crate::algorithm::client::DEFAULT_CLIENT;
use crate::api::scope::Client;
use crate::transport::tls::TlsSettings;
use crate::util::error::LockError;

/// The name of a [built](ClientBuilder::build) client in logs: it has none of its own.
const UNREGISTERED: &str = "unregistered";

/// Registers the default client, used by every lock that names no client.
///
/// The URL is checked at once (`redis://[user:password@]host[:port][/db]` or
/// `unix:///path/to/socket`); the connection itself is made on first use.
///
/// ```no_run
/// redis_locked::init("redis://127.0.0.1:6379")?;
/// # Ok::<(), redis_locked::LockError>(())
/// ```
pub fn init(url: &str) -> Result<(), LockError> {
    ClientBuilder::new(url).init()
}

/// Registers a named client, used by locks that say `client = "name"`.
///
/// ```no_run
/// redis_locked::register("billing", "redis://billing-redis:6379/2")?;
/// # Ok::<(), redis_locked::LockError>(())
/// ```
pub fn register(name: &str, url: &str) -> Result<(), LockError> {
    ClientBuilder::new(url).register(name)
}

/// Options for a client, for when the defaults of [`init`] and [`register`] do not fit.
///
/// ```no_run
/// use std::time::Duration;
/// redis_locked::ClientBuilder::new("redis://127.0.0.1:6379")
///     .key_prefix("myapp:lock:")
///     .default_lease(Duration::from_secs(10))
///     .response_timeout(Duration::from_secs(2))
///     .init()?;
/// # Ok::<(), redis_locked::LockError>(())
/// ```
#[derive(Clone)]
pub struct ClientBuilder {
    target: TargetConfig,
    tls: TlsSettings,
    prefix: String,
    default_lease: Duration,
    outage_timeout: Duration,
    connect_timeout: Duration,
    response_timeout: Duration,
    max_connections: usize,
    /// For a cluster: replicas that must acknowledge an acquisition, and for how long
    /// to wait for them.
    min_replicas: (usize, Duration),
}

/// Where the client's requests go, as configured.
#[derive(Clone)]
enum TargetConfig {
    Url(String),
    /// An application's own connection settings (see
    /// [`from_connection_info`](ClientBuilder::from_connection_info)).
    Info(Box<redis::ConnectionInfo>),
    Sentinel {
        master: String,
        sentinel_urls: Vec<String>,
        /// The master's user and password.
        credentials: Option<(String, String)>,
    },
    Redlock(Vec<String>),
    Cluster {
        seed_urls: Vec<String>,
    },
    /// A store in this process, made anew by each client.
    Memory,
}

impl ClientBuilder {
    /// Starts from the defaults: prefix `lock:`, a 30 s lease, a 30 s outage timeout, 5 s
    /// connect and response timeouts, at most 16 connections per pool.
    pub fn new(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::with_target(TargetConfig::Url(url.into()))
    }

    /// A client of the server an application already has settings for: its address (TCP,
    /// TLS or a Unix socket), user, password and database, and the TLS settings of a
    /// `redis::Client` built with `build_with_tls` (client certificate included). The same
    /// defaults as [`new`](ClientBuilder::new) otherwise.
    ///
    /// ```no_run
    /// let redis = redis_locked::redis::Client::open("redis://127.0.0.1:6379/2")?;
    /// redis_locked::ClientBuilder::from_connection_info(redis.get_connection_info().clone())
    ///     .init()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_connection_info(info: redis::ConnectionInfo) -> ClientBuilder {
        ClientBuilder::with_target(TargetConfig::Info(Box::new(info)))
    }

    /// [`from_connection_info`](ClientBuilder::from_connection_info) with the settings of
    /// `client`.
    pub fn from_redis_client(client: &redis::Client) -> ClientBuilder {
        ClientBuilder::from_connection_info(client.get_connection_info().clone())
    }

    /// A client of the master that Redis Sentinel manages under `master_name`, with the
    /// same defaults as [`new`](ClientBuilder::new).
    ///
    /// The sentinels (`redis://[user:password@]host:port`, or `rediss://` for TLS to the
    /// sentinels and the master alike; the credentials are the sentinels' own) are asked
    /// for the master's address, each in turn until one answers: at registration, in the
    /// background, and again whenever a request fails in a way that suggests the master
    /// moved (an unreachable server, or a `READONLY` reply from a demoted master). The
    /// master's own credentials, if it needs any, are given with
    /// [`master_credentials`](ClientBuilder::master_credentials); it is used with database 0.
    ///
    /// ```no_run
    /// redis_locked::ClientBuilder::sentinel(
    ///     "mymaster",
    ///     ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379", "redis://10.0.0.3:26379"],
    /// )
    /// .master_credentials("locks", "s3cret")
    /// .init()?;
    /// # Ok::<(), redis_locked::LockError>(())
    /// ```
    pub fn sentinel<U: Into<String>>(
        master_name: impl Into<String>,
        sentinel_urls: impl IntoIterator<Item = U>,
    ) -> ClientBuilder {
        ClientBuilder::with_target(TargetConfig::Sentinel {
            master: master_name.into(),
            sentinel_urls: sentinel_urls.into_iter().map(Into::into).collect(),
            credentials: None,
        })
    }

    /// A Redlock client: a lock is held when a majority of these independent servers
    /// (their number odd, at least 3; no replication between them) granted it, with the
    /// same defaults as [`new`](ClientBuilder::new). Every operation goes to every server
    /// at once; see the README's "Redlock" section for what this guarantees and costs.
    ///
    /// ```no_run
    /// redis_locked::ClientBuilder::redlock([
    ///     "redis://10.0.0.1:6379",
    ///     "redis://10.0.0.2:6379",
    ///     "redis://10.0.0.3:6379",
    /// ])
    /// .init()?;
    /// # Ok::<(), redis_locked::LockError>(())
    /// ```
    pub fn redlock<U: Into<String>>(urls: impl IntoIterator<Item = U>) -> ClientBuilder {
        ClientBuilder::with_target(TargetConfig::Redlock(
            urls.into_iter().map(Into::into).collect(),
        ))
    }

    /// For a [`sentinel`](ClientBuilder::sentinel) client: the ACL user (`default` for a
    /// plain `requirepass`) and password to authenticate to the master with. Ignored by
    /// clients of one URL, whose URL carries its credentials.
    pub fn master_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> ClientBuilder {
        if let TargetConfig::Sentinel { credentials, .. } = &mut self.target {
            *credentials = Some((user.into(), password.into()));
        }
        self
    }

    /// A client of a Redis Cluster, reached first through any of `seed_urls`
    /// (`redis://[user:password@]host:port`, or `rediss://`), with the same defaults as
    /// [`new`](ClientBuilder::new).
    ///
    /// Each lock's keys share one hash slot, so every request for a lock goes to the master
    /// of that slot; the `redis` crate's cluster client follows `MOVED`/`ASK` redirections
    /// and finds the new master after a failover. Waiters are woken by sharded pub/sub on
    /// the lock's own shard. `reset_all` and the listing of locks walk every master.
    ///
    /// ```no_run
    /// redis_locked::ClientBuilder::cluster([
    ///     "redis://10.0.0.1:6379",
    ///     "redis://10.0.0.2:6379",
    ///     "redis://10.0.0.3:6379",
    /// ])
    /// .min_replicas(1, std::time::Duration::from_millis(500))
    /// .init()?;
    /// # Ok::<(), redis_locked::LockError>(())
    /// ```
    pub fn cluster<U: Into<String>>(seed_urls: impl IntoIterator<Item = U>) -> ClientBuilder {
        ClientBuilder::with_target(TargetConfig::Cluster {
            seed_urls: seed_urls.into_iter().map(Into::into).collect(),
        })
    }

    /// For a [`cluster`](ClientBuilder::cluster) client: an acquisition succeeds only once
    /// at least `replicas` replicas of the lock's master acknowledged the lock (`WAIT`),
    /// waiting at most `timeout` (shorter than the response timeout) for them, so that a
    /// failover right after it does not lose the lock. Otherwise it releases the lock and
    /// fails with [`LockError::NotReplicated`]. Costs a replication round trip per
    /// acquisition, during which this process's other requests to that master queue (see
    /// the README). Default 0: no waiting. Refused at registration by other kinds of client.
    pub fn min_replicas(mut self, replicas: usize, timeout: Duration) -> ClientBuilder {
        self.min_replicas = (replicas, timeout);
        self
    }

    /// A client whose locks live in this process only, in a store of its own: no Redis
    /// anywhere. For the unit tests of code that takes locks, and for deterministic tests
    /// of the locking algorithm. Every lock works as on one Redis server: leases expire,
    /// owner tokens, fencing tokens, waiters woken by a release without polling, handover
    /// to the next waiter, [`list_locks`](crate::list_locks) and
    /// [`reset_all`](crate::reset_all). Nothing is shared with anything outside the
    /// process, so it locks nothing between processes.
    ///
    /// Each client made from it ([`register`](ClientBuilder::register),
    /// [`init`](ClientBuilder::init) or [`build`](ClientBuilder::build)) has its own store:
    /// two clients built with `in_memory()`, clones of the builder included, are two
    /// separate stores, and the same lock name on each is two locks. Locks contend through
    /// one client: the clones of a [`Client`], or the name it is registered under. The
    /// settings for connections (timeouts, `max_connections`) are ignored.
    ///
    /// ```
    /// use redis_locked::{ClientBuilder, LockError, redis_lock};
    ///
    /// #[redis_lock(name = "invoice:{order_id}", expire = 10, client = "billing")]
    /// async fn bill(order_id: u64) -> Result<u64, LockError> {
    ///     Ok(order_id)
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), LockError> {
    /// ClientBuilder::in_memory().register("billing")?;
    /// assert_eq!(bill(42).await?, 42);
    ///
    /// // A built client has a store of its own.
    /// let client = ClientBuilder::in_memory().build()?;
    /// let held = client.lock("report")?.acquire(None).await?;
    /// assert!(client.lock("report")?.try_acquire().await?.is_none());
    /// held.release().await?;
    /// # Ok(()) }
    /// ```
    pub fn in_memory() -> ClientBuilder {
        ClientBuilder::with_target(TargetConfig::Memory)
    }

    fn with_target(target: TargetConfig) -> ClientBuilder {
        ClientBuilder {
            target,
            tls: TlsSettings::default(),
            prefix: "lock:".into(),
            default_lease: Duration::from_secs(30),
            outage_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            max_connections: 16,
            min_replicas: (0, Duration::ZERO),
        }
    }

    /// The prefix of every lock key (default `lock:`); lock `x` lives in key `<prefix>{x}`.
    /// It must not contain `{` or `}` (the lock's name is its keys' Redis Cluster hash tag):
    /// registration fails with [`LockError::InvalidConfig`] otherwise.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> ClientBuilder {
        self.prefix = prefix.into();
        self
    }

    /// The lease of locks that set no `expire` (default 30 s; such locks auto-renew).
    pub fn default_lease(mut self, lease: Duration) -> ClientBuilder {
        self.default_lease = lease;
        self
    }

    /// How long an acquisition keeps trying while Redis is unreachable (refused or timed-out
    /// connections, a server still loading its data) before it fails with that error
    /// (default 30 s). A caller's own `timeout` ends the wait sooner. Zero: fail at once.
    pub fn outage_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.outage_timeout = timeout;
        self
    }

    /// How long to wait for a TCP connection to Redis (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.connect_timeout = timeout;
        self
    }

    /// How long to wait for any one reply from Redis (default 5 s).
    pub fn response_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.response_timeout = timeout;
        self
    }

    /// At most this many connections open at once (default 16), per pool: one pool serves
    /// sync callers, and one each Tokio runtime. Sync callers beyond it wait for a
    /// connection; async callers share the open ones (they are multiplexed), and a new
    /// one is opened only when every open one is busy.
    /// Waiting for a lock holds no connection, so this bounds only concurrent requests.
    pub fn max_connections(mut self, max: usize) -> ClientBuilder {
        self.max_connections = max;
        self
    }

    /// For `rediss://` URLs: trust this CA certificate (PEM; several may follow one
    /// another) to sign the server's certificate, instead of the platform's trusted roots.
    /// The certificate must name the URL's host (a DNS name or an IP address).
    /// Needs the `tls` feature.
    #[cfg(feature = "tls")]
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> ClientBuilder {
        self.tls.root_certificate = Some(pem.into());
        self
    }

    /// For `rediss://` URLs: present this certificate chain (PEM) and its private key (PEM:
    /// PKCS#8, PKCS#1 or SEC1) to servers that ask clients for one (`tls-auth-clients
    /// yes`, mutual TLS). Needs the `tls` feature.
    #[cfg(feature = "tls")]
    pub fn tls_client_certificate(
        mut self,
        certificate_chain_pem: impl Into<Vec<u8>>,
        private_key_pem: impl Into<Vec<u8>>,
    ) -> ClientBuilder {
        self.tls.client_certificate = Some((certificate_chain_pem.into(), private_key_pem.into()));
        self
    }

    /// Registers this client as the default one.
    pub fn init(self) -> Result<(), LockError> {
        self.register(DEFAULT_CLIENT)
    }

    /// Registers this client under `name`.
    pub fn register(self, name: &str) -> Result<(), LockError> {
        let client = Arc::new(self.make(name)?);
        crate::api::registry::insert(name, client.clone())?;
        Ok(())
    }

    /// A client of its own, outside the registry: locks take it through
    /// [`Client::scope`] (or [`enter`](Client::enter) for sync code), where it stands in
    /// for the default client, or through [`Client::lock`]. Checked as
    /// [`register`](ClientBuilder::register) checks; connects on first use. Its
    /// connections close once the `Client`, its clones and every lock and guard made with
    /// it are dropped.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), redis_locked::LockError> {
    /// let client = redis_locked::ClientBuilder::new("redis://127.0.0.1:6379").build()?;
    /// client.scope(async { /* locks here use `client` */ }).await;
    /// # Ok(()) }
    /// ```
    pub fn build(self) -> Result<Client, LockError> {
        let client = Arc::new(self.make(UNREGISTERED)?);
        Ok(Client::new(client))
    }
}
