//! A master managed by Redis Sentinel: its address is asked of the sentinels, and asked
//! again when a request suggests that the master moved.
//!
//! Resolution runs on the background runtime with async connections and the client's
//! timeouts, one at a time and at most every [`MIN_INTERVAL`]; nobody waits for it but a
//! caller with no address at all yet (first use), and that one only until its deadline or
//! the resolution's end. Callers whose request failed do not wait for it: they retry with
//! their usual backoff and find the new address when it is there.
//!
//! A new address gets a new generation number; pooled connections of an older generation
//! are dropped instead of reused (see `pool.rs`), and the subscriber reconnects when it
//! sees the generation change (see `subscriber.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::transport::conn::AsyncConn;
use crate::transport::endpoint::Endpoint;
use crate::transport::reply::Reply;
use crate::transport::server::Server;
use crate::transport::tls::TlsSettings;
use crate::util::block_on::block_on_until;
use crate::util::error::{Chain, LockError};
use crate::util::sync::lock;

/// The least time between two resolutions.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// A master's address as the sentinels gave it, and the server there.
type Resolved = ((String, u16), Arc<Server>);

/// What a Sentinel-managed client needs to find its master, and the master found.
/// Cheap to clone: everything is shared.
#[derive(Clone)]
pub(crate) struct SentinelMaster {
    inner: Arc<Inner>,
}

struct Inner {
    /// The registered client's name.
    client: String,
    /// The name the sentinels know the master by.
    name: String,
    sentinels: Vec<Endpoint>,
    /// The master's connection settings but for its address (scheme and credentials).
    master_info: redis::ConnectionInfo,
    tls: TlsSettings,
    connect_timeout: Duration,
    response_timeout: Duration,
    /// The master's address as the sentinels gave it, and the server there.
    current: RwLock<Option<Resolved>>,
    /// Bumped after every resolution, successful or not: what first-use waiters and the
    /// subscriber watch.
    resolved: watch::Sender<u64>,
    resolving: AtomicBool,
    last_start: Mutex<Option<Instant>>,
    /// Why the latest resolution failed, for the error of a caller left without address.
    last_error: Mutex<Option<String>>,
}

impl SentinelMaster {
    /// Checks the sentinel URLs; asks nothing yet.
    pub(crate) fn new(
        client: &str,
        name: &str,
        sentinel_urls: &[String],
        credentials: Option<(String, String)>,
        tls: &TlsSettings,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<SentinelMaster, LockError> {
        if name.is_empty() {
            return Err(LockError::invalid("the Sentinel master name is empty"));
        }
        if sentinel_urls.is_empty() {
            return Err(LockError::invalid("no Sentinel URL given"));
        }
        let mut sentinels = Vec::with_capacity(sentinel_urls.len());
        let mut first_addr = None;
        for url in sentinel_urls {
            let info = crate::util::url::tcp_connection_info(url, "sentinels")?;
            first_addr.get_or_insert_with(|| info.addr().clone());
            sentinels.push(Endpoint::new(
                client,
                &info,
                tls,
                connect_timeout,
                response_timeout,
            )?);
        }
        // The master is reached like the sentinels (TLS or not), with its own credentials.
        let mut settings = redis::IntoConnectionInfo::into_connection_info("redis://127.0.0.1")
            .map_err(|e| LockError::invalid(e.to_string()))?
            .redis_settings()
            .clone()
            .set_skip_set_lib_name();
        if let Some((user, password)) = credentials {
            settings = settings.set_username(user).set_password(password);
        }
        let master_info = crate::util::url::connection_info(&sentinel_urls[0])?
            .set_addr(first_addr.expect("at least one sentinel"))
            .set_redis_settings(settings);
        let (resolved, _) = watch::channel(0);
        Ok(SentinelMaster {
            inner: Arc::new(Inner {
                client: client.to_string(),
                name: name.to_string(),
                sentinels,
                master_info,
                tls: tls.clone(),
                connect_timeout,
                response_timeout,
                current: RwLock::new(None),
                resolved,
                resolving: AtomicBool::new(false),
                last_start: Mutex::new(None),
                last_error: Mutex::new(None),
            }),
        })
    }

    /// The master as last resolved, if ever.
    pub(crate) fn current(&self) -> Option<Arc<Server>> {
        self.inner
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(_, server)| server.clone())
    }

