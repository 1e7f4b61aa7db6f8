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
use crate::resp::{Reply, parse};

/// Where and how to connect, read once from the client's URL.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    addr: Addr,
    username: Option<String>,
    password: Option<String>,
    db: i64,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
}

#[derive(Debug, Clone)]
enum Addr {
    Tcp(String, u16),
    Unix(PathBuf),
}

impl Endpoint {
    pub(crate) fn new(
        info: &redis::ConnectionInfo,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Endpoint, LockError> {
        let addr = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => Addr::Tcp(host.clone(), *port),
            redis::ConnectionAddr::Unix(path) => Addr::Unix(path.clone()),
            other => {
                return Err(LockError::invalid(format!(
                    "unsupported Redis address {other}: use redis:// or unix://"
                )));
            }
        };
        let settings = info.redis_settings();
        Ok(Endpoint {
            addr,
            username: settings.username().map(str::to_owned),
            password: settings.password().map(str::to_owned),
            db: settings.db(),
            connect_timeout,
            response_timeout,
        })
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
    stream: SyncStream,
    buf: ReadBuffer,
    chunk: Box<[u8]>,
}

enum SyncStream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl SyncConn {
    /// Connects, within `limit` if that is shorter than the client's timeouts.
    pub(crate) fn connect(endpoint: &Endpoint, limit: Option<Duration>) -> Result<SyncConn, LockError> {
        let read_timeout = Some(endpoint.response_timeout);
        let stream = match &endpoint.addr {
            Addr::Tcp(host, port) => {
                let mut last_error = None;
                let mut connected = None;
                for addr in (host.as_str(), *port).to_socket_addrs()? {
                    let timeout = shorter(endpoint.connect_timeout, limit);
                    match std::net::TcpStream::connect_timeout(&addr, timeout) {
                        Ok(s) => {
                            connected = Some(s);
                            break;
                        }
                        Err(e) => last_error = Some(e),
                    }
                }
                let stream = match connected {
                    Some(s) => s,
                    None => {
                        return Err(last_error
                            .unwrap_or_else(|| std::io::Error::other("host has no address"))
                            .into());
                    }
                };
                stream.set_nodelay(true)?;
                stream.set_read_timeout(read_timeout)?;
                stream.set_write_timeout(read_timeout)?;
                SyncStream::Tcp(stream)
            }
            Addr::Unix(path) => {
                let stream = std::os::unix::net::UnixStream::connect(path)?;
                stream.set_read_timeout(read_timeout)?;
                stream.set_write_timeout(read_timeout)?;
                SyncStream::Unix(stream)
            }
        };
        let mut conn = SyncConn {
            stream,
            buf: ReadBuffer::default(),
            chunk: vec![0; 4096].into_boxed_slice(),
        };
        for packed in endpoint.handshake() {
            conn.request_within(&packed, endpoint.response_timeout, limit)?
                .into_result()?;
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
        }
        Ok(())
    }

    /// Sends one packed command and reads its reply.
    pub(crate) fn request(&mut self, packed: &[u8]) -> Result<Reply, LockError> {
        let write = match &mut self.stream {
            SyncStream::Tcp(s) => s.write_all(packed),
            SyncStream::Unix(s) => s.write_all(packed),
        };
        write.map_err(map_timeout)?;
        loop {
            if let Some(reply) = self.buf.take_reply()? {
                return Ok(reply);
            }
            let n = match &mut self.stream {
                SyncStream::Tcp(s) => s.read(&mut self.chunk),
                SyncStream::Unix(s) => s.read(&mut self.chunk),
            }
            .map_err(map_timeout)?;
            if n == 0 {
                return Err(closed());
            }
            self.buf.bytes.extend_from_slice(&self.chunk[..n]);
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
    stream: AsyncStream,
    buf: ReadBuffer,
    chunk: Box<[u8]>,
    response_timeout: Duration,
}

enum AsyncStream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl AsyncConn {
    pub(crate) async fn connect(endpoint: &Endpoint) -> Result<AsyncConn, LockError> {
        let connect = async {
            Ok::<_, std::io::Error>(match &endpoint.addr {
                Addr::Tcp(host, port) => {
                    let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                    s.set_nodelay(true)?;
                    AsyncStream::Tcp(s)
                }
                Addr::Unix(path) => AsyncStream::Unix(tokio::net::UnixStream::connect(path).await?),
            })
        };
        let stream = tokio::time::timeout(endpoint.connect_timeout, connect)
            .await
            .map_err(|_| timed_out("could not connect to redis within the connect timeout"))??;
        let mut conn = AsyncConn {
            stream,
            buf: ReadBuffer::default(),
            chunk: vec![0; 4096].into_boxed_slice(),
            response_timeout: endpoint.response_timeout,
        };
        for packed in endpoint.handshake() {
            conn.request(&packed).await?.into_result()?;
        }
        Ok(conn)
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
        }
        loop {
            if let Some(reply) = self.buf.take_reply()? {
                return Ok(reply);
            }
            let n = match &mut self.stream {
                AsyncStream::Tcp(s) => s.read(&mut self.chunk).await?,
                AsyncStream::Unix(s) => s.read(&mut self.chunk).await?,
            };
            if n == 0 {
                return Err(closed());
            }
            self.buf.bytes.extend_from_slice(&self.chunk[..n]);
        }
    }
}
