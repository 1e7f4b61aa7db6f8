//! Where an uncontended call's time goes, next to hand-written loops sending the least a
//! lock needs, in one process, alternating: `cargo run --release -p redis-locked-examples
//! --example uncontended_profile -- CALLS [--awake] MODE...` runs each MODE for CALLS calls,
//! three rounds in turn, and prints per call the wall time, this process's CPU time, the
//! servers' CPU time, the commands the servers ran (those inside scripts too), their time
//! per `EVALSHA`, and the voluntary context switches of the threads that switched.
//!
//! Modes: `sync-ours`/`sync-hand` and `async-ours`/`async-hand` (one server: the annotated
//! fn without a guard, and `SET NX PX` + a compare-and-delete `EVALSHA`); `release-ours`
//! and `release-loop` (the sync hand-written loop releasing with the crate's RELEASE script
//! and its three keys and owner value, or with the loop's script given the same arguments:
//! the server's share of the difference); `redlock-async-ours`/`redlock-async-hand` and
//! `redlock-sync-ours`/`redlock-sync-hand` (three servers, the async hand loop asking them
//! with `join!`, the sync one writing every request before reading any reply).
//!
//! It also counts the heap allocations per call, of every thread of this process (the
//! servers' are their own): a figure that, unlike the times, does not move with the load
//! of the machine.
//!
//! `--awake` keeps a thread spinning: on a VM whose idle virtual CPUs halt, every wake-up
//! of a halted CPU costs far more than the request that caused it (a `SET NX PX` +
//! `EVALSHA` loop took 130-145 µs per cycle here, and 15-16 µs with `--awake`), so only with
//! it do the figures show what the code itself costs. Its thread's CPU time is in the
//! process's CPU figure (about the wall time).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use redis::aio::MultiplexedConnection;
use redis_locked::__transport::Transport;
use redis_locked::{LockError, redis_lock};
use redis_locked_examples::awake::Awake;
use redis_locked_examples::on_all::on_all_sync;
use redis_locked_examples::process_time::{cpu, voluntary_switches};

/// The system allocator, counting allocations and reallocations.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[redis_lock(name = "profile:{id}", expire = 10)]
fn sync_ours(id: u32) -> Result<(), LockError> {
    let _ = id;
    Ok(())
}

#[redis_lock(name = "profile:{id}", expire = 10)]
async fn async_ours(id: u32) -> Result<(), LockError> {
    let _ = id;
    Ok(())
}

#[redis_lock(name = "profile:{id}", expire = 10, guard = held)]
fn sync_fenced(id: u32) -> Result<(), LockError> {
    let _ = id;
    std::hint::black_box(held.fencing_token());
    Ok(())
}

#[redis_lock(name = "profile:{id}", expire = 10, auto_renew)]
fn sync_renewed(id: u32) -> Result<(), LockError> {
    let _ = id;
    Ok(())
}

#[redis_lock(name = "profile:{id}", expire = 10, auto_renew)]
async fn async_renewed(id: u32) -> Result<(), LockError> {
    let _ = id;
    Ok(())
}

#[redis_lock(name = "profile:{id}", expire = 10, client = "profile-redlock")]
async fn redlock_async_ours(id: u32) -> Result<(), LockError> {
    let _ = id;
    Ok(())
}

#[redis_lock(name = "profile:{id}", expire = 10, client = "profile-redlock")]
fn redlock_sync_ours(id: u32) -> Result<(), LockError> {
    let _ = id;
    Ok(())
}

#[redis_lock(name = "profile:{id}", expire = 10, client = "profile-cluster")]
fn cluster_sync_ours(id: u32) -> Result<(), LockError> {
    let _ = id;
    Ok(())
}

#[redis_lock(name = "profile:{id}", expire = 10, client = "profile-cluster")]
async fn cluster_async_ours(id: u32) -> Result<(), LockError> {
    let _ = id;
    Ok(())
}

/// The bench's fenced hand-written acquisition: `SET NX PX` and `INCR` of a counter.
const FENCED_LOCK: &str = "if redis.call('set',KEYS[1],ARGV[1],'NX','PX',ARGV[2]) then return redis.call('incr',KEYS[2]) end return 0";

/// The textbook release of a `SET NX` lock.
const UNLOCK: &str =
    "if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end";

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// What the servers say about themselves: CPU seconds, commands run, µs in `EVALSHA`.
#[derive(Default)]
struct ServerStats {
    cpu: f64,
    commands: u64,
    evalsha_usec: u64,
    /// Reads of client sockets: more than one per request means requests arriving in pieces.
    reads: u64,
}

