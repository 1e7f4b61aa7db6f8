//! Direct connections to one Redis server, blocking and async.
//!
//! The caller's own thread or task writes the request and reads the reply: there is no
//! driver task or channel hop in between, which is what keeps a locked call close to the
//! two-round-trip limit. Async connections are registered with the Tokio runtime that made
//! them, so they are only ever reused on that runtime (see `pool.rs`).
//!
//! Right after connecting, a connection authenticates, selects its database and names
//! itself (`CLIENT SETNAME redis-locked:<client>:<pid>`, so operators can tell the crate's
//! connections apart in `CLIENT LIST`). Those commands are written at once and their
//! replies read just before the first request's: pipelined, they add no round trip.

use std::io::{Read, Write};
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::LockError;
use crate::reachability::Reachability;
use crate::resp::{Reply, auth_failure, parse, server_error};

/// Where and how to connect, read once from the client's URL.
#[derive(Clone)]
pub(crate) struct Endpoint {
    addr: Addr,
    username: Option<String>,
    password: Option<String>,
    db: i64,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    /// Which address of a moving server (a Sentinel-managed master) this is: connections
    /// made to an older one are not reused. Always 0 for a fixed server.
    pub(crate) generation: u64,
    /// The registered client's name, for log events.
    client: Arc<str>,
    /// The name our connections give themselves: `redis-locked:<client>:<pid>`.
    connection_name: Arc<str>,
    /// Shared by the endpoint's clones: one outage, one warning.
    reachability: Arc<Reachability>,
}

/// Never shows the password.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.address())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("connection_name", &self.connection_name)
            .finish()
    }
}

#[derive(Clone)]
enum Addr {
    Tcp(String, u16),
    Unix(PathBuf),
    #[cfg(feature = "tls")]
    Tls {
        host: String,
        port: u16,
        config: std::sync::Arc<rustls::ClientConfig>,
    },
}

