//! A Redis Cluster: a server per hash slot. Every key of one lock shares a slot (the lock
//! name is the key's hash tag), so each request for a lock goes to one shard's master
//! through the `redis` crate's async cluster connection, which follows `MOVED`/`ASK`
//! redirections and refreshes its slot map when a master fails over.
//!
//! The shared connection is made on the background runtime (it spawns a task that must
//! outlive any caller's runtime) and speaks RESP3 so that sharded pub/sub messages arrive as
//! push messages (see `waiting/cluster_pubsub.rs`). Requests go on connections nearer their
//! caller: each caller's runtime has its own (`cluster/by_runtime.rs`), and sync callers use
//! blocking connections or runtimes they drive themselves (`cluster/blocking.rs`).

mod blocking;
mod blocking_conns;
mod by_runtime;
mod resend;
mod runtime_pool;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use tokio::sync::{OnceCell, mpsc};

use crate::transport::reply::Reply;
use crate::util::error::LockError;
use crate::util::reachability::Reachability;
use resend::Next;

/// The connection of each caller's runtime (see `cluster/by_runtime.rs`).
type ByRuntime = Mutex<std::collections::HashMap<tokio::runtime::Id, ClusterConnection>>;

/// A Redis Cluster, reached from its seed nodes.
pub(crate) struct Cluster {
    inner: Arc<Inner>,
    /// Acquisitions wait for this many replicas to acknowledge the lock's write (0: none).
    pub(crate) min_replicas: usize,
    /// How long `WAIT` waits for them.
    pub(crate) replica_timeout: Duration,
}

struct Inner {
    client: ClusterClient,
    /// The registered client's name, for log events.
    name: String,
    /// The seed nodes' addresses, for messages.
    seeds: String,
    reachability: Reachability,
    connection: OnceCell<ClusterConnection>,
    /// The same cluster without push messages, for connections of callers' runtimes.
    request_client: ClusterClient,
    /// Those connections, one per runtime (see `cluster/by_runtime.rs`).
    by_runtime: Arc<ByRuntime>,
    /// The blocking connections sync callers' requests by key go on (see
    /// `cluster/blocking_conns.rs`).
    blocking_conns: blocking_conns::BlockingConns,
    /// The runtimes sync callers drive for the others (see `cluster/blocking.rs`).
    blocking: runtime_pool::BlockingRuntimes,
    /// The connection's push messages (sharded pub/sub), until the subscriber takes them.
    pushes: Mutex<Option<mpsc::UnboundedReceiver<redis::PushInfo>>>,
}

impl Inner {
    /// A connection made, or why not: the reachability log learns either way.
    fn connected(
        &self,
        made: redis::RedisResult<ClusterConnection>,
    ) -> Result<ClusterConnection, LockError> {
        match made {
            Ok(connection) => {
                self.reachability.connected(&self.name, &self.seeds);
                Ok(connection)
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    std::io::ErrorKind::TimedOut
                } else if e.is_connection_refusal() {
                    std::io::ErrorKind::ConnectionRefused
                } else {
                    std::io::ErrorKind::Other
                };
                let error = LockError::Connect {
                    address: format!("the Redis Cluster's seed nodes ({})", self.seeds),
                    lock: None,
                    source: std::io::Error::new(kind, NotConnected(e)),
                };
                self.reachability.failed(&self.name, &self.seeds, &error);
                Err(error)
            }
        }
    }
}

