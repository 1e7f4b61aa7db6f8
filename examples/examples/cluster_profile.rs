//! The Cluster client's uncontended async call next to a hand-written loop on the `redis`
//! crate's cluster connection sending the same two requests, in one process to profile:
//! `cargo build --release -p redis-locked-examples --example cluster_profile`, then
//! `perf record -F 1000 --call-graph dwarf target/release/examples/cluster_profile ours 8000`
//! (or `hand`). Prints, per call, the wall time, the CPU time of this process and the
//! context switches of its runtime's worker threads: the figures of the README's
//! "Where the time goes" for the Cluster client.

use std::time::{Duration, Instant};

use redis_locked::__transport::Transport;
use redis_locked::{LockError, redis_lock};
use redis_locked_examples::process_time::cpu;

#[redis_lock(name = "profile:{id}", expire = 10, client = "profile-cluster")]
async fn locked(id: u32) -> Result<(), LockError> {
    let _ = id;
    Ok(())
}

/// What the Cluster client sends for `locked(1)` without a fencing token: `SET NX PX`,
/// then the sharded RELEASE with the lock's three keys.
async fn handwritten(
    conn: &mut redis::cluster_async::ClusterConnection,
    release_sha: &str,
) -> redis::RedisResult<()> {
    const KEY: &str = "lock:{profile:1}";
    let value = "0123456789abcdef0123456789abcdef 1796137577225 12244 host app";
    let _: Option<String> = redis::cmd("SET")
        .arg(KEY)
        .arg(value)
        .arg("NX")
        .arg("PX")
        .arg(10_000)
        .query_async(conn)
        .await?;
    let _: i64 = redis::cmd("EVALSHA")
        .arg(release_sha)
        .arg(3)
        .arg(KEY)
        .arg(format!("{KEY}:fence"))
        .arg(format!("{KEY}:queue"))
        .arg(value)
        .arg("profile-handwritten")
        .query_async(conn)
        .await?;
    Ok(())
}

/// Context switches (voluntary, preempted) of this process's Tokio worker threads.
fn worker_switches() -> (u64, u64) {
    let mut total = (0, 0);
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("tokio-rt-worker") {
            continue;
        }
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            let count = |prefix| line.strip_prefix(prefix)?.trim().parse::<u64>().ok();
            if let Some(n) = count("voluntary_ctxt_switches:") {
                total.0 += n;
            }
            if let Some(n) = count("nonvoluntary_ctxt_switches:") {
                total.1 += n;
            }
        }
    }
    total
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(mode), Some(calls)) = (args.next(), args.next()) else {
        return Err("usage: cluster_profile ours|hand CALLS".into());
    };
    let calls: u32 = calls.parse()?;
    let cluster = redis_locked_tests::RedisCluster::start(3, 0);
    redis_locked::ClientBuilder::cluster(cluster.seed_urls()).register("profile-cluster")?;
    let release = Transport::script_bodies()[1]
        .replace("'publish'", "'spublish'")
        .replace("'numsub'", "'shardnumsub'");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let seeds = cluster.seed_urls();
    runtime.block_on(async move {
        let client = redis::cluster::ClusterClient::new(seeds)?;
        let mut conn = client.get_async_connection().await?;
        let release_sha = redis::Script::new(&release).get_hash().to_string();
        let _: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(&release)
            .query_async(&mut conn)
            .await?;
        let run = tokio::spawn(async move {
            for round in 0..3 {
                let (cpu_before, switches_before, start) =
                    (cpu(), worker_switches(), Instant::now());
                for _ in 0..calls {
                    match mode.as_str() {
                        "ours" => locked(1).await?,
                        _ => handwritten(&mut conn, &release_sha).await?,
                    }
                }
                let (wall, cpu) = (start.elapsed(), cpu() - cpu_before);
                let switches = worker_switches();
                let per_call = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(calls);
                let switched = |now: u64, before: u64| (now - before) as f64 / f64::from(calls);
                println!(
                    "{mode} round {round}: {:.0} calls/s, {:.1} µs wall and {:.1} µs CPU per call, \
                     worker context switches per call {:.2} voluntary, {:.2} preempted",
                    f64::from(calls) / wall.as_secs_f64(),
                    per_call(wall),
                    per_call(cpu),
                    switched(switches.0, switches_before.0),
                    switched(switches.1, switches_before.1),
                );
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        });
        run.await?.map_err(|e| e.to_string())?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    drop(cluster);
    Ok(())
}