impl Endpoint {
    /// The endpoint of `info`'s server for the client registered as `client`.
    pub(crate) fn new(
        client: &str,
        info: &redis::ConnectionInfo,
        tls_root_certificate: Option<&[u8]>,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Endpoint, LockError> {
        let addr = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => Addr::Tcp(host.clone(), *port),
            redis::ConnectionAddr::Unix(path) => Addr::Unix(path.clone()),
            #[cfg(feature = "tls")]
            redis::ConnectionAddr::TcpTls {
                host,
                port,
                insecure,
                ..
            } => {
                if *insecure {
                    return Err(LockError::invalid(
                        "`#insecure` (no certificate check) is not supported: trust the \
                         server's CA with `ClientBuilder::tls_root_certificate` instead",
                    ));
                }
                Addr::Tls {
                    host: host.clone(),
                    port: *port,
                    config: crate::tls::client_config(tls_root_certificate)?,
                }
            }
            #[cfg(not(feature = "tls"))]
            redis::ConnectionAddr::TcpTls { host, port, .. } => {
                return Err(crate::url::tls_not_enabled(&format!(
                    "rediss://{host}:{port}"
                )));
            }
            other => {
                return Err(LockError::invalid(format!(
                    "unsupported Redis address {other}: use redis://, rediss:// or unix://"
                )));
            }
        };
        #[cfg(not(feature = "tls"))]
        let _ = tls_root_certificate;
        let settings = info.redis_settings();
        Ok(Endpoint {
            addr,
            username: settings.username().map(str::to_owned),
            password: settings.password().map(str::to_owned),
            db: settings.db(),
            connect_timeout,
            response_timeout,
            generation: 0,
            client: client.into(),
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
    pub(crate) fn address(&self) -> String {
        match &self.addr {
            Addr::Tcp(host, port) => format!("{host}:{port}"),
            Addr::Unix(path) => path.display().to_string(),
            #[cfg(feature = "tls")]
            Addr::Tls { host, port, .. } => format!("{host}:{port} (TLS)"),
        }
    }

    /// The ACL user we authenticate as.
    fn user(&self) -> &str {
        self.username.as_deref().unwrap_or("default")
    }

    fn connect_error(&self, cause: std::io::Error) -> LockError {
        LockError::Connect {
            address: self.address(),
            lock: None,
            source: cause,
        }
    }

    fn connect_timed_out(&self) -> LockError {
        self.connect_error(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "not connected within the connect timeout of {:?}",
                self.connect_timeout
            ),
        ))
    }

    /// Reports how a connection attempt ended, for the log's outage warnings.
    fn connect_outcome<T>(&self, outcome: Result<T, LockError>) -> Result<T, LockError> {
        match &outcome {
            Ok(_) => self.reachability.connected(&self.client, &self.address()),
            Err(e) => self.reachability.failed(&self.client, &self.address(), e),
        }
        outcome
    }

    /// Commands to send right after connecting, packed one after another: AUTH and SELECT
    /// as the URL asks, and CLIENT SETNAME; with what each of them is.
    fn handshake(&self) -> (Vec<u8>, Vec<Setup>) {
        let mut packed = Vec::new();
        let mut steps = Vec::new();
        if let Some(password) = &self.password {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = &self.username {
                auth.arg(user);
            }
            auth.arg(password).write_packed_command(&mut packed);
            steps.push(Setup::Auth {
                user: self.user().to_string(),
            });
        }
        if self.db != 0 {
            redis::cmd("SELECT")
                .arg(self.db)
                .write_packed_command(&mut packed);
            steps.push(Setup::Select);
        }
        redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(&*self.connection_name)
            .write_packed_command(&mut packed);
        steps.push(Setup::Name);
        (packed, steps)
    }
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

/// A command sent right after connecting, whose reply is still to be read.
enum Setup {
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
    fn check(self, reply: Reply) -> Result<(), LockError> {
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

fn timed_out(timeout: Duration) -> LockError {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no reply within {timeout:?}"),
    )
    .into()
}

fn closed() -> LockError {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the server closed the connection",
    )
    .into()
}

/// Bytes read but not yet parsed.
#[derive(Default)]
struct ReadBuffer {
    bytes: Vec<u8>,
}

impl ReadBuffer {
    fn take_reply(&mut self) -> Result<Option<Reply>, LockError> {
        match parse(&self.bytes)? {
            Some((reply, used)) => {
                self.bytes.drain(..used);
                Ok(Some(reply))
            }
            None => Ok(None),
        }
    }
}

/// A blocking connection, used by sync functions and by no runtime at all.
pub(crate) struct SyncConn {
    /// The generation of the endpoint it was made for.
    pub(crate) generation: u64,
    stream: SyncStream,
    buf: ReadBuffer,
    chunk: Box<[u8]>,
    /// The handshake's commands whose replies come before the next request's.
    setup: Vec<Setup>,
    /// What the socket's timeouts are set to now, for messages.
    timeout: Duration,
}

enum SyncStream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>>),
}

/// A blocking TCP connection to the first of the host's addresses that accepts one, with
/// the endpoint's timeouts.
fn connect_tcp(
    endpoint: &Endpoint,
    host: &str,
    port: u16,
    limit: Option<Duration>,
) -> Result<std::net::TcpStream, LockError> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| endpoint.connect_error(e))?;
    let mut last_error = None;
    for addr in addrs {
        match std::net::TcpStream::connect_timeout(&addr, shorter(endpoint.connect_timeout, limit))
        {
            Ok(stream) => {
                let read_timeout = Some(endpoint.response_timeout);
                stream.set_nodelay(true)?;
                stream.set_read_timeout(read_timeout)?;
                stream.set_write_timeout(read_timeout)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last_error = Some(endpoint.connect_timed_out());
            }
            Err(e) => last_error = Some(endpoint.connect_error(e)),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        endpoint.connect_error(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the host name has no address",
        ))
    }))
}

impl SyncConn {
    /// Connects, within `limit` if that is shorter than the client's timeouts, and sends
    /// the handshake.
    pub(crate) fn connect(
        endpoint: &Endpoint,
        limit: Option<Duration>,
    ) -> Result<SyncConn, LockError> {
        let stream = endpoint.connect_outcome(SyncConn::open(endpoint, limit))?;
        let (handshake, setup) = endpoint.handshake();
        let mut conn = SyncConn {
            generation: endpoint.generation,
            stream,
            buf: ReadBuffer::default(),
            chunk: vec![0; 4096].into_boxed_slice(),
            setup,
            timeout: endpoint.response_timeout,
        };
        conn.write(&handshake)?;
        Ok(conn)
    }

