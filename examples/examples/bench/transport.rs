//! A/B of the transport alone: the runtime's requests (its pools of the `redis` crate's
//! connections) against the `redis` crate's connections used directly, with the same
//! uncontended lock cycle (the runtime's acquire and release scripts, built as
//! it builds them) over three stacks:
//!
//! - A, the public API: `Lock::acquire` and the guard's release, on the runtime's transport;
//! - C, the two scripts in a hand-written loop on the runtime's transport (through the
//!   `__transport` hook: the runtime's own `eval`, without the lock's queue and guard);
//! - B, the same two commands on the `redis` crate's connections: one
//!   `MultiplexedConnection` per runtime, shared by its tasks (or one per task, in a
//!   scenario of its own), and one `Connection` per thread, all with `TCP_NODELAY` and the
//!   runtime's 5 s response timeout.
//!
//! C against B is like for like; A against B also counts what the lock adds around them.
//! Each scenario runs the stacks in turn, `Sizes::ab_rounds` times, each round starting
//! with the next stack, so that load from elsewhere falls on all of them alike.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis_locked::__transport::Transport;
use redis_locked::Lock;

use super::{Res, Sizes, runtime};

/// The lease of every cycle: long enough never to expire mid-cycle, and set, so the
/// public API's guard does not renew.
const LEASE: Duration = Duration::from_secs(10);

/// The response timeout the runtime's client has by default, given to the `redis` crate's
/// connections too.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What carries the cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    /// A: `Lock` acquire and release.
    Api,
    /// C: the scripts on the runtime's transport.
    Ours,
    /// B: the scripts on the `redis` crate's connections.
    Crate,
}

pub const STACKS: [Stack; 3] = [Stack::Api, Stack::Ours, Stack::Crate];

/// Who runs cycles side by side, each on a lock of its own.
#[derive(Clone, Copy, Debug)]
pub enum Scenario {
    /// Tasks of one 2-worker runtime; B's share one multiplexed connection.
    Tasks(usize),
    /// The same, but B's tasks have a multiplexed connection each, as ours have a pooled
    /// connection each.
    TasksOwnConnections(usize),
    /// Threads, without a runtime.
    Threads(usize),
}

pub const SCENARIOS: [Scenario; 5] = [
    Scenario::Tasks(1),
    Scenario::Tasks(8),
    Scenario::TasksOwnConnections(8),
    Scenario::Threads(1),
    Scenario::Threads(4),
];

/// One run of one stack.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// Lock cycles (acquire + release) per second, all callers together.
    pub per_second: f64,
    /// CPU time of this process (user + system) per cycle.
    pub cpu_per_cycle: Duration,
}

/// Every round of one scenario.
pub struct Comparison {
    pub scenario: Scenario,
    /// Each stack's runs, round by round, indexed by `Stack as usize`.
    runs: [Vec<Run>; 3],
}

impl Comparison {
    /// The runs of `stack`, one per round.
    pub fn runs_of(&self, stack: Stack) -> &[Run] {
        &self.runs[stack as usize]
    }
}

/// Runs every scenario, `sizes.ab_rounds` rounds of each stack.
pub fn run(url: &str, sizes: &Sizes) -> Res<Vec<Comparison>> {
    let mut comparisons = Vec::new();
    for scenario in SCENARIOS {
        eprintln!("transport A/B: {scenario:?} ...");
        let mut runs: [Vec<Run>; 3] = Default::default();
        for round in 0..sizes.ab_rounds {
            for i in 0..STACKS.len() {
                let stack = STACKS[(i + round) % STACKS.len()];
                let run = match scenario {
                    Scenario::Tasks(n) => tasks(url, stack, n, false, sizes)?,
                    Scenario::TasksOwnConnections(n) => tasks(url, stack, n, true, sizes)?,
                    Scenario::Threads(n) => threads(url, stack, n, sizes)?,
                };
                runs[stack as usize].push(run);
            }
        }
        comparisons.push(Comparison { scenario, runs });
    }
    Ok(comparisons)
}

