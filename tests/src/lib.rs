//! Test support: throwaway redis-server processes on free loopback ports.
//!
//! Every test starts the servers it needs and stops them when done (on drop, also when the
//! test panics), so no test depends on a server someone else started. Beyond single
//! servers: a Redis Cluster ([`RedisCluster`]), a master and replica watched by Sentinels
//! ([`SentinelSetup`]), and independent servers for Redlock ([`RedlockServers`]).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod cluster;
pub mod core_checks;
mod redlock;
mod sentinel;

pub use cluster::{RedisCluster, key_slot};
pub use redlock::RedlockServers;
pub use sentinel::SentinelSetup;

/// The file in a server's directory its log goes to.
const LOG: &str = "redis.log";

/// The log line with which redis-server says it accepts clients.
const READY: &str = "Ready to accept connections";

/// One redis-server process, stopped and cleaned up when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// Extra command-line arguments, kept for restarts.
    args: Vec<String>,
    /// A config file given as the first argument (sentinels need one), kept for restarts.
    config: Option<PathBuf>,
    /// The log line that says the process accepts clients.
    ready: &'static str,
}

/// How to launch one process in the directory and on the port the harness picked, for
/// processes whose arguments or config file name them (cluster nodes, sentinels).
pub(crate) struct Launch {
    /// Written to `redis.conf` in the server's directory and passed as the first argument.
    pub config: Option<String>,
    /// Extra command-line arguments, as for [`RedisServer::start_with`].
    pub args: Vec<String>,
    /// The log line that says the process accepts clients.
    pub ready: &'static str,
}

impl RedisServer {
    /// Starts a redis-server on a free loopback port and returns once it accepts clients.
    ///
    /// Panics (this is test support) when no redis-server can be started; the README's test
    /// command installs one.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// [`start`](RedisServer::start) with extra redis-server arguments, like
    /// `["--appendonly", "yes"]`; they apply to restarts too.
    pub fn start_with(args: &[&str]) -> RedisServer {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        RedisServer::launch(&|_, _| Launch {
            config: None,
            args: args.clone(),
            ready: READY,
        })
    }

    /// Starts a process as `make` says, given the directory and port picked for it.
    pub(crate) fn launch(make: &dyn Fn(&Path, u16) -> Launch) -> RedisServer {
        let mut last_output = String::new();
        for _ in 0..20 {
            match RedisServer::try_start(make) {
                Ok(server) => return server,
                Err(output) => last_output = output,
            }
        }
        panic!("could not start redis-server: {last_output}");
    }

    /// [`start`](RedisServer::start) plus TLS on a second free port, with the given PEM
    /// files (certificate, its key, the CA that signed it), not asking clients for
    /// certificates. The plain port stays open for [`connection`](RedisServer::connection).
    /// Returns the server and its TLS port.
    pub fn start_tls(cert: &Path, key: &Path, ca: &Path) -> (RedisServer, u16) {
        RedisServer::start_tls_asking(cert, key, ca, false)
    }

    /// [`start_tls`](RedisServer::start_tls), also asking clients for a certificate signed
    /// by `ca` when `client_certificates` (mutual TLS).
    pub fn start_tls_asking(
        cert: &Path,
        key: &Path,
        ca: &Path,
        client_certificates: bool,
    ) -> (RedisServer, u16) {
        let tls_port = free_port();
        let server = RedisServer::start_with(&[
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &cert.display().to_string(),
            "--tls-key-file",
            &key.display().to_string(),
            "--tls-ca-cert-file",
            &ca.display().to_string(),
            "--tls-auth-clients",
            if client_certificates { "yes" } else { "no" },
        ]);
        (server, tls_port)
    }

