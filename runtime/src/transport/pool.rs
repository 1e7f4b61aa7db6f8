//! Reusable connections: one pool of blocking connections per server, with at most
//! `max_connections` open at once (here), and one shared async connection per server and
//! Tokio runtime (`multiplexed.rs`).
//!
//! A blocking connection is taken out for exactly one request and put back only when that
//! request completed; a request that failed or timed out drops its connection, so a reply
//! can never be read by the wrong caller. Callers beyond the cap wait for a connection to
//! come back: locking thousands of distinct names at once from threads then costs a handful
//! of connections, not thousands (Redis caps clients at 10,000).
//!
//! A blocking connection may also carry a request written now and read later, so that one
//! thread can ask several servers at once (`pipelined.rs`).
//!
//! Either way, a request that found its connection lost is sent again on a fresh one only
//! if it is `resend_safe` (see `conn.rs` for the check that keeps the others from finding
//! out).

pub(crate) mod pipelined;
mod slots;

use std::time::{Duration, Instant};

use crate::transport::conn::SyncConn;
use crate::transport::endpoint::Endpoint;
use crate::transport::reply::Reply;
use crate::util::error::LockError;
use slots::{CheckedOut, Place, Slots};

pub(crate) struct SyncPool {
    /// Boxed: a checked-out connection is moved at every step of a request (out of its
    /// slot, into a pipelined request's state, back), and a `SyncConn` inline made those
    /// moves a tenth of a sync Redlock call's instructions.
    slots: Slots<Box<SyncConn>>,
}

impl SyncPool {
    pub(crate) fn new(max: usize) -> SyncPool {
        SyncPool {
            slots: Slots::new(max),
        }
    }

    /// Runs one request, giving up at `until` (waiting for a connection included). It is
    /// sent again on a fresh connection when a reused one turns out closed only if
    /// `resend_safe`: the server may have run it before the connection went.
    pub(crate) fn request(
        &self,
        endpoint: &Endpoint,
        cmd: &redis::Cmd,
        until: Option<Instant>,
        resend_safe: bool,
    ) -> Result<Reply, LockError> {
        match self.request_once(endpoint, cmd, true, until, resend_safe) {
            Err(Failure::StaleIdle(_)) if resend_safe => {
                // The others, from before the same restart or idle timeout, are suspect too.
                self.slots.close_idle();
                self.request_once(endpoint, cmd, false, until, resend_safe)
                    .map_err(Failure::into_error)
            }
            other => other.map_err(Failure::into_error),
        }
    }

    fn request_once(
        &self,
        endpoint: &Endpoint,
        cmd: &redis::Cmd,
        reuse: bool,
        until: Option<Instant>,
        resend_safe: bool,
    ) -> Result<Reply, Failure> {
        let (mut conn, mut reused) = self
            .checkout(endpoint, reuse, until)
            .map_err(Failure::Other)?;
        if reused && !resend_safe && conn.needs_check() {
            let limit = remaining(until).map_err(Failure::Other)?;
            if conn
                .request(
                    endpoint,
                    &crate::transport::conn::check_command(endpoint),
                    limit,
                )
                .is_err()
            {
                // Lost while unused: nothing that matters was sent on it.
                drop(conn);
                self.slots.close_idle();
                (conn, reused) = self
                    .checkout(endpoint, false, until)
                    .map_err(Failure::Other)?;
            }
        }
        let limit = match remaining(until) {
            Ok(limit) => limit,
            Err(e) => {
                // The deadline passed while it was checked out: nothing was sent on it, so
                // it goes back as it is (dropped, it would be closed).
                conn.give_back();
                return Err(Failure::Other(e));
            }
        };
        match conn.request(endpoint, cmd, limit) {
            Ok(reply) => {
                conn.give_back();
                Ok(reply)
            }
            // It may be out of step with its replies: dropped, it is closed, never reused.
            Err(e) => Err(Failure::classify(e, reused)),
        }
    }