fn server_stats(conns: &mut [redis::Connection]) -> Res<ServerStats> {
    let mut stats = ServerStats::default();
    for conn in conns {
        let info: String = redis::cmd("INFO").arg("all").query(conn)?;
        for line in info.lines() {
            if let Some(seconds) = line
                .strip_prefix("used_cpu_sys:")
                .or_else(|| line.strip_prefix("used_cpu_user:"))
            {
                stats.cpu += seconds.trim().parse::<f64>()?;
            }
            if let Some(reads) = line.strip_prefix("total_reads_processed:") {
                stats.reads += reads.trim().parse::<u64>()?;
            }
            let Some((command, fields)) = line
                .strip_prefix("cmdstat_")
                .and_then(|l| l.split_once(':'))
            else {
                continue;
            };
            let field = |name: &str| -> u64 {
                fields
                    .split(',')
                    .find_map(|f| f.strip_prefix(name))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            if command != "info" {
                stats.commands += field("calls=");
            }
            if command == "evalsha" {
                stats.evalsha_usec += field("usec=");
            }
        }
    }
    Ok(stats)
}

/// The connections the modes use besides the registered clients.
struct Loops {
    runtime: tokio::runtime::Runtime,
    single: redis::Connection,
    single_async: MultiplexedConnection,
    redlock_async: Vec<MultiplexedConnection>,
    redlock_sync: Vec<redis::Connection>,
    cluster: redis::cluster::ClusterConnection,
    unlock_sha: String,
    fenced_sha: String,
}

impl Loops {
    fn run(&mut self, mode: &str, calls: u32) -> Res<()> {
        let sha = self.unlock_sha.clone();
        match mode {
            "sync-ours" => (0..calls).try_for_each(|_| sync_ours(1))?,
            "sync-fenced" => (0..calls).try_for_each(|_| sync_fenced(1))?,
            "sync-fenced-hand" => {
                let sha = self.fenced_sha.clone();
                for i in 0..calls {
                    let token = i.to_string();
                    let _: i64 = redis::cmd("EVALSHA")
                        .arg(&sha)
                        .arg(2)
                        .arg("hand")
                        .arg("hand:fence")
                        .arg(&token)
                        .arg(10_000)
                        .query(&mut self.single)?;
                    let _: i64 =
                        unlock(&self.unlock_sha, "hand", &token).query(&mut self.single)?;
                }
            }
            "sync-renewed" => (0..calls).try_for_each(|_| sync_renewed(1))?,
            "async-renewed" => self.each_in_task(calls, async_renewed)?,
            "sync-hand" => {
                for i in 0..calls {
                    let token = i.to_string();
                    let _: Option<String> = set_nx("hand", &token).query(&mut self.single)?;
                    let _: i64 = unlock(&sha, "hand", &token).query(&mut self.single)?;
                }
            }
            "release-ours" | "release-loop" => self.release_variant(mode, calls)?,
            m if m.starts_with("acquire-") => self.acquire_variant(mode, calls)?,
            "async-ours" => self.each_in_task(calls, async_ours)?,
            "async-hand" => {
                let mut conn = self.single_async.clone();
                self.in_task(async move {
                    for i in 0..calls {
                        let token = i.to_string();
                        let _: Option<String> =
                            set_nx("hand", &token).query_async(&mut conn).await?;
                        let _: i64 = unlock(&sha, "hand", &token).query_async(&mut conn).await?;
                    }
                    Ok(())
                })?
            }
            "redlock-async-ours" => self.each_in_task(calls, redlock_async_ours)?,
            "cluster-sync-ours" => (0..calls).try_for_each(|_| cluster_sync_ours(1))?,
            "cluster-async-ours" => self.each_in_task(calls, cluster_async_ours)?,
            "cluster-sync-hand" => {
                for i in 0..calls {
                    let token = i.to_string();
                    let _: Option<String> = set_nx("{hand}", &token).query(&mut self.cluster)?;
                    let _: i64 = unlock(&sha, "{hand}", &token).query(&mut self.cluster)?;
                }
            }
            "redlock-sync-ours" => (0..calls).try_for_each(|_| redlock_sync_ours(1))?,
            "redlock-sync-hand" => {
                // As the bench's sync Redlock loop: every request written, then every reply read.
                let conns = &mut self.redlock_sync;
                for i in 0..calls {
                    let token = i.to_string();
                    let taken = on_all_sync(conns, &set_nx("hand", &token))?;
                    assert!(taken.iter().all(|v| *v != redis::Value::Nil), "uncontended");
                    on_all_sync(conns, &unlock(&sha, "hand", &token))?;
                }
            }
            "redlock-async-hand" => {
                let conns = self.redlock_async.clone();
                self.in_task(async move {
                    for i in 0..calls {
                        let token = i.to_string();
                        let each = |cmd: redis::Cmd| {
                            let conns = conns.clone();
                            async move {
                                let ask = |mut conn: MultiplexedConnection| {
                                    let cmd = cmd.clone();
                                    async move { cmd.query_async::<redis::Value>(&mut conn).await }
                                };
                                let (a, b, c) = tokio::join!(
                                    ask(conns[0].clone()),
                                    ask(conns[1].clone()),
                                    ask(conns[2].clone())
                                );
                                Ok::<_, redis::RedisError>([a?, b?, c?])
                            }
                        };
                        let taken = each(set_nx("hand", &token)).await?;
                        assert!(taken.iter().all(|v| *v != redis::Value::Nil), "uncontended");
                        each(unlock(&sha, "hand", &token)).await?;
                    }
                    Ok(())
                })?
            }
            _ => return Err(format!("unknown mode {mode}").into()),
        }
        Ok(())
    }

    /// The sync hand-written loop, releasing with the crate's RELEASE script
    /// (`release-ours`) or the loop's own script (`release-loop`), both given the crate's
    /// three keys, owner value and instance id.
    fn release_variant(&mut self, mode: &str, calls: u32) -> Res<()> {
        let body = match mode {
            "release-ours" => Transport::script_bodies()[1],
            _ => UNLOCK,
        };
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(body)
            .query(&mut self.single)?;
        let key = "lock:{release}";
        let value = "0123456789abcdef0123456789abcdef 1796137577225 12244 host fn:release:{id}";
        for _ in 0..calls {
            let _: Option<String> = set_nx(key, value).query(&mut self.single)?;
            let released: i64 = redis::cmd("EVALSHA")
                .arg(&sha)
                .arg(3)
                .arg(key)
                .arg(format!("{key}:fence"))
                .arg(format!("{key}:queue"))
                .arg(value)
                .arg("0123456789abcdef0123456789abcdef")
                .query(&mut self.single)?;
            assert_eq!(released, 1, "the lock was ours");
        }
        Ok(())
    }

    /// The sync hand-written loop acquiring with a fencing token through the crate's
    /// ACQUIRE script (`acquire-ours`) or a variant of it, releasing with the loop's script.
    fn acquire_variant(&mut self, mode: &str, calls: u32) -> Res<()> {
        let ours = Transport::script_bodies()[0];
        let lazy = ours.replace(
            "local entry = ARGV[2] .. (string.find(ARGV[3], 'f') and 'f' or '') .. ' ' .. ARGV[4] .. ' ' .. ARGV[1]",
            "local entry = ''",
        );
        assert_ne!(lazy, ours, "the variant differs");
        let body = match mode {
            "acquire-ours" => ours.to_string(),
            "acquire-lazy" => lazy,
            "acquire-incr" => "if redis.call('set',KEYS[1],ARGV[1],'NX','PX',ARGV[2]) then return {1, redis.call('incr',KEYS[2])} end return {0, 0}".to_string(),
            _ => return Err(format!("unknown mode {mode}").into()),
        };
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(&body)
            .query(&mut self.single)?;
        let key = "lock:{acquire}";
        let value = "0123456789abcdef0123456789abcdef 1796137577225 12244 host fn:acquire:{id}";
        for _ in 0..calls {
            let reply: Vec<i64> = redis::cmd("EVALSHA")
                .arg(&sha)
                .arg(3)
                .arg(key)
                .arg(format!("{key}:fence"))
                .arg(format!("{key}:queue"))
                .arg(value)
                .arg(10_000)
                .arg("f")
                .arg("0123456789abcdef0123456789abcdef")
                .query(&mut self.single)?;
            assert_eq!(reply[0], 1, "uncontended");
            let _: i64 = unlock(&self.unlock_sha, key, value).query(&mut self.single)?;
        }
        Ok(())
    }

    /// `calls` calls of `call` one after another, in a task of the runtime.
    fn each_in_task<F>(&self, calls: u32, call: fn(u32) -> F) -> Res<()>
    where
        F: Future<Output = Result<(), LockError>> + Send + 'static,
    {
        self.in_task(async move {
            for _ in 0..calls {
                call(1).await?;
            }
            Ok(())
        })
    }

    fn in_task(&self, work: impl Future<Output = Res<()>> + Send + 'static) -> Res<()> {
        self.runtime.block_on(self.runtime.spawn(work))?
    }
}

fn set_nx(key: &str, token: &str) -> redis::Cmd {
    redis::cmd("SET")
        .arg(key)
        .arg(token)
        .arg("NX")
        .arg("PX")
        .arg(10_000)
        .take()
}

fn unlock(sha: &str, key: &str, token: &str) -> redis::Cmd {
    redis::cmd("EVALSHA")
        .arg(sha)
        .arg(1)
        .arg(key)
        .arg(token)
        .take()
}

fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let calls: u32 = args
        .next()
        .ok_or("usage: uncontended_profile CALLS [--awake] MODE...")?
        .parse()?;
    let mut modes: Vec<String> = args.collect();
    let _awake = modes.iter().position(|m| m == "--awake").map(|at| {
        modes.remove(at);
        Awake::start()
    });
    let server = redis_locked_tests::RedisServer::start();
    let redlock: Vec<_> = (0..3)
        .map(|_| redis_locked_tests::RedisServer::start())
        .collect();
    let redlock_urls: Vec<String> = redlock.iter().map(|s| s.url()).collect();
    redis_locked::init(&server.url())?;
    redis_locked::ClientBuilder::redlock(redlock_urls.clone()).register("profile-redlock")?;
    let cluster = redis_locked_tests::RedisCluster::start(3, 0);
    redis_locked::ClientBuilder::cluster(cluster.seed_urls()).register("profile-cluster")?;
    let cluster_conn = redis::cluster::ClusterClient::new(cluster.seed_urls())?.get_connection()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut stats_conns: Vec<redis::Connection> = std::iter::once(&server)
        .chain(&redlock)
        .chain(cluster.nodes())
        .map(|s| s.connection())
        .collect();
    for conn in &mut stats_conns {
        let _: String = redis::cmd("SCRIPT").arg("LOAD").arg(UNLOCK).query(conn)?;
        let _: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(FENCED_LOCK)
            .query(conn)?;
    }
    let connect = |url: String| async move {
        redis::Client::open(url)?
            .get_multiplexed_async_connection()
            .await
    };
    let mut loops = Loops {
        single: server.connection(),
        single_async: runtime.block_on(connect(server.url()))?,
        redlock_async: redlock_urls
            .into_iter()
            .map(|url| runtime.block_on(connect(url)))
            .collect::<Result<_, _>>()?,
        redlock_sync: redlock.iter().map(|s| s.connection()).collect(),
        cluster: cluster_conn,
        unlock_sha: redis::Script::new(UNLOCK).get_hash().to_string(),
        fenced_sha: redis::Script::new(FENCED_LOCK).get_hash().to_string(),
        runtime,
    };
    for round in 0..3 {
        for mode in &modes {
            let before = server_stats(&mut stats_conns)?;
            let (threads_before, cpu_before, start) = (voluntary_switches(), cpu(), Instant::now());
            let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
            loops.run(mode, calls)?;
            let (wall, cpu) = (start.elapsed(), cpu() - cpu_before);
            let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;
            let after = server_stats(&mut stats_conns)?;
            let per_call = |seconds: f64| seconds * 1e6 / f64::from(calls);
            let mut switched = String::new();
            for (thread, count) in voluntary_switches() {
                let was = threads_before.iter().find(|(t, _)| *t == thread);
                let per = (count - was.map_or(0, |w| w.1)) as f64 / f64::from(calls);
                if per >= 0.05 {
                    switched += &format!(" {thread} {per:.2}");
                }
            }
            println!(
                "{mode}#{round}: {:.1} µs wall, {:.1} µs CPU, {:.1} allocations, servers {:.1} µs \
                 CPU, {:.2} commands ({:.2} µs in EVALSHA), {:.2} socket reads per call; switches \
                 per call:{switched}",
                per_call(wall.as_secs_f64()),
                per_call(cpu.as_secs_f64()),
                allocations as f64 / f64::from(calls),
                per_call(after.cpu - before.cpu),
                (after.commands - before.commands) as f64 / f64::from(calls),
                per_call((after.evalsha_usec - before.evalsha_usec) as f64 / 1e6),
                (after.reads - before.reads) as f64 / f64::from(calls),
            );
        }
    }
    Ok(())
}