/// `n` tasks on a fresh 2-worker runtime, each `sizes.loops` cycles after its warm-up,
/// timed from when all are warm to when the last is done. On the `redis` crate's stack they
/// share one multiplexed connection, made on this runtime, unless `own_connections`.
fn tasks(url: &str, stack: Stack, n: usize, own_connections: bool, sizes: &Sizes) -> Res<Run> {
    let (warmup, loops) = (sizes.warmup, sizes.loops);
    let url = url.to_string();
    runtime()?.block_on(async move {
        let warm = Arc::new(tokio::sync::Barrier::new(n + 1));
        let mut handles = Vec::new();
        let mut shared: Option<MultiplexedConnection> = None;
        for task in 0..n {
            let conn = match (stack, &shared) {
                (Stack::Crate, Some(conn)) if !own_connections => Some(conn.clone()),
                (Stack::Crate, _) => {
                    let conn = multiplexed(&url).await?;
                    shared = Some(conn.clone());
                    Some(conn)
                }
                _ => None,
            };
            let mut cycle = AsyncCycle::new(stack, task, conn)?;
            let warm = warm.clone();
            handles.push(tokio::spawn(async move {
                let warmed = async {
                    for _ in 0..warmup {
                        cycle.run().await?;
                    }
                    Res::Ok(())
                }
                .await;
                // Also after a failed warm-up: the others would wait for this task forever.
                warm.wait().await;
                warmed?;
                for _ in 0..loops {
                    cycle.run().await?;
                }
                Res::Ok(())
            }));
        }
        warm.wait().await;
        let (start, cpu) = (Instant::now(), cpu_time());
        for handle in handles {
            handle.await??;
        }
        Ok(Run::of(n * loops, start, cpu))
    })
}

/// `n` threads, each with `sizes.loops` cycles after its warm-up, timed as [`tasks`].
fn threads(url: &str, stack: Stack, n: usize, sizes: &Sizes) -> Res<Run> {
    let warm = Barrier::new(n + 1);
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for thread in 0..n {
            let warm = &warm;
            handles.push(scope.spawn(move || -> Res<()> {
                let warmed = SyncCycle::new(stack, thread, url).and_then(|mut cycle| {
                    for _ in 0..sizes.warmup {
                        cycle.run()?;
                    }
                    Ok(cycle)
                });
                // Also after a failed warm-up: the others would wait for this thread forever.
                warm.wait();
                let mut cycle = warmed?;
                for _ in 0..sizes.loops {
                    cycle.run()?;
                }
                Ok(())
            }));
        }
        warm.wait();
        let (start, cpu) = (Instant::now(), cpu_time());
        for handle in handles {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        }
        Ok(Run::of(n * sizes.loops, start, cpu))
    })
}

impl Run {
    /// `cycles` that ran since `start`, when the process had used `cpu`.
    fn of(cycles: usize, start: Instant, cpu: Duration) -> Run {
        Run {
            per_second: cycles as f64 / start.elapsed().as_secs_f64(),
            cpu_per_cycle: cpu_time().saturating_sub(cpu) / cycles as u32,
        }
    }
}

/// The lock key of caller `caller` of `stack`, as the runtime names it: each caller has a
/// lock of its own, so the cycles never wait for one another.
fn key(stack: Stack, caller: usize) -> Res<String> {
    Ok(lock(stack, caller)?.key().to_string())
}

fn lock(stack: Stack, caller: usize) -> Res<Lock> {
    Ok(Lock::new(format!("ab:{stack:?}:{caller}"))?.expire(LEASE))
}

/// One caller's cycle on async I/O.
enum AsyncCycle {
    Api(Lock),
    Ours(Transport, String),
    Crate(Transport, String, MultiplexedConnection),
}

impl AsyncCycle {
    fn new(stack: Stack, task: usize, conn: Option<MultiplexedConnection>) -> Res<AsyncCycle> {
        Ok(match (stack, conn) {
            (Stack::Api, _) => AsyncCycle::Api(lock(stack, task)?),
            (Stack::Ours, _) => AsyncCycle::Ours(Transport::of(None)?, key(stack, task)?),
            (Stack::Crate, Some(conn)) => {
                AsyncCycle::Crate(Transport::of(None)?, key(stack, task)?, conn)
            }
            (Stack::Crate, None) => {
                return Err("the redis crate's stack needs its connection".into());
            }
        })
    }

