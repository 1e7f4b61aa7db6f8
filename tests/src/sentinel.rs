//! A master, its replica and three Sentinels watching them, all throwaway processes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::{Launch, RedisServer, ask, info_field, poll_until, try_poll_until};

/// How long the setup may take to settle, or a failover to finish.
const SETTLE: Duration = Duration::from_secs(20);

/// The log line with which a sentinel says it runs (it prints no "Ready to accept
/// connections"); it comes after its port is open.
const SENTINEL_READY: &str = "Sentinel ID is";

/// A master, one replica of it, and three sentinels monitoring it under one name with a
/// quorum of 2; all stopped when dropped.
///
/// The sentinels run with `SENTINEL DEBUG info-period 100 publish-period 1000` (instead of
/// 10 s and 2 s): they find the replica and each other within a second or so, and turn a
/// returning old master into a replica after about 4 s instead of 10 to 20 s. The
/// publish period is not shorter because a sentinel waits 4 of them before it "corrects"
/// a replica it sees reporting itself as master: with 100 ms, a slow promotion made a
/// sentinel demote the replica the leader was promoting, and the failover aborted.
/// Failure detection keeps the configured `down-after-milliseconds` of 1000.
pub struct SentinelSetup {
    name: String,
    /// The two data nodes; which one is master changes with failovers.
    servers: [RedisServer; 2],
    sentinels: Vec<RedisServer>,
}

impl SentinelSetup {
    /// Starts the master, the replica, then the three sentinels, and returns once the
    /// setup is [ready](SentinelSetup::wait_until_ready).
    pub fn start(master_name: &str) -> SentinelSetup {
        let replication = ["--repl-diskless-sync-delay", "0"];
        let master = RedisServer::start_with(&replication);
        let master_port = master.port().to_string();
        let replica = RedisServer::start_with(
            &[
                &replication[..],
                &["--replicaof", "127.0.0.1", &master_port],
            ]
            .concat(),
        );
        // Sentinels learn of replicas from the master's INFO, which they ask at once and
        // then only every info-period: so the replica is connected before they start.
        poll_until(SETTLE, "the replica's link is up", || {
            replica_link_up(replica.port(), master.port())
        });
        let sentinels = (0..3)
            .map(|_| {
                RedisServer::launch(&|_dir, port| Launch {
                    config: Some(format!(
                        "port {port}\n\
                         bind 127.0.0.1\n\
                         sentinel monitor {master_name} 127.0.0.1 {master_port} 2\n\
                         sentinel down-after-milliseconds {master_name} 1000\n\
                         sentinel failover-timeout {master_name} 5000\n\
                         sentinel parallel-syncs {master_name} 1\n"
                    )),
                    args: vec!["--sentinel".into()],
                    ready: SENTINEL_READY,
                })
            })
            .collect::<Vec<_>>();
        for sentinel in &sentinels {
            let _: () = ask(
                sentinel.port(),
                redis::cmd("SENTINEL")
                    .arg("DEBUG")
                    .arg("info-period")
                    .arg(100)
                    .arg("publish-period")
                    .arg(1000),
            )
            .unwrap_or_else(|e| panic!("SENTINEL DEBUG: {e}"));
        }
        let setup = SentinelSetup {
            name: master_name.to_string(),
            servers: [master, replica],
            sentinels,
        };
        setup.wait_until_ready();
        setup
    }

    /// The name the sentinels know the master by.
    pub fn master_name(&self) -> &str {
        &self.name
    }