    fn open(endpoint: &Endpoint, limit: Option<Duration>) -> Result<SyncStream, LockError> {
        let read_timeout = Some(endpoint.response_timeout);
        let stream = match &endpoint.addr {
            Addr::Tcp(host, port) => {
                let stream = connect_tcp(endpoint, host, *port, limit)?;
                SyncStream::Tcp(stream)
            }
            Addr::Unix(path) => {
                let stream = std::os::unix::net::UnixStream::connect(path)
                    .map_err(|e| endpoint.connect_error(e))?;
                stream.set_read_timeout(read_timeout)?;
                stream.set_write_timeout(read_timeout)?;
                SyncStream::Unix(stream)
            }
            #[cfg(feature = "tls")]
            Addr::Tls { host, port, config } => {
                let mut tcp = connect_tcp(endpoint, host, *port, limit)?;
                let tls = crate::tls::handshake_blocking(config, host, &mut tcp)
                    .map_err(|e| endpoint.connect_error(e))?;
                SyncStream::Tls(Box::new(rustls::StreamOwned::new(tls, tcp)))
            }
        };
        Ok(stream)
    }

    /// [`request`](SyncConn::request) within `limit`, when that is shorter than the
    /// `usual` timeout the socket is set to.
    pub(crate) fn request_within(
        &mut self,
        packed: &[u8],
        usual: Duration,
        limit: Option<Duration>,
    ) -> Result<Reply, LockError> {
        let timeout = shorter(usual, limit);
        if timeout == usual {
            return self.request(packed);
        }
        self.set_timeouts(timeout)?;
        let reply = self.request(packed);
        // A connection whose request failed is dropped anyway; only a good one is reused.
        if reply.is_ok() {
            self.set_timeouts(usual)?;
        }
        reply
    }

    fn set_timeouts(&mut self, timeout: Duration) -> Result<(), LockError> {
        self.timeout = timeout;
        let timeout = Some(timeout);
        match &self.stream {
            SyncStream::Tcp(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)?;
            }
            SyncStream::Unix(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)?;
            }
            #[cfg(feature = "tls")]
            SyncStream::Tls(s) => {
                s.sock.set_read_timeout(timeout)?;
                s.sock.set_write_timeout(timeout)?;
            }
        }
        Ok(())
    }

    /// Whether the server closed this idle connection (see [`closed_by_peer`]).
    pub(crate) fn is_closed(&self) -> bool {
        use std::os::fd::AsRawFd;
        match &self.stream {
            SyncStream::Tcp(s) => closed_by_peer(s.as_raw_fd(), false),
            SyncStream::Unix(s) => closed_by_peer(s.as_raw_fd(), false),
            #[cfg(feature = "tls")]
            SyncStream::Tls(s) => closed_by_peer(s.sock.as_raw_fd(), true),
        }
    }

    /// Sends one packed command and reads its reply (after those of the handshake, the
    /// first time).
    pub(crate) fn request(&mut self, packed: &[u8]) -> Result<Reply, LockError> {
        self.write(packed)?;
        for step in std::mem::take(&mut self.setup) {
            step.check(self.read_reply()?)?;
        }
        self.read_reply()
    }

    fn write(&mut self, packed: &[u8]) -> Result<(), LockError> {
        let timeout = self.timeout;
        match &mut self.stream {
            SyncStream::Tcp(s) => s.write_all(packed),
            SyncStream::Unix(s) => s.write_all(packed),
            #[cfg(feature = "tls")]
            SyncStream::Tls(s) => s.write_all(packed),
        }
        .map_err(|e| map_timeout(e, timeout))
    }

    fn read_reply(&mut self) -> Result<Reply, LockError> {
        let timeout = self.timeout;
        loop {
            if let Some(reply) = self.buf.take_reply()? {
                return Ok(reply);
            }
            let n = match &mut self.stream {
                SyncStream::Tcp(s) => s.read(&mut self.chunk),
                SyncStream::Unix(s) => s.read(&mut self.chunk),
                #[cfg(feature = "tls")]
                SyncStream::Tls(s) => s.read(&mut self.chunk),
            }
            .map_err(|e| map_timeout(e, timeout))?;
            if n == 0 {
                return Err(closed());
            }
            self.buf.bytes.extend_from_slice(&self.chunk[..n]);
        }
    }
}