    /// An idle connection (when `reuse`), a new one while under the cap, or else the next
    /// place freed. Says whether it was reused.
    fn checkout(
        &self,
        endpoint: &Endpoint,
        reuse: bool,
        until: Option<Instant>,
    ) -> Result<(CheckedOut<'_, Box<SyncConn>>, bool), LockError> {
        // Made for a master that has since moved, or found broken: closed.
        let usable = |conn: &SyncConn| conn.is_usable(endpoint);
        match self
            .slots
            .checkout(reuse, |conn| usable(conn), || remaining(until))?
        {
            Place::Reused(conn) => Ok((conn, true)),
            Place::New(place) => {
                // On an error the place is dropped, and so freed for the next caller.
                let conn = remaining(until).and_then(|limit| SyncConn::connect(endpoint, limit))?;
                Ok((place.opened(Box::new(conn)), false))
            }
        }
    }
}

/// How long until `until`; an error once it has passed.
fn remaining(until: Option<Instant>) -> Result<Option<Duration>, LockError> {
    match until {
        None => Ok(None),
        Some(until) => match until.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(Some(left)),
            _ => Err(crate::util::error::deadline_passed()),
        },
    }
}

/// Why a request on a pooled connection failed.
enum Failure {
    /// A reused connection turned out closed by the server: it restarted, or dropped the
    /// idle connection, and the request most likely never reached a live server. But the
    /// server may also have run it and closed the connection before the reply came, so only
    /// a request that is safe to run twice is sent once more on a fresh connection. A
    /// timeout is not this: a slow server may still run it.
    StaleIdle(LockError),
    Other(LockError),
}

impl Failure {
    fn classify(error: LockError, reused: bool) -> Failure {
        if reused && closed(&error) {
            Failure::StaleIdle(error)
        } else {
            Failure::Other(error)
        }
    }

    fn into_error(self) -> LockError {
        match self {
            Failure::StaleIdle(e) | Failure::Other(e) => e,
        }
    }
}

