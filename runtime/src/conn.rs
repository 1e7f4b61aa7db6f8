//! Direct connections to one Redis server, blocking and async.
//!
//! The caller's own thread or task writes the request and reads the reply: there is no
//! driver task or channel hop in between, which is what keeps a locked call close to the
//! two-round-trip limit. Async connections are registered with the Tokio runtime that made
//! them, so they are only ever reused on that runtime (see `pool.rs`).

use std::io::{Read, Write};
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::LockError;
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
    pub(crate) fn new(
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
                return Err(tls_not_enabled(&format!("rediss://{host}:{port}")));
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

    fn connect_error(&self, reason: impl std::fmt::Display) -> LockError {
        LockError::Connect {
            address: self.address(),
            reason: reason.to_string(),
        }
    }

    fn connect_timed_out(&self) -> LockError {
        self.connect_error(format!(
            "not connected within the connect timeout of {:?}",
            self.connect_timeout
        ))
    }

    /// Commands to send right after connecting: AUTH and SELECT, as the URL asks.
    fn handshake(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if let Some(password) = &self.password {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = &self.username {
                auth.arg(user);
            }
            out.push(auth.arg(password).get_packed_command());
        }
        if self.db != 0 {
            out.push(redis::cmd("SELECT").arg(self.db).get_packed_command());
        }
        out
    }

    /// Checks a reply to a handshake command: a refused AUTH names the user.
    fn check_handshake(&self, reply: Reply) -> Result<(), LockError> {
        match reply {
            Reply::Error(message) => Err(match auth_failure(&message) {
                Some(reason) => LockError::Auth {
                    user: self.user().to_string(),
                    reason,
                },
                None => server_error(message),
            }),
            _ => Ok(()),
        }
    }
}

/// The error for a `rediss://` URL when the crate was built without TLS.
#[cfg(not(feature = "tls"))]
pub(crate) fn tls_not_enabled(url: &str) -> LockError {
    LockError::invalid(format!(
        "`{url}` asks for TLS, but redis-locked was built without its `tls` feature: \
         enable it (`redis-locked = {{ version = \"...\", features = [\"tls\"] }}`)"
    ))
}

fn timed_out(what: &str) -> LockError {
    std::io::Error::new(std::io::ErrorKind::TimedOut, what.to_string()).into()
}

fn closed() -> LockError {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "redis closed the connection",
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
    Err(last_error.unwrap_or_else(|| endpoint.connect_error("the host name has no address")))
}

impl SyncConn {
    /// Connects, within `limit` if that is shorter than the client's timeouts.
    pub(crate) fn connect(
        endpoint: &Endpoint,
        limit: Option<Duration>,
    ) -> Result<SyncConn, LockError> {
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
        let mut conn = SyncConn {
            generation: endpoint.generation,
            stream,
            buf: ReadBuffer::default(),
            chunk: vec![0; 4096].into_boxed_slice(),
        };
        for packed in endpoint.handshake() {
            endpoint.check_handshake(conn.request_within(
                &packed,
                endpoint.response_timeout,
                limit,
            )?)?;
        }
        Ok(conn)
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

    fn set_timeouts(&self, timeout: Duration) -> Result<(), LockError> {
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

    /// Sends one packed command and reads its reply.
    pub(crate) fn request(&mut self, packed: &[u8]) -> Result<Reply, LockError> {
        let write = match &mut self.stream {
            SyncStream::Tcp(s) => s.write_all(packed),
            SyncStream::Unix(s) => s.write_all(packed),
            #[cfg(feature = "tls")]
            SyncStream::Tls(s) => s.write_all(packed),
        };
        write.map_err(map_timeout)?;
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
            .map_err(map_timeout)?;
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

fn map_timeout(e: std::io::Error) -> LockError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            timed_out("redis did not answer within the response timeout")
        }
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
}

enum AsyncStream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

impl AsyncConn {
    pub(crate) async fn connect(endpoint: &Endpoint) -> Result<AsyncConn, LockError> {
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
        let stream = tokio::time::timeout(endpoint.connect_timeout, connect)
            .await
            .map_err(|_| endpoint.connect_timed_out())??;
        let mut conn = AsyncConn {
            generation: endpoint.generation,
            stream,
            buf: ReadBuffer::default(),
            chunk: vec![0; 4096].into_boxed_slice(),
            response_timeout: endpoint.response_timeout,
        };
        for packed in endpoint.handshake() {
            endpoint.check_handshake(conn.request(&packed).await?)?;
        }
        Ok(conn)
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

    /// Sends one packed command and reads its reply, within the response timeout.
    pub(crate) async fn request(&mut self, packed: &[u8]) -> Result<Reply, LockError> {
        let timeout = self.response_timeout;
        tokio::time::timeout(timeout, self.exchange(packed))
            .await
            .map_err(|_| timed_out("redis did not answer within the response timeout"))?
    }

    async fn exchange(&mut self, packed: &[u8]) -> Result<Reply, LockError> {
        match &mut self.stream {
            AsyncStream::Tcp(s) => s.write_all(packed).await?,
            AsyncStream::Unix(s) => s.write_all(packed).await?,
            #[cfg(feature = "tls")]
            AsyncStream::Tls(s) => s.write_all(packed).await?,
        }
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
