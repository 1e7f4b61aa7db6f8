//! One Redis server as a client's connections reach it: the `redis` crate's client for its
//! address (TCP, TLS or a Unix socket), the credentials and database our own handshake
//! sends, the timeouts, and what a failure to connect or to get a reply becomes.
//!
//! The `redis` crate connects and parses replies; the handshake (`AUTH`, `SELECT`,
//! `CLIENT SETNAME`) is ours, so that it costs no round trip of its own (see `conn.rs`)
//! and a refused password is reported with the server's words and the user's name.

use std::sync::Arc;
use std::time::Duration;

use crate::transport::failure::{HandshakeFailed, io_error};
use crate::transport::reply::{Reply, auth_failure, server_error};
use crate::transport::tls::TlsSettings;
use crate::util::error::LockError;
use crate::util::reachability::Reachability;

/// Where and how to connect, read once from the client's URL. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Endpoint {
    /// The `redis` crate's client, without credentials or database (our handshake sends
    /// them).
    client: redis::Client,
    /// The same with them, for a RESP3 connection, whose `HELLO` authenticates.
    authenticated: redis::Client,
    address: String,
    username: Option<String>,
    password: Option<String>,
    db: i64,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    /// Which address of a moving server (a Sentinel-managed master) this is: connections
    /// made to an older one are not reused. Always 0 for a fixed server.
    pub(crate) generation: u64,
    /// The registered client's name, for log events.
    client_name: Arc<str>,
    /// The name our connections give themselves: `redis-locked:<client>:<pid>`.
    connection_name: Arc<str>,
    /// Shared by the endpoint's clones: one outage, one warning.
    reachability: Arc<Reachability>,
}

/// Never shows the password.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.address)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("connection_name", &self.connection_name)
            .finish()
    }
}

impl Endpoint {
    /// The endpoint of `info`'s server for the client registered as `client`.
    pub(crate) fn new(
        client: &str,
        info: &redis::ConnectionInfo,
        tls: &TlsSettings,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Endpoint, LockError> {
        let address = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
            redis::ConnectionAddr::Unix(path) => path.display().to_string(),
            redis::ConnectionAddr::TcpTls { insecure: true, .. } => {
                return Err(LockError::invalid(
                    "`#insecure` (no certificate check) is not supported: trust the \
                     server's CA with `ClientBuilder::tls_root_certificate` instead",
                ));
            }
            redis::ConnectionAddr::TcpTls { host, port, .. } => format!("{host}:{port} (TLS)"),
            other => {
                return Err(LockError::invalid(format!(
                    "unsupported Redis address {other}: use redis://, rediss:// or unix://"
                )));
            }
        };
        let settings = info.redis_settings();
        let bare = info.clone().set_redis_settings(
            redis::RedisConnectionInfo::default()
                .set_skip_set_lib_name()
                .set_protocol(settings.protocol()),
        );
        Ok(Endpoint {
            client: redis_client(bare, tls)?,
            authenticated: redis_client(
                info.clone()
                    .set_redis_settings(settings.clone().set_skip_set_lib_name()),
                tls,
            )?,
            address,
            username: settings.username().map(str::to_owned),
            password: settings.password().map(str::to_owned),
            db: settings.db(),
            connect_timeout,
            response_timeout,
            generation: 0,
            client_name: client.into(),
            connection_name: connection_name(client).into(),
            reachability: Arc::new(Reachability::new()),
        })
    }

    pub(crate) fn with_generation(mut self, generation: u64) -> Endpoint {
        self.generation = generation;
        self
    }

    /// Where this endpoint connects, for messages: `host:port` or the socket path, never
    /// credentials.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// A blocking connection, made within `limit` if that is shorter than the connect
    /// timeout; its handshake is still to be sent (see [`handshake`](Endpoint::handshake)).
    pub(crate) fn connect_blocking(
        &self,
        limit: Option<Duration>,
    ) -> Result<redis::Connection, LockError> {
        let timeout = shorter(self.connect_timeout, limit);
        let made = self
            .client
            .get_connection_with_timeout(timeout)
            .map_err(|e| self.connect_error(e));
        self.connect_outcome(made)
    }