    /// Watches resolutions (the value is their count).
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.inner.resolved.subscribe()
    }

    /// Asks the sentinels for the master again, in the background, unless that is being
    /// done already or was begun less than [`MIN_INTERVAL`] ago. Says whether a
    /// resolution is under way now.
    pub(crate) fn refresh(&self) -> bool {
        let inner = &self.inner;
        {
            let mut last = lock(&inner.last_start);
            let now = Instant::now();
            if last.is_some_and(|at| now.duration_since(at) < MIN_INTERVAL) {
                return inner.resolving.load(Ordering::Acquire);
            }
            if inner.resolving.swap(true, Ordering::AcqRel) {
                return true;
            }
            *last = Some(now);
        }
        let Ok(runtime) = crate::util::background::handle() else {
            inner.resolving.store(false, Ordering::Release);
            return false;
        };
        let inner = self.inner.clone();
        runtime.spawn(async move {
            let bound = inner.connect_timeout + inner.response_timeout;
            let outcome = match tokio::time::timeout(bound, inner.ask_sentinels()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("the sentinels did not answer within {bound:?}")),
            };
            let outcome = match outcome {
                Ok((host, port)) => inner.check_role(host, port).await,
                Err(reason) => Err(reason),
            };
            match outcome {
                Ok(()) => *lock(&inner.last_error) = None,
                Err(reason) => {
                    tracing::warn!(master = %inner.name, %reason, "redis-locked: could not resolve the Sentinel master");
                    *lock(&inner.last_error) = Some(reason);
                }
            }
            inner.resolving.store(false, Ordering::Release);
            inner.resolved.send_modify(|n| *n += 1);
        });
        true
    }

    /// The master, resolving it first if it never was, waiting at most until `until` or
    /// the end of one resolution.
    pub(crate) async fn wait(&self, until: Option<Instant>) -> Result<Arc<Server>, LockError> {
        match self.lookup(until) {
            Lookup::Done(master) => master,
            Lookup::Wait(mut resolved, until) => {
                let _ = tokio::time::timeout_at(until.into(), resolved.changed()).await;
                self.current().ok_or_else(|| self.unresolved())
            }
        }
    }

    /// [`wait`](SentinelMaster::wait) for sync callers, on their own thread.
    pub(crate) fn wait_blocking(&self, until: Option<Instant>) -> Result<Arc<Server>, LockError> {
        match self.lookup(until) {
            Lookup::Done(master) => master,
            Lookup::Wait(mut resolved, until) => {
                let _ = block_on_until(resolved.changed(), Some(until));
                self.current().ok_or_else(|| self.unresolved())
            }
        }
    }

    /// The master if known; else starts a resolution and says what to wait for, and until
    /// when (`until`, or the end of one resolution).
    fn lookup(&self, until: Option<Instant>) -> Lookup {
        if let Some(server) = self.current() {
            return Lookup::Done(Ok(server));
        }
        let mut resolved = self.watch();
        resolved.borrow_and_update();
        if !self.refresh() {
            // The latest resolution failed just now: do not wait for another.
            return Lookup::Done(self.current().ok_or_else(|| self.unresolved()));
        }
        let bound = Instant::now() + self.inner.connect_timeout + self.inner.response_timeout;
        Lookup::Wait(resolved, until.map_or(bound, |u| u.min(bound)))
    }

    /// The error of a caller left without a master address: a connection error, so that
    /// waiters retry it like an unreachable server.
    fn unresolved(&self) -> LockError {
        let reason = lock(&self.inner.last_error)
            .clone()
            .unwrap_or_else(|| "no sentinel has answered yet".into());
        LockError::Connect {
            address: format!("the master `{}` (via Sentinel)", self.inner.name),
            lock: None,
            source: std::io::Error::other(reason),
        }
    }
}

/// See [`SentinelMaster::lookup`].
enum Lookup {
    Done(Result<Arc<Server>, LockError>),
    Wait(watch::Receiver<u64>, Instant),
}

