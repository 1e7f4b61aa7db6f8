//! Looking at the redis-server and at this process from the side, on a connection of the
//! `redis` crate that the lock library knows nothing about.

use std::collections::HashSet;

use super::Res;

/// Connections to the servers whose commands are counted; the first also serves PING and
/// `INFO server`.
pub struct Inspector {
    conns: Vec<redis::Connection>,
}

/// What the figures were measured on.
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub redis_version: String,
}

impl Inspector {
    pub fn new(conn: redis::Connection) -> Inspector {
        Inspector { conns: vec![conn] }
    }

    /// Counts the commands of several servers together (those of a Redlock client).
    pub fn of_all(conns: Vec<redis::Connection>) -> Inspector {
        assert!(!conns.is_empty(), "an inspector needs a server");
        Inspector { conns }
    }

    pub fn conn(&mut self) -> &mut redis::Connection {
        &mut self.conns[0]
    }

    pub fn machine(&mut self) -> Res<Machine> {
        let info: String = redis::cmd("INFO").arg("server").query(self.conn())?;
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Ok(Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu: info_field(&cpuinfo, "model name")
                .unwrap_or("unknown")
                .to_string(),
            redis_version: info_field(&info, "redis_version")
                .unwrap_or("?")
                .to_string(),
        })
    }

    /// Zeroes every server's command counters (`CONFIG RESETSTAT`).
    pub fn reset_stats(&mut self) -> Res<()> {
        for conn in &mut self.conns {
            redis::cmd("CONFIG").arg("RESETSTAT").query::<()>(conn)?;
        }
        Ok(())
    }

    /// Commands the servers ran since [`reset_stats`](Inspector::reset_stats), all added up.
    pub fn commands_run(&mut self) -> Res<u64> {
        let mut calls = 0;
        for conn in &mut self.conns {
            calls += commands_run_on(conn)?;
        }
        Ok(calls)
    }
}

/// Commands one server ran since its counters were zeroed: the sum of `calls=` over
/// `INFO commandstats`, without our own `CONFIG` and `INFO`. Commands that Lua scripts run
/// count too (an `EVALSHA` of a GET-then-DEL script counts 3).
fn commands_run_on(conn: &mut redis::Connection) -> Res<u64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query(conn)?;
    let calls = info
        .lines()
        .filter_map(|line| line.strip_prefix("cmdstat_"))
        .filter(|line| !line.starts_with("info:") && !line.starts_with("config|"))
        .filter_map(|line| {
            line.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    Ok(calls)
}

/// The ids of all clients connected to the server (`CLIENT LIST`).
pub fn client_ids(conn: &mut redis::Connection) -> Res<HashSet<u64>> {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(conn)?;
    Ok(list
        .lines()
        .filter_map(|line| line.strip_prefix("id=")?.split(' ').next()?.parse().ok())
        .collect())
}

/// `key: value` or `key:value` lines, as in /proc/cpuinfo and `INFO`.
fn info_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// This process's peak resident set so far (`VmHWM`), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    info_field(&status, "VmHWM")?
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Restarts the peak-RSS count from the current RSS, so a section's peak is its own
/// (Linux: writing 5 to clear_refs). Best effort: returns whether it worked.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
