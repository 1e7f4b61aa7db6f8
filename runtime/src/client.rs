//! A configured Redis server: its connections, its waiters and its key naming.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::conn::Endpoint;
use crate::error::LockError;
use crate::pool::{AsyncPools, SyncPool};
use crate::resp::Reply;
use crate::subscriber::Subscriber;
use crate::waiters::WaitTable;

/// Everything the lock needs to know about one client. Locks, guards and the tasks that
/// renew or release their locks hold it by `Arc`; a registered client lives for the whole
/// process (the registry holds it), a built [`Client`](crate::Client) until its last user
/// lets go. The subscriber's tasks hold it weakly, so that they end with it.
pub(crate) struct LockClient {
    pub(crate) name: String,
    pub(crate) prefix: String,
    pub(crate) default_lease: Duration,
    /// How long an acquisition rides out an unreachable Redis before it gives up.
    pub(crate) outage_timeout: Duration,
    /// Where requests go.
    pub(crate) backend: Backend,
    pub(crate) sync_pool: SyncPool,
    pub(crate) async_pools: AsyncPools,
    pub(crate) waiters: WaitTable,
    /// Payload of this client's release announcements, so it can skip its own.
    pub(crate) instance_id: String,
    subscriber: OnceLock<Option<Subscriber>>,
}

/// One Redis server: how our connections reach it.
pub(crate) struct Server {
    pub(crate) endpoint: Endpoint,
}

impl Server {
    /// The server of a `redis://`, `rediss://` or `unix://` URL, for the client registered
    /// as `client`.
    pub(crate) fn from_url(
        client: &str,
        url: &str,
        tls_root_certificate: Option<&[u8]>,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Server, LockError> {
        let info = connection_info(url)?;
        let endpoint = Endpoint::new(
            client,
            &info,
            tls_root_certificate,
            connect_timeout,
            response_timeout,
        )?;
        Ok(Server { endpoint })
    }
}

/// The server a request goes to: a client's fixed one, or the master found last.
pub(crate) enum Current<'a> {
    Fixed(&'a Server),
    Resolved(Arc<Server>),
}

impl Deref for Current<'_> {
    type Target = Server;

    fn deref(&self) -> &Server {
        match self {
            Current::Fixed(server) => server,
            Current::Resolved(server) => server,
        }
    }
}

/// A request meant for one server reached a Redlock or Cluster client, whose requests are
/// routed elsewhere (`redlock.rs`, and by key in `io.rs`): a bug, reported as such.
fn not_one_server() -> LockError {
    LockError::invalid("internal error: a Redlock or Cluster client was asked for a single server")
}

fn unusable(url: &str, e: redis::RedisError) -> LockError {
    let url = redact_url(url);
    // `host:port` alone parses as a URL whose scheme is the host: say what was meant.
    if !url.contains("://") {
        return LockError::invalid(format!(
            "`{url}` is not a Redis URL (it has no scheme): did you mean `redis://{url}`?"
        ));
    }
    LockError::invalid(format!("`{url}` is not a usable Redis URL: {e}"))
}

/// A URL's connection settings, checked.
/// [`connection_info`] for `what` (sentinels, cluster nodes), which must be TCP servers.
pub(crate) fn tcp_connection_info(
    url: &str,
    what: &str,
) -> Result<redis::ConnectionInfo, LockError> {
    let info = connection_info(url)?;
    match info.addr() {
        redis::ConnectionAddr::Tcp(..) | redis::ConnectionAddr::TcpTls { .. } => Ok(info),
        _ => Err(LockError::invalid(format!(
            "`{}`: {what} must be reached over TCP (redis:// or rediss://)",
            redact_url(url)
        ))),
    }
}

pub(crate) fn connection_info(url: &str) -> Result<redis::ConnectionInfo, LockError> {
    #[cfg(not(feature = "tls"))]
    if url
        .get(..9)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("rediss://"))
    {
        return Err(crate::conn::tls_not_enabled(&redact_url(url)));
    }
    let info =
        redis::IntoConnectionInfo::into_connection_info(url).map_err(|e| unusable(url, e))?;
    // A cluster's connections would send `CLIENT SETINFO` (ignoring its failure): skip
    // it, so a lock user's ACL needs no CLIENT right beyond `client|setname` (see the
    // README's "Security").
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    Ok(info.set_redis_settings(settings))
}