    fn try_start(make: &dyn Fn(&Path, u16) -> Launch) -> Result<RedisServer, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "redis-lock-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let port = free_port();
        let launch = make(&dir, port);
        let config = match launch.config {
            Some(text) => {
                let path = dir.join("redis.conf");
                std::fs::write(&path, text).map_err(|e| e.to_string())?;
                Some(path)
            }
            None => None,
        };
        match RedisServer::spawn(port, &dir, config.as_deref(), &launch.args, launch.ready) {
            Ok(child) => Ok(RedisServer {
                child: Some(child),
                port,
                dir,
                args: launch.args,
                config,
                ready: launch.ready,
            }),
            Err(output) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(output)
            }
        }
    }

    /// Stops the server (SIGKILL) and starts a fresh one on the same port, as a crash and
    /// restart of Redis would; every connection to the old one is then dead.
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    /// Starts the server again on its port after [`kill`](RedisServer::kill), with the same
    /// arguments and directory (so with `--appendonly yes` it reloads its data).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        let child = RedisServer::spawn(
            self.port,
            &self.dir,
            self.config.as_deref(),
            &self.args,
            self.ready,
        )
        .unwrap_or_else(|output| panic!("could not restart redis-server: {output}"));
        self.child = Some(child);
    }

    /// Starts redis-server and returns once it accepts clients.
    fn spawn(
        port: u16,
        dir: &Path,
        config: Option<&Path>,
        args: &[String],
        ready: &str,
    ) -> Result<Child, String> {
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let mut command = Command::new(&binary);
        // A config file has to come first.
        command.args(config);
        let mut child = command
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .args(["--loglevel", "notice"])
            // Later arguments win, so these can override the defaults above.
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{binary}: {e}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut output = String::new();
        let mut lines = BufReader::new(stdout).lines();
        // The server's own log line is the readiness event: no polling, no sleeping.
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            output.push_str(&line);
            output.push('\n');
            if line.contains(ready) {
                // The rest of the log goes to `redis.log` in its directory, for diagnosis.
                let log = dir.join(LOG);
                std::thread::spawn(move || {
                    use std::io::Write;
                    let file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(log);
                    let Ok(mut file) = file else { return };
                    let _ = file.write_all(output.as_bytes());
                    for line in lines {
                        let Ok(line) = line else { break };
                        let _ = writeln!(file, "{line}");
                    }
                });
                return Ok(child);
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(output)
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A plain connection of the `redis` crate, to look at keys behind the lock's back.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to the test redis-server")
    }

    /// The server's working directory (its AOF and RDB files live there).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered, as when
    /// the host stalls or the network drops packets.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a server frozen by [`pause`](RedisServer::pause) (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the server is running");
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// How many connections to the server hold bytes it has not read yet (requests sent
    /// to a [`pause`](RedisServer::pause)d server), from the kernel's socket table.
    pub fn connections_with_unread_requests(&self) -> usize {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let local = format!("0100007F:{:04X}", self.port);
        table
            .lines()
            .skip(1)
            .filter(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // local address, state 01 (established), then tx_queue:rx_queue in hex.
                fields.get(1) == Some(&local.as_str())
                    && fields.get(3) == Some(&"01")
                    && fields
                        .get(4)
                        .and_then(|queues| queues.split_once(':'))
                        .is_some_and(|(_, unread)| u64::from_str_radix(unread, 16) != Ok(0))
            })
            .count()
    }

    /// Returns once at least `count` connections to the paused server hold unread requests.
    pub fn wait_for_unread_requests(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.connections_with_unread_requests() < count {
            assert!(Instant::now() < deadline, "no request reached the server");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Queues, on the paused server, `CLIENT KILL` of every client connection but its own,
    /// behind the requests already waiting there. On resume the server reads the earlier
    /// requests, runs them, and then, in the same turn of its event loop, before it writes
    /// any reply, closes their connections: each of those requests ran, and its reply is
    /// lost. `killer` is a connection to this server made before it was paused. The
    /// returned thread ends once the kill has run.
    pub fn kill_connections_after_queued_requests(
        &self,
        mut killer: redis::Connection,
    ) -> std::thread::JoinHandle<()> {
        let queued = self.connections_with_unread_requests();
        let kill = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("LADDR")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("SKIPME")
            .arg("yes")
            .get_packed_command();
        killer.send_packed_command(&kill).unwrap();
        self.wait_for_unread_requests(queued + 1);
        std::thread::spawn(move || {
            let _: redis::Value = killer.recv_response().unwrap();
        })
    }

    /// What the server logged so far (of all its runs in this directory).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(LOG)).unwrap_or_default()
    }

    /// Whether the server runs (it was not [`kill`](RedisServer::kill)ed, or was started
    /// again since).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Stops the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

/// `CLIENT LIST`'s lines for the connections that client `client` of this process opened
/// (they are named `redis-locked:<client>:<pid>`).
pub fn connections_of(admin: &mut redis::Connection, client: &str) -> Vec<String> {
    let name = format!("name=redis-locked:{client}:{} ", std::process::id());
    let list: String = redis::cmd("CLIENT").arg("LIST").query(admin).unwrap();
    list.lines()
        .filter(|line| line.contains(&name))
        .map(String::from)
        .collect()
}

/// The id in a `CLIENT LIST` line.
pub fn connection_id(line: &str) -> String {
    line.split(' ')
        .find_map(|field| field.strip_prefix("id="))
        .unwrap_or_default()
        .to_string()
}

/// Reads an integer counter key (0 when missing).
pub fn read_counter(conn: &mut redis::Connection, key: &str) -> i64 {
    let value: Option<i64> = redis::cmd("GET").arg(key).query(conn).expect("GET");
    value.unwrap_or(0)
}

/// Whether `lock` is free within `within` (freed in the background, say), polled.
pub async fn freed_within(lock: &redis_locked::Lock, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !lock.is_locked().await.unwrap() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Once more at the deadline: a sleep that overslept it must not make a free lock fail.
    !lock.is_locked().await.unwrap()
}

/// `lock.acquire_blocking(Some(timeout))` on a blocking thread, from async code, when it
/// must fail: its error, and how long it took.
pub async fn blocking_acquisition_error(
    lock: &redis_locked::Lock,
    timeout: Duration,
) -> (redis_locked::LockError, Duration) {
    let lock = lock.clone();
    tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let e = lock.acquire_blocking(Some(timeout)).unwrap_err();
        (e, start.elapsed())
    })
    .await
    .unwrap()
}