    /// The URLs of the running sentinels.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .filter(|s| s.is_running())
            .map(RedisServer::url)
            .collect()
    }

    /// The sentinels, killed ones included.
    pub fn sentinels(&self) -> &[RedisServer] {
        &self.sentinels
    }

    /// The master's address as the first running sentinel reports it
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME`).
    pub fn master_addr(&self) -> (String, u16) {
        let sentinel = self.sentinels.iter().find(|s| s.is_running());
        let sentinel = sentinel.expect("a sentinel runs");
        self.addr_from(sentinel.port())
            .unwrap_or_else(|e| panic!("SENTINEL GET-MASTER-ADDR-BY-NAME: {e}"))
    }

    /// The data node that is master as the sentinels report it.
    pub fn master(&self) -> &RedisServer {
        &self.servers[self.master_index()]
    }

    /// The other data node.
    pub fn replica(&self) -> &RedisServer {
        &self.servers[1 - self.master_index()]
    }

    /// Sends `SENTINEL FAILOVER` (once the setup is ready) and returns once every running
    /// sentinel reports the other node as master and that node answers `ROLE` as master;
    /// returns how long that took from the command. The old master becomes a replica of
    /// the new one shortly after: [`wait_until_ready`](SentinelSetup::wait_until_ready).
    pub fn failover(&mut self) -> Duration {
        self.wait_until_ready();
        let new = self.replica().port();
        let start = Instant::now();
        // A sentinel may still find the replica not good enough to promote and abort
        // (`-failover-abort-no-good-slave`, seen on a loaded machine): ask again until a
        // failover takes, within the usual time.
        loop {
            let sentinel = self.sentinels.iter().find(|s| s.is_running());
            let port = sentinel.expect("a sentinel runs").port();
            // `INPROG` (one is under way) is as good as an answer.
            let _ =
                ask::<redis::Value>(port, redis::cmd("SENTINEL").arg("FAILOVER").arg(&self.name));
            let took = try_poll_until(Duration::from_secs(5), "the failover", || {
                self.master_is(new)
            });
            if took.is_ok() || start.elapsed() > SETTLE {
                break;
            }
        }
        self.wait_for_master(new);
        start.elapsed()
    }

    /// SIGKILLs the node that is master now; returns its port. The sentinels see it down
    /// after a second and fail over:
    /// [`wait_for_master`](SentinelSetup::wait_for_master)`(replica port)`.
    pub fn kill_master(&mut self) -> u16 {
        let index = self.master_index();
        self.servers[index].kill();
        self.servers[index].port()
    }

    /// Starts a killed data node again (as it was: it comes back as the old master, and
    /// the sentinels then turn it into a replica).
    pub fn start_again(&mut self, port: u16) {
        let server = self.servers.iter_mut().find(|s| s.port() == port);
        server.expect("a data node on that port").start_again();
    }

    /// Waits until every running sentinel reports the node on `port` as master and that
    /// node answers `ROLE` as master; returns how long that took.
    pub fn wait_for_master(&self, port: u16) -> Duration {
        let waited = try_poll_until(SETTLE, "the sentinels report the new master", || {
            self.master_is(port)
        });
        waited.unwrap_or_else(|e| panic!("{e}\n{}", self.sentinel_logs()))
    }

    /// Whether every running sentinel reports the node on `port` as master, and that node
    /// answers `ROLE` as master; else what is not so yet.
    fn master_is(&self, port: u16) -> Result<(), String> {
        for sentinel in self.sentinels.iter().filter(|s| s.is_running()) {
            let (_, reported) = self.addr_from(sentinel.port())?;
            if reported != port {
                return Err(format!("{} reports {reported}", sentinel.port()));
            }
        }
        let role: Vec<redis::Value> = ask(port, &redis::cmd("ROLE"))?;
        match role.first() {
            Some(redis::Value::BulkString(r)) if r == b"master" => Ok(()),
            other => Err(format!("{port} answers ROLE {other:?}")),
        }
    }

    /// The last lines each sentinel logged, for failure messages.
    fn sentinel_logs(&self) -> String {
        let mut text = String::new();
        for sentinel in &self.sentinels {
            let log = sentinel.log();
            let lines: Vec<&str> = log.lines().collect();
            text += &format!("--- sentinel {}:\n", sentinel.port());
            for line in &lines[lines.len().saturating_sub(25)..] {
                text += line;
                text.push('\n');
            }
        }
        text
    }

    /// Waits until both data nodes run, the one the sentinels report as master answers as
    /// master, the other replicates from it with its link up, and every running sentinel
    /// knows that master, a healthy replica of it, and the other sentinels; returns how
    /// long that took.
    pub fn wait_until_ready(&self) -> Duration {
        let waited = try_poll_until(SETTLE, "the sentinel setup is ready", || {
            let running: Vec<&RedisServer> =
                self.sentinels.iter().filter(|s| s.is_running()).collect();
            let first = running.first().ok_or("no sentinel runs")?;
            let (_, master) = self.addr_from(first.port())?;
            let replica = self
                .servers
                .iter()
                .find(|s| s.port() != master)
                .ok_or("master on an unknown port")?;
            if !self.servers.iter().all(RedisServer::is_running) {
                return Err("a data node is down".into());
            }
            replica_link_up(replica.port(), master)?;
            for sentinel in &running {
                let port = sentinel.port();
                let (_, reported) = self.addr_from(port)?;
                let state = fields(ask(
                    port,
                    redis::cmd("SENTINEL").arg("MASTER").arg(&self.name),
                )?);
                let replicas: Vec<Vec<String>> =
                    ask(port, redis::cmd("SENTINEL").arg("REPLICAS").arg(&self.name))?;
                let healthy = replicas.into_iter().map(fields).any(|r| {
                    r.get("port") == Some(&replica.port().to_string())
                        && r.get("flags").map(String::as_str) == Some("slave")
                        && r.get("master-link-status").map(String::as_str) == Some("ok")
                        && r.get("master-port") == Some(&master.to_string())
                });
                let others = (self.sentinels.len() - 1).to_string();
                if reported != master
                    || state.get("flags").map(String::as_str) != Some("master")
                    || state.get("num-slaves").map(String::as_str) != Some("1")
                    || state.get("num-other-sentinels") != Some(&others)
                    || !healthy
                {
                    return Err(format!(
                        "sentinel {port} does not see it all yet: {state:?}"
                    ));
                }
            }
            Ok(())
        });
        waited.unwrap_or_else(|e| panic!("{e}\n{}", self.sentinel_logs()))
    }

    fn master_index(&self) -> usize {
        let (_, port) = self.master_addr();
        self.servers
            .iter()
            .position(|s| s.port() == port)
            .unwrap_or_else(|| panic!("the sentinels report an unknown master port {port}"))
    }

    fn addr_from(&self, sentinel: u16) -> Result<(String, u16), String> {
        let addr: Option<(String, u16)> = ask(
            sentinel,
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(&self.name),
        )?;
        addr.ok_or_else(|| format!("sentinel {sentinel} knows no master {}", self.name))
    }
}

/// Whether the node on `replica` replicates from `master` with its link up.
fn replica_link_up(replica: u16, master: u16) -> Result<(), String> {
    let info: String = ask(replica, redis::cmd("INFO").arg("replication"))?;
    if info_field(&info, "role") == Some("slave")
        && info_field(&info, "master_port") == Some(&master.to_string())
        && info_field(&info, "master_link_status") == Some("up")
    {
        Ok(())
    } else {
        Err(format!(
            "{replica} is not a replica of {master} with its link up: {info}"
        ))
    }
}

/// A flat `name value name value ...` reply as a map.
fn fields(flat: Vec<String>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut items = flat.into_iter();
    while let (Some(k), Some(v)) = (items.next(), items.next()) {
        map.insert(k, v);
    }
    map
}