impl LockClient {
    #[allow(clippy::too_many_arguments, reason = "one per ClientBuilder option")]
    pub(crate) fn new(
        name: String,
        backend: Backend,
        prefix: String,
        default_lease: Duration,
        outage_timeout: Duration,
        max_connections: usize,
    ) -> Result<LockClient, LockError> {
        Ok(LockClient {
            name,
            prefix,
            default_lease,
            outage_timeout,
            backend,
            sync_pool: SyncPool::new(max_connections),
            async_pools: AsyncPools::new(max_connections),
            waiters: WaitTable::new(),
            instance_id: crate::token::new_instance_id()?,
            subscriber: OnceLock::new(),
        })
    }

    /// The Redis key of lock `name`: the prefix, then the name as a Redis Cluster hash tag,
    /// so every key of one lock lives in one slot (see `keys.rs`).
    pub(crate) fn key(&self, name: &str) -> String {
        crate::keys::lock_key(&self.prefix, name)
    }

    /// The server to send a request to, for async callers: for a Sentinel-managed master
    /// never resolved yet, once one resolution has ended (or `until`).
    pub(crate) async fn server(&self, until: Option<Instant>) -> Result<Current<'_>, LockError> {
        match &self.backend {
            Backend::Server(server) => Ok(Current::Fixed(server)),
            Backend::Sentinel(sentinel) => sentinel.wait(until).await.map(Current::Resolved),
            Backend::Redlock(_) => Err(not_one_server()),
            Backend::Cluster(_) => Err(not_one_server()),
        }
    }

    /// [`server`](LockClient::server) for sync callers.
    pub(crate) fn server_blocking(&self, until: Option<Instant>) -> Result<Current<'_>, LockError> {
        match &self.backend {
            Backend::Server(server) => Ok(Current::Fixed(server)),
            Backend::Sentinel(sentinel) => sentinel.wait_blocking(until).map(Current::Resolved),
            Backend::Redlock(_) => Err(not_one_server()),
            Backend::Cluster(_) => Err(not_one_server()),
        }
    }

    /// Looks at a request's outcome: a failure that suggests the master moved (an
    /// unreachable server, a replica refusing writes) has the sentinels asked again.
    pub(crate) fn check(&self, outcome: &Result<Reply, LockError>) {
        if let Backend::Sentinel(sentinel) = &self.backend {
            let moved = match outcome {
                Ok(Reply::Error(message)) => crate::error::is_readonly(message),
                Ok(_) => false,
                Err(e) => e.is_unavailable(),
            };
            if moved {
                let _ = sentinel.refresh();
            }
        }
    }

    /// Makes sure release announcements for `key` reach this process.
    pub(crate) fn subscribe(self: &Arc<Self>, key: &str) {
        if self.waiters.needs_subscription(key)
            && let Some(subscriber) = self.subscriber.get_or_init(|| Subscriber::start(self))
        {
            subscriber.subscribe(key);
        }
    }
}

/// The URL with its password replaced by `***`, for messages: `redis://user:***@host`,
/// and `unix:///path?pass=***`. Works on malformed URLs too.
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    // The user information ends at the last `@` (a password may hold `@` or `/`).
    let rest = match rest.rfind('@') {
        Some(at) => {
            let (userinfo, host) = rest.split_at(at);
            match userinfo.find(':') {
                Some(colon) => format!("{}:***{host}", &userinfo[..colon]),
                None => rest.to_string(),
            }
        }
        None => rest.to_string(),
    };
    // unix:// URLs carry credentials as query parameters.
    let rest = match rest.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _))
                        if k.eq_ignore_ascii_case("pass") || k.eq_ignore_ascii_case("password") =>
                    {
                        format!("{k}=***")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => rest,
    };
    format!("{scheme}{rest}")
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[cfg(not(feature = "tls"))]
    #[test]
    fn rediss_without_the_tls_feature_says_to_enable_it() {
        let e = crate::ClientBuilder::new("rediss://:s3cret@127.0.0.1:6380")
            .register("rediss-without-tls")
            .unwrap_err();
        let message = e.to_string();
        assert!(
            matches!(e, crate::LockError::InvalidConfig { .. })
                && message.contains("`tls` feature"),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(
            redact_url("redis://user:s3cret@host:6379/2"),
            "redis://user:***@host:6379/2"
        );
        assert_eq!(redact_url("redis://:s3cret@host"), "redis://:***@host");
        assert_eq!(redact_url("rediss://u:a@b/c@host"), "rediss://u:***@host");
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact_url("redis://user@host"), "redis://user@host");
        assert_eq!(
            redact_url("unix:///tmp/r.sock?db=1&pass=s3cret&user=me"),
            "unix:///tmp/r.sock?db=1&pass=***&user=me"
        );
        assert_eq!(redact_url("u:s3cret@host"), "u:***@host");
    }
}