/// Waits until `count` connections subscribe to `channel`: the sign that that many
/// processes are waiting for the lock whose key is `channel`.
pub async fn wait_for_subscribers(server: &RedisServer, channel: &str, count: i64) {
    wait_for_subscriber_count(server, channel, |n| n >= count).await;
}

/// Waits until exactly `count` connections subscribe to `channel` (after a process died:
/// until the server has closed its connections).
pub async fn wait_for_exactly_subscribers(server: &RedisServer, channel: &str, count: i64) {
    wait_for_subscriber_count(server, channel, |n| n == count).await;
}

async fn wait_for_subscriber_count(
    server: &RedisServer,
    channel: &str,
    done: impl Fn(i64) -> bool,
) {
    let mut conn = server.connection();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, n): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query(&mut conn)
            .expect("PUBSUB NUMSUB");
        if done(n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{n} subscribers of {channel}, still waiting"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Voluntary context switches so far of the crate's background thread (`redis-locked`):
/// how often something woke it.
pub fn background_thread_wakeups() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != "redis-locked" {
            continue;
        }
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        total += status
            .lines()
            .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

/// Calls of each command the server ran since its statistics were reset, by name.
pub fn command_calls(server: &RedisServer) -> std::collections::HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut server.connection())
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

/// Resets the server's statistics (`CONFIG RESETSTAT`), commands' calls among them.
pub fn reset_stats(server: &RedisServer) {
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut server.connection())
        .unwrap();
}

/// How many scripts the server ran since it started or its statistics were reset (`EVALSHA`
/// and `EVAL`), without the `EVALSHA`s refused with `NOSCRIPT` (each followed by an `EVAL`).
pub fn scripts_run(server: &RedisServer) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut server.connection())
        .unwrap();
    let field = |line: &str, name: &str| -> u64 {
        line.split(&format!("{name}="))
            .nth(1)
            .and_then(|rest| rest.split(',').next()?.parse().ok())
            .unwrap_or(0)
    };
    info.lines()
        .filter(|line| line.starts_with("cmdstat_evalsha:") || line.starts_with("cmdstat_eval:"))
        .map(|line| field(line, "calls") - field(line, "failed_calls"))
        .sum()
}

