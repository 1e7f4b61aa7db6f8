//! A Redis Cluster of throwaway redis-server processes on loopback.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{Launch, READY, RedisServer, ask, free_port, info_field, poll_until};

/// How long a cluster may take to form, or to heal after a master died.
const CONVERGE: Duration = Duration::from_secs(20);

/// Redis Cluster's number of hash slots.
const SLOTS: u32 = 16384;

/// A Redis Cluster of `masters` shards with `replicas_per_master` replicas each, every node a
/// [`RedisServer`] in its own directory; all stopped when dropped.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    masters: usize,
}

/// The parts of one `CLUSTER NODES` line used here.
struct NodeLine {
    id: String,
    port: u16,
    master: bool,
    failed: bool,
    /// Not yet fully known (`handshake`, `noaddr`).
    unsure: bool,
    /// The id of its master, for a replica.
    master_id: Option<String>,
    /// Slot ranges it serves (inclusive).
    slots: Vec<(u16, u16)>,
}

/// Which port serves each slot range, as one node sees it.
type SlotMap = BTreeMap<(u16, u16), u16>;

impl RedisCluster {
    /// Starts `masters * (1 + replicas_per_master)` cluster-enabled redis-servers, joins them
    /// with `redis-cli --cluster create`, and returns once every node says `cluster_state:ok`,
    /// all agree on who serves which slots, and every replica's link to its master is up.
    pub fn start(masters: usize, replicas_per_master: usize) -> RedisCluster {
        assert!(
            masters >= 3,
            "redis-cli --cluster create needs at least 3 masters"
        );
        let nodes: Vec<RedisServer> = (0..masters * (1 + replicas_per_master))
            .map(|_| {
                RedisServer::launch(&|dir, _port| Launch {
                    config: None,
                    args: vec![
                        "--cluster-enabled".into(),
                        "yes".into(),
                        "--cluster-config-file".into(),
                        dir.join("nodes.conf").display().to_string(),
                        "--cluster-node-timeout".into(),
                        "1000".into(),
                        // Not the default port + 10000, which may be taken or above 65535.
                        "--cluster-port".into(),
                        free_port().to_string(),
                        // Replicas sync at once instead of after the default 5 s.
                        "--repl-diskless-sync-delay".into(),
                        "0".into(),
                    ],
                    ready: READY,
                })
            })
            .collect();
        let cli = std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".into());
        let output = Command::new(&cli)
            .args(["--cluster", "create"])
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())))
            .args(["--cluster-replicas", &replicas_per_master.to_string()])
            .arg("--cluster-yes")
            .output()
            .unwrap_or_else(|e| panic!("{cli}: {e} (tests/install-redis.sh installs it)"));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("[OK] All 16384 slots covered"),
            "redis-cli --cluster create failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = RedisCluster { nodes, masters };
        cluster.wait_until_healthy();
        cluster
    }

    /// The URLs of the running nodes, for a cluster client to start from.
    pub fn seed_urls(&self) -> Vec<String> {
        self.running().map(RedisServer::url).collect()
    }

    /// Every node, killed ones included.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The node that serves `key`'s slot now.
    pub fn master_of(&self, key: &str) -> &RedisServer {
        let port = self.master_port_of(key);
        self.node_on(port)
    }

    /// The running replicas of the node that serves `key`'s slot.
    pub fn replicas_of(&self, key: &str) -> Vec<&RedisServer> {
        let lines = self.some_view();
        let master_port = self.master_port_of(key);
        let master_id = &lines
            .iter()
            .find(|l| l.port == master_port)
            .expect("the master is in the view")
            .id;
        lines
            .iter()
            .filter(|l| !l.failed && l.master_id.as_ref() == Some(master_id))
            .map(|l| self.node_on(l.port))
            .filter(|n| n.is_running())
            .collect()
    }

    /// A plain connection to the node that serves `key`'s slot: commands on keys of that
    /// slot run there, others get `MOVED`.
    pub fn connection_to_master_of(&self, key: &str) -> redis::Connection {
        self.master_of(key).connection()
    }

    /// How many connections subscribe to `key`'s shard channel, on its master.
    pub fn shard_subscribers(&self, key: &str) -> i64 {
        let (_, n): (String, i64) = redis::cmd("PUBSUB")
            .arg("SHARDNUMSUB")
            .arg(key)
            .query(&mut self.connection_to_master_of(key))
            .unwrap();
        n
    }

    /// Returns once at least `count` connections subscribe to `key`'s shard channel.
    pub async fn wait_for_shard_subscribers(&self, key: &str, count: i64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.shard_subscribers(key) < count {
            assert!(Instant::now() < deadline, "no subscriber of {key}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILLs the node that serves `key`'s slot and returns once one of its replicas has
    /// taken over and the cluster is healthy again (see [`start`](RedisCluster::start));
    /// returns how long that took from the kill.
    pub fn kill_master_of(&mut self, key: &str) -> Duration {
        let slot = key_slot(key);
        let old = self.master_port_of(key);
        let start = Instant::now();
        let index = self.index_of(old);
        self.nodes[index].kill();
        poll_until(
            CONVERGE,
            "a replica takes over from the killed master",
            || {
                let slots = self.health()?;
                let now = serving(&slots, slot).ok_or("slot not served")?;
                if now == old {
                    return Err(format!("slot {slot} still served by the killed {old}"));
                }
                Ok(())
            },
        );
        start.elapsed()
    }

    /// SIGKILLs the node that serves `key`'s slot while its replicas may not take over by
    /// themselves, waits `before_takeover`, then has a replica take the slot over
    /// (`CLUSTER FAILOVER TAKEOVER`) and returns once the cluster is healthy again. Meanwhile
    /// clients that look find the slot served by nobody.
    pub fn kill_master_of_and_promote_later(&mut self, key: &str, before_takeover: Duration) {
        let replica = self.replicas_of(key)[0].port();
        let no_failover = |on: &str| {
            ask::<()>(
                replica,
                redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("cluster-replica-no-failover")
                    .arg(on),
            )
            .unwrap_or_else(|e| panic!("CONFIG SET: {e}"));
        };
        no_failover("yes");
        let slot = key_slot(key);
        let old = self.master_port_of(key);
        let index = self.index_of(old);
        self.nodes[index].kill();
        std::thread::sleep(before_takeover);
        ask::<()>(
            replica,
            redis::cmd("CLUSTER").arg("FAILOVER").arg("TAKEOVER"),
        )
        .unwrap_or_else(|e| panic!("CLUSTER FAILOVER TAKEOVER: {e}"));
        no_failover("no");
        poll_until(CONVERGE, "the replica takes over", || {
            let slots = self.health()?;
            match serving(&slots, slot) {
                Some(now) if now == replica => Ok(()),
                now => Err(format!("slot {slot} served by {now:?}")),
            }
        });
    }

    /// Waits until the cluster is healthy (see [`start`](RedisCluster::start)); returns how
    /// long that took.
    pub fn wait_until_healthy(&self) -> Duration {
        poll_until(CONVERGE, "the cluster is healthy", || {
            self.health().map(drop)
        })
    }

    /// Whether every running node says `cluster_state:ok`, sees every running node and no
    /// failed one among them, and all agree on who serves which slots and who replicates
    /// whom; the `masters` slot owners all run, every other running node is a replica of one
    /// of them (as it says itself too) with its link up. Returns the slot map, or what is
    /// not so yet.
    fn health(&self) -> Result<SlotMap, String> {
        let running: BTreeSet<u16> = self.running().map(RedisServer::port).collect();
        let mut agreed: Option<(SlotMap, BTreeMap<u16, Option<u16>>)> = None;
        for &port in &running {
            let info: String = ask(port, redis::cmd("CLUSTER").arg("INFO"))?;
            if info_field(&info, "cluster_state") != Some("ok") {
                return Err(format!("{port} says cluster_state is not ok"));
            }
            let lines = view(port)?;
            let seen = (
                slot_map(&lines),
                topology(&lines, &running).map_err(|e| format!("{port} {e}"))?,
            );
            match &agreed {
                None => agreed = Some(seen),
                Some(first) if *first != seen => {
                    return Err(format!(
                        "{port} sees another cluster: {seen:?} vs {first:?}"
                    ));
                }
                Some(_) => {}
            }
        }
        let (slots, followed) = agreed.ok_or("no node runs")?;
        let covered: u32 = slots.keys().map(|(a, b)| u32::from(b - a) + 1).sum();
        let owners: BTreeSet<u16> = slots.values().copied().collect();
        if covered != SLOTS || owners.len() != self.masters || !owners.is_subset(&running) {
            return Err(format!(
                "slots not all served by running masters: {slots:?}"
            ));
        }
        for &port in running.difference(&owners) {
            let info: String = ask(port, redis::cmd("INFO").arg("replication"))?;
            let master = info_field(&info, "master_port").and_then(|p| p.parse().ok());
            if info_field(&info, "role") != Some("slave")
                || !master.is_some_and(|p| owners.contains(&p))
                || followed.get(&port) != Some(&master)
                || info_field(&info, "master_link_status") != Some("up")
            {
                return Err(format!(
                    "{port} is not yet a replica with its link up: {info}"
                ));
            }
        }
        Ok(slots)
    }

    fn master_port_of(&self, key: &str) -> u16 {
        let slot = key_slot(key);
        serving(&slot_map(&self.some_view()), slot)
            .unwrap_or_else(|| panic!("no node serves slot {slot}"))
    }

    /// `CLUSTER NODES` as the first running node sees it.
    fn some_view(&self) -> Vec<NodeLine> {
        let node = self.running().next().expect("a node runs");
        view(node.port()).unwrap_or_else(|e| panic!("CLUSTER NODES: {e}"))
    }

    fn running(&self) -> impl Iterator<Item = &RedisServer> {
        self.nodes.iter().filter(|n| n.is_running())
    }

    fn index_of(&self, port: u16) -> usize {
        self.nodes
            .iter()
            .position(|n| n.port() == port)
            .unwrap_or_else(|| panic!("no node on port {port}"))
    }

    fn node_on(&self, port: u16) -> &RedisServer {
        &self.nodes[self.index_of(port)]
    }
}

/// The hash slot of `key` as Redis Cluster computes it: CRC16 (XMODEM) of the hash tag
/// (the part between the first `{` and the next `}`, when not empty) or of the whole key,
/// modulo 16384. Keys like `lock:{name}` and `lock:{name}:fence` share a slot.
pub fn key_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let hashed = match bytes.iter().position(|&b| b == b'{') {
        Some(open) => match bytes[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &bytes[open + 1..open + 1 + len],
            _ => bytes,
        },
        None => bytes,
    };
    let mut crc: u16 = 0;
    for &byte in hashed {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % SLOTS as u16
}

/// `CLUSTER NODES` of the node on `port`.
fn view(port: u16) -> Result<Vec<NodeLine>, String> {
    let text: String = ask(port, redis::cmd("CLUSTER").arg("NODES"))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| parse_line(line).ok_or_else(|| format!("odd CLUSTER NODES line: {line}")))
        .collect()
}

/// `<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`
fn parse_line(line: &str) -> Option<NodeLine> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let address = fields.get(1)?.split('@').next()?;
    let port = address.rsplit(':').next()?.parse().ok()?;
    let flags: Vec<&str> = fields.get(2)?.split(',').collect();
    let master_id = fields.get(3)?;
    let slots = fields
        .get(8..)
        .unwrap_or_default()
        .iter()
        // `[slot->-id]` and `[slot-<-id]` are slots being migrated, not served.
        .filter(|s| !s.starts_with('['))
        .map(|s| {
            let (a, b) = s.split_once('-').unwrap_or((s, s));
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(NodeLine {
        id: fields[0].to_string(),
        port,
        master: flags.contains(&"master"),
        failed: flags.contains(&"fail") || flags.contains(&"fail?"),
        unsure: flags.contains(&"handshake") || flags.contains(&"noaddr"),
        master_id: (*master_id != "-").then(|| master_id.to_string()),
        slots,
    })
}

/// Which master (port) each running node (port) follows, `None` for a master, in one
/// node's view; an error when the view misses a running node or thinks it failed.
fn topology(
    lines: &[NodeLine],
    running: &BTreeSet<u16>,
) -> Result<BTreeMap<u16, Option<u16>>, String> {
    let ports: BTreeMap<&str, u16> = lines.iter().map(|l| (l.id.as_str(), l.port)).collect();
    let mut map = BTreeMap::new();
    for line in lines.iter().filter(|l| running.contains(&l.port)) {
        if line.failed || line.unsure {
            return Err(format!("{} seen as failed or not yet known", line.port));
        }
        let master = match &line.master_id {
            Some(id) => Some(*ports.get(id.as_str()).ok_or("replica of an unknown node")?),
            None => None,
        };
        map.insert(line.port, master);
    }
    if map.len() != running.len() {
        return Err(format!(
            "sees {} of the {} running nodes",
            map.len(),
            running.len()
        ));
    }
    Ok(map)
}

/// Which port serves which slots, in one node's view.
fn slot_map(lines: &[NodeLine]) -> SlotMap {
    lines
        .iter()
        .filter(|l| l.master)
        .flat_map(|l| l.slots.iter().map(|&range| (range, l.port)))
        .collect()
}

fn serving(slots: &SlotMap, slot: u16) -> Option<u16> {
    slots
        .iter()
        .find(|((a, b), _)| (*a..=*b).contains(&slot))
        .map(|(_, &port)| port)
}