/// Whether a request's error says the other end closed or reset the connection (not a
/// timeout: a slow server may still run the request).
pub(crate) fn closed(error: &LockError) -> bool {
    use std::io::ErrorKind::*;
    matches!(error, LockError::Io { source, .. } if matches!(
        source.kind(),
        BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof | NotConnected
    ))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    use super::SyncPool;
    use crate::transport::endpoint::Endpoint;

    /// The endpoint of a test server, with 1 s timeouts.
    fn endpoint(url: &str) -> Endpoint {
        let info = redis::IntoConnectionInfo::into_connection_info(url).unwrap();
        let second = Duration::from_secs(1);
        Endpoint::new("test", &info, &Default::default(), second, second).unwrap()
    }

    /// How many commands `bytes` holds, and how many of them are `CLIENT SETNAME` (every
    /// command is a RESP array: a line that starts with `*`).
    fn commands(bytes: &[u8]) -> (usize, usize) {
        let text = String::from_utf8_lossy(bytes);
        let all = text
            .split("\r\n")
            .filter(|line| line.starts_with('*'))
            .count();
        (all, text.matches("SETNAME").count())
    }

    /// A server that answers `+OK` to every command it is sent, on a free loopback port.
    fn answering_server() -> String {
        slow_server(Duration::ZERO)
    }

    /// Item 6 of the partial-failures review: a request whose deadline passed after it got
    /// its connection gives the connection back; the pool keeps its size.
    #[test]
    fn a_deadline_that_passed_does_not_cost_a_connection() {
        let url = answering_server();
        let endpoint = endpoint(&url);
        let pool = std::sync::Arc::new(SyncPool::new(1));
        let ping = redis::cmd("PING");
        pool.request(&endpoint, &ping, None, true).unwrap();
        for _ in 0..3 {
            let past = Instant::now().checked_sub(Duration::from_millis(1));
            assert!(pool.request(&endpoint, &ping, past, true).is_err());
        }
        // With the one connection lost, this would wait forever.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn({
            let pool = pool.clone();
            move || done.send(pool.request(&endpoint, &ping, None, true).is_ok())
        });
        assert_eq!(
            finished.recv_timeout(Duration::from_secs(5)),
            Ok(true),
            "the pool still has its connection"
        );
    }

    /// A server that answers the first request on each connection and closes the
    /// connection on the second without answering, as a server that ran a command and
    /// then went away would look. The connection's name (`CLIENT SETNAME`, sent with the
    /// first request, in the same write or not) is answered and not counted. Counts the
    /// requests it received.
    fn forgetful_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::Ordering;
        let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let counter = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let mut requests = 0;
                    while requests < 2 {
                        let n = match stream.read(&mut buf) {
                            Ok(n) if n > 0 => n,
                            _ => return,
                        };
                        let (all, setname) = commands(&buf[..n]);
                        requests += all - setname;
                        counter.fetch_add(all - setname, Ordering::SeqCst);
                        // Names, and the first request: answered. The second: not.
                        let answered = if requests < 2 { all } else { setname };
                        if stream.write_all(&b"+OK\r\n".repeat(answered)).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (format!("redis://127.0.0.1:{port}"), received)
    }

    /// Item 12 of the partial-failures review: a request that is not safe to run twice is
    /// never sent again when its connection closes before the reply; one that is, is.
    #[test]
    fn only_requests_safe_to_repeat_are_resent() {
        use std::sync::atomic::Ordering;
        let (url, received) = forgetful_server();
        let endpoint = endpoint(&url);
        let pool = SyncPool::new(1);
        let release = redis::cmd("EVALSHA").arg("release").take();
        pool.request(&endpoint, &release, None, false).unwrap();
        assert_eq!(received.load(Ordering::SeqCst), 1);
        assert!(pool.request(&endpoint, &release, None, false).is_err());
        assert_eq!(received.load(Ordering::SeqCst), 2, "sent once, not again");

        let pool = SyncPool::new(1);
        pool.request(&endpoint, &release, None, true).unwrap();
        let resent = pool.request(&endpoint, &release, None, true);
        assert!(resent.is_ok(), "{resent:?}");
        assert_eq!(
            received.load(Ordering::SeqCst),
            5,
            "sent again on a fresh connection"
        );
    }

    /// A server that answers `+OK` to every command, `delay` after it came, on a free
    /// loopback port.
    fn slow_server(delay: Duration) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf) {
                        if !delay.is_zero() {
                            std::thread::sleep(delay);
                        }
                        let replies = b"+OK\r\n".repeat(commands(&buf[..n]).0);
                        if n == 0 || stream.write_all(&replies).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        format!("redis://127.0.0.1:{port}")
    }

    /// Issue 13 item 2: requests to several servers written from one thread before any
    /// reply is read overlap their round trips (two servers that each take 300 ms answer
    /// both within one), and only an idle connection is used (none: nothing is sent).
    #[test]
    fn pipelined_requests_to_several_servers_overlap_from_one_thread() {
        use super::pipelined::Progress;
        let delay = Duration::from_millis(300);
        let endpoints = [endpoint(&slow_server(delay)), endpoint(&slow_server(delay))];
        let pools = [SyncPool::new(1), SyncPool::new(1)];
        let ping = redis::cmd("PING");
        let until = Some(Instant::now() + Duration::from_secs(5));
        assert!(pools[0].start(&endpoints[0], &ping, until, true).is_none());
        for (pool, endpoint) in pools.iter().zip(&endpoints) {
            pool.request(endpoint, &ping, None, true).unwrap();
        }
        let start = Instant::now();
        let sent: Vec<_> = pools
            .iter()
            .zip(&endpoints)
            .map(
                |(pool, endpoint)| match pool.start(endpoint, &ping, until, true) {
                    Some(Progress::Sent(outstanding)) => outstanding,
                    _ => panic!("written on the idle connection"),
                },
            )
            .collect();
        for outstanding in sent {
            assert!(matches!(outstanding.advance(), Progress::Done(Ok(_))));
        }
        let took = start.elapsed();
        assert!(took < delay * 3 / 2, "{took:?}");
        // Given back: the next request reuses them.
        assert!(pools[1].start(&endpoints[1], &ping, until, true).is_some());
    }
}