    /// An async connection on the current Tokio runtime, which runs its driver; its
    /// handshake is still to be sent.
    pub(crate) async fn connect(&self) -> Result<redis::aio::MultiplexedConnection, LockError> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout));
        let made = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| self.connect_error(e));
        self.connect_outcome(made)
    }

    /// A RESP3 connection for pub/sub, authenticated (by `HELLO`) and named, whose pushes
    /// (messages, and the news that it was lost) go to `pushes`.
    pub(crate) async fn connect_pubsub(
        &self,
        pushes: tokio::sync::mpsc::UnboundedSender<redis::PushInfo>,
    ) -> Result<redis::aio::MultiplexedConnection, LockError> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
            .set_push_sender(pushes);
        let mut info = self.authenticated.get_connection_info().clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        info = info.set_redis_settings(settings);
        let made = async {
            let client = redis::Client::open(info).map_err(|e| self.connect_error(e))?;
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map_err(|e| self.connect_error(e))?;
            let name = redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg(&*self.connection_name)
                .take();
            // Only a name for operators (see `Setup::Name`): a refusal changes nothing.
            let _ = conn.send_packed_command(&name).await;
            Ok(conn)
        };
        self.connect_outcome(made.await)
    }

    /// Commands to send right after connecting: AUTH and SELECT as the URL asks, and
    /// CLIENT SETNAME; with what each of them is, to check their replies.
    pub(crate) fn handshake(&self) -> (Vec<redis::Cmd>, Vec<Setup>) {
        let mut commands = Vec::new();
        let mut steps = Vec::new();
        if let Some(password) = &self.password {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = &self.username {
                auth.arg(user);
            }
            auth.arg(password);
            commands.push(auth);
            steps.push(Setup::Auth {
                user: self.user().to_string(),
            });
        }
        if self.db != 0 {
            commands.push(redis::cmd("SELECT").arg(self.db).take());
            steps.push(Setup::Select);
        }
        commands.push(
            redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg(&*self.connection_name)
                .take(),
        );
        steps.push(Setup::Name);
        (commands, steps)
    }

    /// The name our connections give themselves.
    pub(crate) fn connection_name(&self) -> &str {
        &self.connection_name
    }

    /// The ACL user we authenticate as.
    fn user(&self) -> &str {
        self.username.as_deref().unwrap_or("default")
    }

    /// A connection attempt's failure: refused credentials, a refused command, or a
    /// server that could not be reached.
    fn connect_error(&self, e: redis::RedisError) -> LockError {
        if e.kind() == redis::ErrorKind::AuthenticationFailed {
            return LockError::Auth {
                user: self.user().to_string(),
                reason: e.to_string(),
                lock: None,
            };
        }
        if e.code().is_some() {
            return server_error(e.to_string());
        }
        let mut source = io_error(e);
        // Over TLS, an error the operating system did not report is the handshake's.
        if self.address.ends_with("(TLS)") && source.raw_os_error().is_none() {
            source = std::io::Error::new(source.kind(), HandshakeFailed(source));
        }
        LockError::Connect {
            address: self.address.clone(),
            lock: None,
            source,
        }
    }

    /// Reports how a connection attempt ended, for the log's outage warnings.
    fn connect_outcome<T>(&self, outcome: Result<T, LockError>) -> Result<T, LockError> {
        match &outcome {
            Ok(_) => self
                .reachability
                .connected(&self.client_name, &self.address),
            Err(e) => self
                .reachability
                .failed(&self.client_name, &self.address, e),
        }
        outcome
    }
}

/// The `redis` crate's client for `info`, with the TLS settings when it is `rediss://`.
fn redis_client(
    info: redis::ConnectionInfo,
    tls: &TlsSettings,
) -> Result<redis::Client, LockError> {
    let made = match info.addr() {
        // An application's `redis::Client` built with its own TLS settings keeps them.
        #[cfg(feature = "tls")]
        redis::ConnectionAddr::TcpTls {
            tls_params: Some(_),
            ..
        } => {
            crate::transport::tls::check_provider()?;
            redis::Client::open(info)
        }
        #[cfg(feature = "tls")]
        redis::ConnectionAddr::TcpTls { .. } => {
            redis::Client::build_with_tls(info, tls.certificates()?)
        }
        #[cfg(not(feature = "tls"))]
        redis::ConnectionAddr::TcpTls { host, port, .. } => {
            return Err(crate::util::url::tls_not_enabled(&format!(
                "rediss://{host}:{port}"
            )));
        }
        _ => {
            let _ = tls;
            redis::Client::open(info)
        }
    };
    made.map_err(|e| LockError::invalid(format!("the Redis address is not usable: {e}")))
}

/// The name a client's connections give themselves, for `CLIENT LIST`:
/// `redis-locked:<client>:<pid>`. Redis refuses names with spaces, newlines or anything
/// outside printable ASCII, so such characters of the client's name become `_`.
pub(crate) fn connection_name(client: &str) -> String {
    let client: String = client
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    format!("redis-locked:{client}:{}", std::process::id())
}

/// A command sent right after connecting, whose reply is still to be checked.
pub(crate) enum Setup {
    /// AUTH, as `user`.
    Auth {
        user: String,
    },
    Select,
    /// CLIENT SETNAME.
    Name,
}

impl Setup {
    /// Checks the reply to this command: a refused AUTH names the user.
    pub(crate) fn check(self, reply: Reply) -> Result<(), LockError> {
        let Reply::Error(message) = reply else {
            return Ok(());
        };
        match self {
            Setup::Auth { user } => Err(match auth_failure(&message) {
                Some(reason) => LockError::Auth {
                    user,
                    reason,
                    lock: None,
                },
                None => server_error(message),
            }),
            Setup::Select => Err(server_error(message)),
            // Only a name for operators: a user whose ACL lacks `client|setname`, or a
            // server too old for it, gets an unnamed connection that works all the same.
            Setup::Name => Ok(()),
        }
    }
}

/// The shorter of a configured timeout and a caller's `limit`, never zero (a zero socket
/// timeout is refused by the OS).
pub(crate) fn shorter(timeout: Duration, limit: Option<Duration>) -> Duration {
    match limit {
        Some(limit) if limit < timeout => limit.max(Duration::from_millis(1)),
        _ => timeout,
    }
}