/// Whether an idle connection was closed by the server (it restarted, dropped idle
/// clients, or was told to `CLIENT KILL` it), asked of the socket without waiting and
/// without reading: one `recv(MSG_PEEK | MSG_DONTWAIT)`. Bytes waiting on an idle plain
/// connection mean it is out of step with its replies, as good as closed. Over TLS, bytes
/// may be a session ticket or the server's goodbye: only an end of stream counts there.
/// Checking before a request is what lets the pool never resend one that may have run.
fn closed_by_peer(fd: std::os::fd::RawFd, tls: bool) -> bool {
    let mut byte = 0u8;
    // SAFETY: `fd` is an open socket owned by the caller for the duration of the call, and
    // the buffer is one valid byte.
    let n = unsafe {
        libc::recv(
            fd,
            (&raw mut byte).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => true,
        n if n > 0 => !tls,
        _ => {
            let error = std::io::Error::last_os_error();
            !matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            )
        }
    }
}

/// The shorter of a configured timeout and a caller's `limit`, never zero (a zero socket
/// timeout is refused by the OS).
fn shorter(timeout: Duration, limit: Option<Duration>) -> Duration {
    match limit {
        Some(limit) if limit < timeout => limit.max(Duration::from_millis(1)),
        _ => timeout,
    }
}

/// A socket timeout (the OS says `WouldBlock` or `TimedOut`) as the timeout it is.
fn map_timeout(e: std::io::Error, timeout: Duration) -> LockError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => timed_out(timeout),
        _ => e.into(),
    }
}

/// An async connection, registered with the Tokio runtime that made it.
pub(crate) struct AsyncConn {
    /// The generation of the endpoint it was made for.
    pub(crate) generation: u64,
    stream: AsyncStream,
    buf: ReadBuffer,
    chunk: Box<[u8]>,
    response_timeout: Duration,
    /// The handshake's commands whose replies come before the next request's.
    setup: Vec<Setup>,
}

enum AsyncStream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

impl AsyncConn {
    /// Connects within the connect timeout, and sends the handshake.
    pub(crate) async fn connect(endpoint: &Endpoint) -> Result<AsyncConn, LockError> {
        let stream = endpoint.connect_outcome(AsyncConn::open(endpoint).await)?;
        let (handshake, setup) = endpoint.handshake();
        let mut conn = AsyncConn {
            generation: endpoint.generation,
            stream,
            buf: ReadBuffer::default(),
            chunk: vec![0; 4096].into_boxed_slice(),
            response_timeout: endpoint.response_timeout,
            setup,
        };
        let timeout = conn.response_timeout;
        tokio::time::timeout(timeout, conn.write(&handshake))
            .await
            .map_err(|_| timed_out(timeout))??;
        Ok(conn)
    }

    async fn open(endpoint: &Endpoint) -> Result<AsyncStream, LockError> {
        let connect = async {
            Ok::<_, LockError>(match &endpoint.addr {
                Addr::Tcp(host, port) => {
                    let s = tokio::net::TcpStream::connect((host.as_str(), *port))
                        .await
                        .map_err(|e| endpoint.connect_error(e))?;
                    s.set_nodelay(true)?;
                    AsyncStream::Tcp(s)
                }
                Addr::Unix(path) => AsyncStream::Unix(
                    tokio::net::UnixStream::connect(path)
                        .await
                        .map_err(|e| endpoint.connect_error(e))?,
                ),
                #[cfg(feature = "tls")]
                Addr::Tls { host, port, config } => {
                    let s = tokio::net::TcpStream::connect((host.as_str(), *port))
                        .await
                        .map_err(|e| endpoint.connect_error(e))?;
                    s.set_nodelay(true)?;
                    let tls = crate::tls::handshake(config, host, s)
                        .await
                        .map_err(|e| endpoint.connect_error(e))?;
                    AsyncStream::Tls(Box::new(tls))
                }
            })
        };
        tokio::time::timeout(endpoint.connect_timeout, connect)
            .await
            .map_err(|_| endpoint.connect_timed_out())?
    }