impl Cluster {
    pub(crate) fn new(
        name: &str,
        seed_urls: &[String],
        tls: &crate::transport::tls::TlsSettings,
        connect_timeout: Duration,
        response_timeout: Duration,
        max_connections: usize,
    ) -> Result<Cluster, LockError> {
        if seed_urls.is_empty() {
            return Err(LockError::invalid(
                "a cluster client needs at least one seed URL",
            ));
        }
        let mut seeds = Vec::with_capacity(seed_urls.len());
        for url in seed_urls {
            seeds.push(crate::util::url::tcp_connection_info(url, "cluster nodes")?);
        }
        let addresses: Vec<String> = seeds.iter().map(|info| info.addr().to_string()).collect();
        let (push_sender, pushes) = mpsc::unbounded_channel();
        #[cfg(feature = "tls")]
        let over_tls = seeds
            .iter()
            .any(|info| matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }));
        let builder = |pushes: Option<mpsc::UnboundedSender<redis::PushInfo>>| {
            let builder = redis::cluster::ClusterClientBuilder::new(seeds.clone())
                .use_protocol(redis::ProtocolVersion::RESP3)
                .connection_timeout(connect_timeout)
                .response_timeout(response_timeout)
                // Requests go again only where `resend.rs` says.
                .retries(0);
            let builder = match pushes {
                Some(sender) => builder.push_sender(sender),
                None => builder,
            };
            #[cfg(feature = "tls")]
            let builder = match over_tls {
                true => builder.certs(tls.certificates()?),
                false => builder,
            };
            builder.build().map_err(|e| {
                LockError::invalid(format!("the cluster's seed URLs are not usable: {e}"))
            })
        };
        #[cfg(not(feature = "tls"))]
        let _ = tls;
        let client = builder(Some(push_sender))?;
        let request_client = builder(None)?;
        Ok(Cluster {
            inner: Arc::new(Inner {
                client,
                name: name.to_string(),
                seeds: addresses.join(", "),
                reachability: Reachability::new(),
                connection: OnceCell::new(),
                blocking_conns: blocking_conns::BlockingConns::new(
                    request_client.clone(),
                    response_timeout,
                    max_connections,
                ),
                request_client,
                by_runtime: Arc::default(),
                blocking: runtime_pool::BlockingRuntimes::new(max_connections),
                pushes: Mutex::new(Some(pushes)),
            }),
            min_replicas: 0,
            replica_timeout: Duration::ZERO,
        })
    }

    /// The shared connection, made on the background runtime on first use. A failure is
    /// not kept: the next request tries again.
    pub(crate) async fn connection(&self) -> Result<ClusterConnection, LockError> {
        if let Some(connection) = self.inner.connection.get() {
            return Ok(connection.clone());
        }
        let inner = self.inner.clone();
        let made = crate::util::background::handle()?.spawn(async move {
            inner
                .connection
                .get_or_try_init(|| inner.client.get_async_connection())
                .await
                .cloned()
        });
        match made.await {
            Ok(made) => self.inner.connected(made),
            Err(e) => Err(std::io::Error::other(e.to_string()).into()),
        }
    }

    /// Sends `cmd` where `routing` says, or where its key belongs when `None`, again after
    /// a redirect or a refusal, and after a failure that leaves its outcome unknown only if
    /// `resend_safe` (see `resend.rs`). The reply's server errors come back as
    /// [`Reply::Error`], like a one-server client's replies.
    pub(crate) async fn request(
        &self,
        cmd: redis::Cmd,
        routing: Option<RoutingInfo>,
        resend_safe: bool,
    ) -> Result<Reply, LockError> {
        let mut connection = self.connection_here().await?;
        let mut redirect = None;
        let mut sends = 0;
        let outcome = loop {
            sends += 1;
            let outcome = match (&redirect, &routing) {
                (Some((node, true)), _) => {
                    let mut asking = redis::pipe();
                    asking.cmd("ASKING").add_command(cmd.clone());
                    let node = SingleNodeRoutingInfo::clone(node);
                    connection
                        .route_pipeline(asking, 1, 1, node)
                        .await
                        .map(|mut values| values.pop().unwrap_or(redis::Value::Nil))
                }
                (Some((node, false)), _) => {
                    let node = RoutingInfo::SingleNode(SingleNodeRoutingInfo::clone(node));
                    connection.route_command(cmd.clone(), node).await
                }
                (None, Some(routing)) => {
                    connection.route_command(cmd.clone(), routing.clone()).await
                }
                (None, None) => {
                    redis::aio::ConnectionLike::req_packed_command(&mut connection, &cmd).await
                }
            };
            match outcome {
                Err(e) => match resend::after_error(&e, sends, resend_safe) {
                    Next::Redirect { host, port, asking } => {
                        redirect = Some((SingleNodeRoutingInfo::ByAddress { host, port }, asking));
                    }
                    Next::After(pause) => {
                        redirect = None;
                        tokio::time::sleep(pause).await;
                    }
                    Next::GiveUp => break Err(e),
                },
                ok => break ok,
            }
        };
        match outcome {
            Ok(value) => Ok(Reply::from(value)),
            Err(e) => reply_or_error(e),
        }
    }

    /// Sends `pipeline` on one connection to the master of `key`'s slot and returns each
    /// command's reply. Sent again (see [`request`](Cluster::request)), the whole pipeline
    /// goes again, its commands still together.
    pub(crate) async fn pipeline_to_master_of(
        &self,
        key: &str,
        pipeline: redis::Pipeline,
        resend_safe: bool,
    ) -> Result<Vec<Reply>, LockError> {
        let mut connection = self.connection_here().await?;
        let count = pipeline.len();
        let mut route = SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
        let mut asking = false;
        let mut sends = 0;
        loop {
            sends += 1;
            let outcome = if asking {
                let mut asked = redis::pipe();
                asked.cmd("ASKING");
                for cmd in pipeline.cmd_iter() {
                    asked.add_command(cmd.clone());
                }
                connection
                    .route_pipeline(asked, 1, count, route.clone())
                    .await
            } else {
                connection
                    .route_pipeline(pipeline.clone(), 0, count, route.clone())
                    .await
            };
            match outcome {
                Ok(values) => return Ok(values.into_iter().map(Reply::from).collect()),
                Err(e) => match resend::after_error(&e, sends, resend_safe) {
                    Next::Redirect {
                        host,
                        port,
                        asking: ask,
                    } => {
                        route = SingleNodeRoutingInfo::ByAddress { host, port };
                        asking = ask;
                    }
                    Next::After(pause) => {
                        route = SingleNodeRoutingInfo::SpecificNode(Route::with_key(
                            key,
                            SlotAddr::Master,
                        ));
                        asking = false;
                        tokio::time::sleep(pause).await;
                    }
                    Next::GiveUp => return Err(e.into()),
                },
            }
        }
    }

    /// Another handle on the same connection, for a task of the background runtime.
    pub(super) fn handle(&self) -> Cluster {
        Cluster {
            inner: self.inner.clone(),
            min_replicas: self.min_replicas,
            replica_timeout: self.replica_timeout,
        }
    }

    /// The connection's push messages, once (for the subscriber).
    pub(crate) fn take_pushes(&self) -> Option<mpsc::UnboundedReceiver<redis::PushInfo>> {
        self.inner
            .pushes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

/// A request's failure as the reply it is when the server answered with an error, as a
/// one-server client's replies come ([`Reply::Error`]); else as the error.
fn reply_or_error(e: redis::RedisError) -> Result<Reply, LockError> {
    match e.kind() {
        redis::ErrorKind::Server(_) => Ok(Reply::Error(match e.detail() {
            Some(detail) => format!("{} {detail}", e.code().unwrap_or("ERR")),
            None => e.code().unwrap_or("ERR").to_string(),
        })),
        _ => Err(e.into()),
    }
}

/// Why the `redis` crate's cluster client could not connect, as the cause of a `Connect`
/// error: it says so, and its own cause is the client's error.
#[derive(Debug)]
struct NotConnected(redis::RedisError);

impl std::fmt::Display for NotConnected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the cluster client found no node to connect to")
    }
}

impl std::error::Error for NotConnected {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(crate::util::error::cause(&self.0))
    }
}