    /// Takes the free lock and releases it, with a fresh owner value as every acquisition.
    async fn run(&mut self) -> Res<()> {
        match self {
            AsyncCycle::Api(lock) => lock.acquire(None).await?.release().await?,
            AsyncCycle::Ours(transport, key) => {
                let value = transport.owner_value()?;
                let fence = transport.acquire(key, &value, lease_ms()).await?;
                taken(fence.is_some())?;
                released(transport.release(key, &value).await?)?;
            }
            AsyncCycle::Crate(transport, key, conn) => {
                let value = transport.owner_value()?;
                let [acquire, release] = transport.cycle_commands(key, &value, lease_ms());
                let (took, _fence): (i64, i64) = acquire.query_async(conn).await?;
                taken(took == 1)?;
                released(release.query_async::<i64>(conn).await? == 1)?;
            }
        }
        Ok(())
    }
}

/// One caller's cycle on blocking I/O.
enum SyncCycle {
    Api(Lock),
    Ours(Transport, String),
    Crate(Transport, String, redis::Connection),
}

impl SyncCycle {
    fn new(stack: Stack, thread: usize, url: &str) -> Res<SyncCycle> {
        Ok(match stack {
            Stack::Api => SyncCycle::Api(lock(stack, thread)?),
            Stack::Ours => SyncCycle::Ours(Transport::of(None)?, key(stack, thread)?),
            Stack::Crate => {
                SyncCycle::Crate(Transport::of(None)?, key(stack, thread)?, blocking(url)?)
            }
        })
    }

    /// [`AsyncCycle::run`], blocking.
    fn run(&mut self) -> Res<()> {
        match self {
            SyncCycle::Api(lock) => lock.acquire_blocking(None)?.release()?,
            SyncCycle::Ours(transport, key) => {
                let value = transport.owner_value()?;
                taken(
                    transport
                        .acquire_blocking(key, &value, lease_ms())?
                        .is_some(),
                )?;
                released(transport.release_blocking(key, &value)?)?;
            }
            SyncCycle::Crate(transport, key, conn) => {
                let value = transport.owner_value()?;
                let [acquire, release] = transport.cycle_commands(key, &value, lease_ms());
                let (took, _fence): (i64, i64) = acquire.query(conn)?;
                taken(took == 1)?;
                released(release.query::<i64>(conn)? == 1)?;
            }
        }
        Ok(())
    }
}

fn lease_ms() -> u64 {
    LEASE.as_millis() as u64
}

/// Every lock of the A/B is its caller's own: it is always free.
fn taken(taken: bool) -> Res<()> {
    if taken {
        Ok(())
    } else {
        Err("an A/B lock was held by someone else, though each caller has its own".into())
    }
}

fn released(released: bool) -> Res<()> {
    if released {
        Ok(())
    } else {
        Err("an A/B lock was no longer ours at its release".into())
    }
}

/// The `redis` crate's client for `url`, with `TCP_NODELAY` as the runtime's connections
/// (its default is off).
fn client(url: &str) -> Res<redis::Client> {
    let info = redis::IntoConnectionInfo::into_connection_info(url)?
        .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
    Ok(redis::Client::open(info)?)
}

/// A multiplexed connection with the scripts loaded, so that `EVALSHA` finds them.
async fn multiplexed(url: &str) -> Res<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(RESPONSE_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let mut conn = client(url)?
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    for body in Transport::script_bodies() {
        redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(body)
            .query_async::<String>(&mut conn)
            .await?;
    }
    Ok(conn)
}

/// A blocking connection with the scripts loaded.
fn blocking(url: &str) -> Res<redis::Connection> {
    let mut conn = client(url)?.get_connection_with_timeout(RESPONSE_TIMEOUT)?;
    conn.set_read_timeout(Some(RESPONSE_TIMEOUT))?;
    conn.set_write_timeout(Some(RESPONSE_TIMEOUT))?;
    for body in Transport::script_bodies() {
        redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(body)
            .query::<String>(&mut conn)?;
    }
    Ok(conn)
}

/// User and system CPU time of this process so far (the redis-server is another process).
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` fills the struct it is given, which lives for the call.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}