    /// Whether the server closed this idle connection (see [`closed_by_peer`]).
    pub(crate) fn is_closed(&self) -> bool {
        use std::os::fd::AsRawFd;
        match &self.stream {
            AsyncStream::Tcp(s) => closed_by_peer(s.as_raw_fd(), false),
            AsyncStream::Unix(s) => closed_by_peer(s.as_raw_fd(), false),
            #[cfg(feature = "tls")]
            AsyncStream::Tls(s) => closed_by_peer(s.get_ref().0.as_raw_fd(), true),
        }
    }

    /// Sends one packed command and reads its reply (after those of the handshake, the
    /// first time), within the response timeout.
    pub(crate) async fn request(&mut self, packed: &[u8]) -> Result<Reply, LockError> {
        let timeout = self.response_timeout;
        tokio::time::timeout(timeout, self.exchange(packed))
            .await
            .map_err(|_| timed_out(timeout))?
    }

    async fn exchange(&mut self, packed: &[u8]) -> Result<Reply, LockError> {
        self.write(packed).await?;
        self.finish_setup().await?;
        self.read_reply().await
    }

    /// Reads and checks the handshake's replies, if not done yet.
    async fn finish_setup(&mut self) -> Result<(), LockError> {
        for step in std::mem::take(&mut self.setup) {
            step.check(self.read_reply().await?)?;
        }
        Ok(())
    }

    /// This connection as a `redis` crate pub/sub connection, once its handshake is done:
    /// the crate's subscription protocol on our transport, which is named, authenticated,
    /// and made with the client's TLS settings and timeouts like every other.
    pub(crate) async fn into_pubsub(mut self) -> Result<redis::aio::PubSub, LockError> {
        let timeout = self.response_timeout;
        tokio::time::timeout(timeout, self.finish_setup())
            .await
            .map_err(|_| timed_out(timeout))??;
        // Nothing but the handshake's replies was sent to us: nothing is left unread.
        debug_assert!(self.buf.bytes.is_empty());
        // The handshake is done: the `redis` crate has nothing left to send first.
        let done = redis::RedisConnectionInfo::default().set_skip_set_lib_name();
        let pubsub = match self.stream {
            AsyncStream::Tcp(s) => redis::aio::PubSub::new(&done, s).await,
            AsyncStream::Unix(s) => redis::aio::PubSub::new(&done, s).await,
            #[cfg(feature = "tls")]
            AsyncStream::Tls(s) => redis::aio::PubSub::new(&done, s).await,
        };
        Ok(pubsub?)
    }

    async fn write(&mut self, packed: &[u8]) -> Result<(), LockError> {
        match &mut self.stream {
            AsyncStream::Tcp(s) => s.write_all(packed).await?,
            AsyncStream::Unix(s) => s.write_all(packed).await?,
            #[cfg(feature = "tls")]
            AsyncStream::Tls(s) => s.write_all(packed).await?,
        }
        Ok(())
    }

    async fn read_reply(&mut self) -> Result<Reply, LockError> {
        loop {
            if let Some(reply) = self.buf.take_reply()? {
                return Ok(reply);
            }
            let n = match &mut self.stream {
                AsyncStream::Tcp(s) => s.read(&mut self.chunk).await?,
                AsyncStream::Unix(s) => s.read(&mut self.chunk).await?,
                #[cfg(feature = "tls")]
                AsyncStream::Tls(s) => s.read(&mut self.chunk).await?,
            };
            if n == 0 {
                return Err(closed());
            }
            self.buf.bytes.extend_from_slice(&self.chunk[..n]);
        }
    }
}