/// Waits until `server` has run no script for `quiet`: a waiter seen queued may still look
/// once more when the subscription of its inbox is confirmed (a grant sent before that
/// would be missed), and on a loaded machine that confirmation can come after it is seen
/// queued. Nothing the server shows marks that look as done, so its absence is waited for.
pub async fn until_no_script_for(server: &RedisServer, quiet: Duration) {
    let give_up = Instant::now() + Duration::from_secs(10);
    let (mut seen, mut since) = (scripts_run(server), Instant::now());
    while since.elapsed() < quiet {
        assert!(Instant::now() < give_up, "scripts kept running");
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = scripts_run(server);
        if now != seen {
            (seen, since) = (now, Instant::now());
        }
    }
}

/// Waits until the one waiter of the lock at `key` on `server` has settled: subscribed to
/// its release announcements, queued in Redis by its last look (made once its subscription
/// is confirmed), and that look's reply read while the server stayed quiet for 100 ms. A
/// release then meets the waiter itself (a handover), not its look, which would make the
/// release free the lock or hand it to the queued entry instead.
pub async fn until_waiter_settled(server: &RedisServer, key: &str) {
    wait_for_subscribers(server, key, 1).await;
    wait_for_queue(server, &format!("{key}:queue"), 1).await;
    until_no_script_for(server, Duration::from_millis(100)).await;
}