impl Inner {
    /// Asks each sentinel in turn for the master's address; the first answer wins.
    async fn ask_sentinels(&self) -> Result<(String, u16), String> {
        let mut failures = Vec::new();
        let ask = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.name)
            .take();
        for sentinel in &self.sentinels {
            let answer = async { AsyncConn::connect(sentinel).await?.request(&ask).await };
            match answer.await {
                Ok(Reply::Array(parts)) => match parts.as_slice() {
                    [Reply::Bulk(host), Reply::Bulk(port)] => {
                        let host = String::from_utf8_lossy(host).into_owned();
                        match std::str::from_utf8(port).ok().and_then(|p| p.parse().ok()) {
                            Some(port) => return Ok((host, port)),
                            None => failures
                                .push(format!("{}: unexpected port {port:?}", sentinel.address())),
                        }
                    }
                    _ => failures.push(format!(
                        "{}: unexpected reply {parts:?}",
                        sentinel.address()
                    )),
                },
                Ok(Reply::Nil) => failures.push(format!(
                    "{} knows no master named `{}`",
                    sentinel.address(),
                    self.name
                )),
                Ok(Reply::Error(message)) => {
                    failures.push(format!("{}: {message}", sentinel.address()))
                }
                Ok(other) => failures.push(format!(
                    "{}: unexpected reply {other:?}",
                    sentinel.address()
                )),
                // A connection error names the sentinel's address itself.
                Err(e @ LockError::Connect { .. }) => failures.push(Chain(&e).to_string()),
                Err(e) => failures.push(format!("{}: {}", sentinel.address(), Chain(&e))),
            }
        }
        Err(failures.join("; "))
    }

    /// Checks that the server the sentinels named at `host:port` says it is a master (with
    /// `ROLE`, as the Sentinel client guidelines ask: a sentinel that has not seen a
    /// failover yet may name a demoted master), and makes it the master.
    async fn check_role(&self, host: String, port: u16) -> Result<(), String> {
        let known = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(((h, p), _)) = &known
            && *h == host
            && *p == port
        {
            return Ok(());
        }
        let generation = known.map_or(1, |(_, s)| s.endpoint.generation + 1);
        let endpoint = self.master_endpoint(&host, port, generation)?;
        let role = async {
            AsyncConn::connect(&endpoint)
                .await?
                .request(&redis::cmd("ROLE"))
                .await
        };
        let address = format!("{host}:{port}");
        match role.await {
            Ok(Reply::Array(parts)) if parts.first() == Some(&Reply::Bulk(b"master".to_vec())) => {}
            // A lock user's ACL may leave `ROLE` out: then the sentinels' word stands.
            Ok(Reply::Error(message)) if message.starts_with("NOPERM") => {
                tracing::debug!(master = %self.name, address = %address, "redis-locked: ROLE refused by the ACL; the master is not checked (grant +role)");
            }
            Ok(Reply::Array(parts)) => {
                let role = match parts.first() {
                    Some(Reply::Bulk(role)) => String::from_utf8_lossy(role).into_owned(),
                    other => format!("{other:?}"),
                };
                return Err(format!(
                    "the sentinels named {address}, which says it is a {role}, not a master"
                ));
            }
            Ok(other) => return Err(format!("{address}: unexpected ROLE reply {other:?}")),
            Err(e) => return Err(format!("{address}: {}", Chain(&e))),
        }
        tracing::info!(master = %self.name, address = %address, "redis-locked: Sentinel master resolved");
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        *current = Some(((host, port), Arc::new(Server { endpoint })));
        Ok(())
    }

    /// The endpoint of the master at `host:port`, reached like the sentinels.
    fn master_endpoint(&self, host: &str, port: u16, generation: u64) -> Result<Endpoint, String> {
        let mut addr = self.master_info.addr().clone();
        match &mut addr {
            redis::ConnectionAddr::Tcp(h, p) => (*h, *p) = (host.to_string(), port),
            redis::ConnectionAddr::TcpTls {
                host: h, port: p, ..
            } => (*h, *p) = (host.to_string(), port),
            _ => return Err("unsupported sentinel address".into()),
        }
        let info = self.master_info.clone().set_addr(addr);
        Endpoint::new(
            &self.client,
            &info,
            &self.tls,
            self.connect_timeout,
            self.response_timeout,
        )
        .map(|endpoint| endpoint.with_generation(generation))
        .map_err(|e| e.to_string())
    }
}