/// Waits until the list `queue` (a lock's queue of waiting processes, `lock:{NAME}:queue`)
/// holds exactly `len` entries.
pub async fn wait_for_queue(server: &RedisServer, queue: &str, len: usize) {
    let mut conn = server.connection();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: usize = redis::cmd("LLEN")
            .arg(queue)
            .query(&mut conn)
            .expect("LLEN");
        if n == len {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{queue} holds {n} entries, not {len}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Log lines captured from `tracing` by [`capture_logs`].
static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every `tracing` event of this test binary, from any thread, from the first
/// call on; returns what was logged so far.
pub fn capture_logs() -> String {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(|| LogWriter)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// The owner token at the start of a lock key's value: the key holds the acquisition's
/// token (32 hex digits), then a description of its holder (when, process, host, function).
pub fn token_in(value: &str) -> &str {
    value.split(' ').next().unwrap_or(value)
}

/// The owner token in lock key `key`, if the lock is held.
pub fn owner_token(conn: &mut redis::Connection, key: &str) -> Option<String> {
    let value: Option<String> = redis::cmd("GET").arg(key).query(conn).expect("GET");
    value.map(|value| token_in(&value).to_string())
}

/// Every key in the server except the locks' fencing counters (`<lock key>:fence`), which
/// outlive their locks by design: what is left after all locks are released is then empty.
pub fn lock_keys(conn: &mut redis::Connection) -> Vec<String> {
    let all: Vec<String> = redis::cmd("KEYS").arg("*").query(conn).expect("KEYS");
    all.into_iter()
        .filter(|k| !k.ends_with("}:fence"))
        .collect()
}

/// A store that keeps the highest fencing token it has seen and refuses writes carrying a
/// smaller one: the pattern fencing tokens are for. Writes `value` to `store` (remembering
/// the token in `<store>:fence`); returns whether the write was accepted.
pub fn fenced_write(conn: &mut redis::Connection, store: &str, fence: u64, value: &str) -> bool {
    let script = redis::Script::new(
        "local seen = tonumber(redis.call('get', KEYS[2]) or '0') \
         if tonumber(ARGV[1]) < seen then return 0 end \
         redis.call('set', KEYS[2], ARGV[1]) \
         redis.call('set', KEYS[1], ARGV[2]) \
         return 1",
    );
    let accepted: i64 = script
        .key(store)
        .key(format!("{store}:fence"))
        .arg(fence)
        .arg(value)
        .invoke(conn)
        .expect("fenced write");
    accepted == 1
}

/// Asks `check` every 10 ms until it says `Ok`, for states Redis announces no event for;
/// panics with `what` and the last reason `check` gave when `timeout` passes first.
/// Returns how long it took.
pub(crate) fn poll_until(
    timeout: Duration,
    what: &str,
    check: impl FnMut() -> Result<(), String>,
) -> Duration {
    try_poll_until(timeout, what, check).unwrap_or_else(|e| panic!("{e}"))
}

/// [`poll_until`] that returns the failure instead of panicking.
pub(crate) fn try_poll_until(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<(), String>,
) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        match check() {
            Ok(()) => return Ok(start.elapsed()),
            Err(reason) if start.elapsed() >= timeout => {
                return Err(format!("{what}: not so after {timeout:?}: {reason}"));
            }
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends one command to the server on `port` on a fresh connection with short timeouts
/// (so a dead or frozen server is an error, not a hang).
pub(crate) fn ask<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> Result<T, String> {
    let timeout = Duration::from_secs(1);
    let client =
        redis::Client::open(format!("redis://127.0.0.1:{port}")).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_connection_with_timeout(timeout)
        .map_err(|e| format!("connect to {port}: {e}"))?;
    conn.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    cmd.query(&mut conn).map_err(|e| format!("{port}: {e}"))
}

/// The value of `field` in an `INFO`-style reply (`field:value` lines).
pub(crate) fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(str::trim)
}

/// A child process (a `contender`) killed when dropped, a failed assertion included, so
/// that one that never ends does not outlive its test (nor keep the output of a test run
/// open for good).
pub struct KilledOnDrop(pub Child);

impl std::ops::Deref for KilledOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for KilledOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl KilledOnDrop {
    /// Starts the `contender` binary at `path` (a test's `env!("CARGO_BIN_EXE_contender")`)
    /// with `args`, its output piped.
    pub fn contender(path: &str, args: &[&str]) -> KilledOnDrop {
        KilledOnDrop(
            Command::new(path)
                .args(args)
                .stdout(Stdio::piped())
                .spawn()
                .expect("start the contender"),
        )
    }
}

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A second process (the `contender` binary, whose path the test passes as
/// `env!("CARGO_BIN_EXE_contender")`) holding a lock with an auto-renewed lease until told
/// to release it.
pub struct HolderProcess {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl HolderProcess {
    /// Starts it on the client `url` (a URL, comma-separated Redlock URLs, or
    /// `cluster:SEED,...`) and returns once it holds `lock` with a lease of `lease_secs`.
    pub fn start(contender: &str, url: &str, lock: &str, lease_secs: &str) -> HolderProcess {
        Self::spawn(contender, &["hold-until-told", url, lock, lease_secs])
    }

    /// [`start`](HolderProcess::start), for a lock with a minimum hold of `min_hold_secs`.
    pub fn start_with_min_hold(
        contender: &str,
        url: &str,
        lock: &str,
        lease_secs: &str,
        min_hold_secs: &str,
    ) -> HolderProcess {
        Self::spawn(
            contender,
            &["hold-until-told", url, lock, lease_secs, min_hold_secs],
        )
    }

    fn spawn(contender: &str, args: &[&str]) -> HolderProcess {
        let mut child = Command::new(contender)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the contender");
        let mut out = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        out.read_line(&mut line).expect("read the contender");
        assert_eq!(line.trim(), "HOLDING");
        HolderProcess { child, out }
    }

    /// Tells it to release, without waiting.
    pub fn tell_release(&mut self) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("stdin is piped");
        writeln!(stdin, "release").expect("tell the contender");
    }

    /// Waits until it reports the release, and for it to exit; returns when it reported.
    pub fn wait_released(mut self) -> Instant {
        let mut line = String::new();
        self.out.read_line(&mut line).expect("read the contender");
        assert_eq!(line.trim(), "RELEASED");
        let released = Instant::now();
        assert!(self.child.wait().expect("wait for the contender").success());
        released
    }

    /// Kills it (SIGKILL) while it holds the lock, as a crash would; returns once it is dead.
    pub fn kill(mut self) {
        self.child.kill().expect("kill the contender");
        self.child.wait().expect("wait for the contender");
    }

    /// [`tell_release`](HolderProcess::tell_release), then
    /// [`wait_released`](HolderProcess::wait_released).
    pub fn release(mut self) -> Instant {
        self.tell_release();
        self.wait_released()
    }
}
