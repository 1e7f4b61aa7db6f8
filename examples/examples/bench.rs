//! Benchmark of `#[redis_lock]` against plain Redis round trips and a hand-written lock.
//!
//! ```text
//! cargo run --release -p redis-locked-examples --example bench [-- --quick]
//! ```
//!
//! Starts its own redis-server, measures everything in one run, and prints one markdown
//! table: each figure, its ratio to the baselines of the same run, its target, and whether
//! the target was met. Progress goes to stderr, the table to stdout.
//!
//! It also starts a Redis Cluster of 3 masters and 3 independent servers for Redlock, and
//! gives the uncontended calls and the contended (a) scenario on those clients, held to the
//! same single-server baselines; their targets are shown for comparison, not judged. Their
//! uncontended calls are also held to hand-written loops on the same servers (a parallel
//! Redlock, a loop on the `redis` crate's cluster connection), which those targets judge.

#[path = "bench/baseline.rs"]
mod baseline;
#[path = "bench/clock.rs"]
mod clock;
#[path = "bench/cluster_baseline.rs"]
mod cluster_baseline;
#[path = "bench/contended.rs"]
mod contended;
#[path = "bench/distinct.rs"]
mod distinct;
#[path = "bench/handwritten.rs"]
mod handwritten;
#[path = "bench/kinds.rs"]
mod kinds;
#[path = "bench/local_ring.rs"]
mod local_ring;
#[path = "bench/locked.rs"]
mod locked;
#[path = "bench/paired.rs"]
mod paired;
#[path = "bench/redlock_baseline.rs"]
mod redlock_baseline;
#[path = "bench/report.rs"]
mod report;
#[path = "bench/ring.rs"]
mod ring;
#[path = "bench/scale.rs"]
mod scale;
#[path = "bench/server.rs"]
mod server;
#[path = "bench/stats.rs"]
mod stats;
#[path = "bench/transport.rs"]
mod transport;
#[path = "bench/transport_table.rs"]
mod transport_table;
#[path = "bench/uncontended.rs"]
mod uncontended;

use std::time::Duration;

use baseline::{Acquire, Baselines};
use contended::Measured;
use handwritten::Handwritten;
use locked::Backend;
use redis_locked_examples::awake::Awake;
use report::{Table, Target, nanos, paired_ratio, rate, ratio, thousands};
use scale::Scale;
use server::{Inspector, Machine};
use stats::Contention;
use uncontended::Uncontended;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How much work each section does.
pub struct Sizes {
    /// Rounds of the back-to-back loops; each round runs every loop once.
    rounds: usize,
    ping: usize,
    warmup: usize,
    loops: usize,
    contended_warmup: usize,
    per_worker: usize,
    scale_tasks: usize,
    scale_limit: Duration,
    /// Rounds of the transport A/B, each running every stack once with `loops` cycles per
    /// caller.
    ab_rounds: usize,
}

impl Sizes {
    /// 20,000 calls of each loop in all, after 1,000 of warm-up.
    const FULL: Sizes = Sizes {
        rounds: 5,
        ping: 4_000,
        warmup: 200,
        loops: 4_000,
        contended_warmup: 5,
        per_worker: 500,
        scale_tasks: 10_000,
        scale_limit: Duration::from_secs(120),
        ab_rounds: 5,
    };

    /// For smoke tests: finishes in a few seconds.
    const QUICK: Sizes = Sizes {
        rounds: 3,
        ping: 700,
        warmup: 50,
        loops: 700,
        contended_warmup: 2,
        per_worker: 50,
        scale_tasks: 1_000,
        scale_limit: Duration::from_secs(30),
        ab_rounds: 5,
    };
}

/// The multi-thread runtime every async section runs on: 2 workers.
fn runtime() -> Res<tokio::runtime::Runtime> {
    if std::env::var_os("BENCH_CURRENT_THREAD").is_some() {
        return Ok(tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?);
    }
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

const TASKS: u32 = 8;
const THREADS: u32 = 8;
const PROCESSES: u32 = 4;
const TASKS_PER_PROCESS: u32 = 2;
const CLUSTER_MASTERS: usize = 3;
const REDLOCK_SERVERS: usize = 3;

/// A client kind besides the single server, with the section its rows go in.
struct OtherBackend {
    backend: Backend,
    section: String,
    /// Connections to the servers whose commands count: the lock's shard, or every server.
    inspector: Inspector,
    /// The cluster's seed nodes, or the Redlock servers: where the hand-written loop runs.
    urls: Vec<String>,
}

/// Starts a cluster and Redlock servers and registers a client on each, under the names the
/// annotated functions of [`locked`] use. The servers stop when the guards are dropped.
/// Every client kind the loops measure, one server first, and where each other kind's
/// hand-written loop runs.
fn kinds_and_servers(others: &[OtherBackend]) -> (Vec<Backend>, Vec<(Backend, &[String])>) {
    let kinds = std::iter::once(Backend::Single)
        .chain(others.iter().map(|o| o.backend))
        .collect();
    let servers = others
        .iter()
        .map(|o| (o.backend, o.urls.as_slice()))
        .collect();
    (kinds, servers)
}

fn other_backends() -> Res<(
    redis_locked_tests::RedisCluster,
    redis_locked_tests::RedlockServers,
    Vec<OtherBackend>,
)> {
    let cluster = redis_locked_tests::RedisCluster::start(CLUSTER_MASTERS, 0);
    redis_locked::ClientBuilder::cluster(cluster.seed_urls()).register("bench-cluster")?;
    let redlock = redis_locked_tests::RedlockServers::start(REDLOCK_SERVERS);
    redis_locked::ClientBuilder::redlock(redlock.urls()).register("bench-redlock")?;
    let lock_key = format!("lock:{{bench:{}}}", contended::TASKS_LOCK);
    let backends = vec![
        OtherBackend {
            backend: Backend::Cluster,
            section: format!("Cluster ({CLUSTER_MASTERS} masters)"),
            inspector: Inspector::new(cluster.connection_to_master_of(&lock_key)),
            urls: cluster.seed_urls(),
        },
        OtherBackend {
            backend: Backend::Redlock,
            section: format!("Redlock ({REDLOCK_SERVERS} servers)"),
            inspector: Inspector::of_all(
                redlock
                    .servers()
                    .iter()
                    .map(redis_locked_tests::RedisServer::connection)
                    .collect(),
            ),
            urls: redlock.urls(),
        },
    ];
    Ok((cluster, redlock, backends))
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        return contended::worker_main(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("ring-worker") {
        return ring::worker_main(&args[1..]);
    }
    let quick = args.iter().any(|a| a == "--quick");
    // Only the transport A/B, for measuring it again without the rest.
    let only_transport = args.iter().any(|a| a == "--only-transport");
    let sizes = if quick { Sizes::QUICK } else { Sizes::FULL };

    let server = redis_locked_tests::RedisServer::start();
    let url = server.url();
    redis_locked::init(&url)?;
    let mut inspector = Inspector::new(server.connection());
    let machine = inspector.machine()?;
    // Many distinct locks at once, for growing numbers of names.
    if args.iter().any(|a| a == "--only-distinct") {
        println!("{}", machine_line(&machine));
        for tasks in [1_000, 10_000, 100_000] {
            let d = distinct::run(&url, &format!("distinct-{tasks}"), tasks)?;
            println!(
                "{} tasks, a lock each: {:.2} s ({:.0} locks/s), {:.2}x the pipelined hand-written loop ({:.3} s); {} connections opened, at most {} at once (cap 16); peak RSS {}",
                d.tasks,
                d.elapsed.as_secs_f64(),
                d.tasks as f64 / d.elapsed.as_secs_f64(),
                d.baseline.as_secs_f64() / d.elapsed.as_secs_f64(),
                d.baseline.as_secs_f64(),
                d.connections_opened,
                d.connections_at_once,
                d.peak_rss_kib.map_or("unknown".to_string(), |kib| format!(
                    "{:.1} MB",
                    kib as f64 / 1024.0
                )),
            );
        }
        return Ok(());
    }
    // Only the 10,000 waiters on one lock, once (its annotated fn is bound to a client
    // registered once per process): for working on their memory.
    if args.iter().any(|a| a == "--only-scale") {
        println!("{}", machine_line(&machine));
        let s = scale::run(&url, Sizes::FULL.scale_tasks, Sizes::FULL.scale_limit)?;
        println!(
            "{} tasks waiting on one lock: {:.2} s, {}/{} acquired once, at most {} connections, peak RSS {}{}",
            s.tasks,
            s.elapsed.as_secs_f64(),
            s.exactly_once,
            s.tasks,
            s.connections_at_once,
            s.peak_rss_kib.map_or("unknown".to_string(), |kib| format!(
                "{:.1} MB",
                kib as f64 / 1024.0
            )),
            if s.rss_peak_reset {
                ""
            } else {
                " (the whole run's)"
            },
        );
        return Ok(());
    }
    // Only (c), several times: for working on the cross-process path.
    if let Some(at) = args.iter().position(|a| a == "--only-processes") {
        let runs: u32 = args.get(at + 1).and_then(|n| n.parse().ok()).unwrap_or(5);
        println!("{}", machine_line(&machine));
        return only_processes(&mut inspector, &url, &sizes, runs);
    }
    // Only (a) and (b), several times, each with its ring: for working on handovers inside
    // a process.
    if let Some(at) = args.iter().position(|a| a == "--only-local") {
        let runs: u32 = args.get(at + 1).and_then(|n| n.parse().ok()).unwrap_or(5);
        println!("{}", machine_line(&machine));
        return only_local(&mut inspector, &url, &sizes, runs);
    }
    // Only the uncontended rows of every client kind, with `--awake` while a thread spins.
    if args.iter().any(|a| a == "--only-uncontended") {
        let (_cluster, _redlock, others) = other_backends()?;
        let (kinds, other_servers) = kinds_and_servers(&others);
        let awake = args.iter().any(|a| a == "--awake").then(Awake::start);
        let (base, uncontended, hands) =
            measure_loops(&url, inspector.conn(), &sizes, &kinds, &other_servers)?;
        drop(awake);
        let mut table = Table::default();
        baseline_rows(&mut table, &base);
        uncontended_rows(&mut table, "Uncontended", "", &base, &uncontended[0], true);
        for ((other, attr), hand) in others.iter().zip(&uncontended[1..]).zip(&hands) {
            handwritten::rows(&mut table, &other.section, other.backend, hand, attr);
        }
        print_report(&machine, &base, &sizes, quick, &table);
        return Ok(());
    }
    if only_transport {
        println!("# redis-locked bench: transport A/B only\n");
        println!("{}", machine_line(&machine));
    } else {
        lock_sections(&url, &mut inspector, &machine, &sizes, quick)?;
    }
    let load_before = load_average();
    let ab = transport::run(&url, &sizes)?;
    print!(
        "{}",
        transport_table::render(&ab, sizes.ab_rounds, sizes.loops)
    );
    println!(
        "Load average (1 min) {load_before} before the A/B, {} after.",
        load_average()
    );
    Ok(())
}

/// Everything but the transport A/B: the lock's figures against the baselines, and the
/// table of them.
fn lock_sections(
    url: &str,
    inspector: &mut Inspector,
    machine: &Machine,
    sizes: &Sizes,
    quick: bool,
) -> Res<()> {
    eprintln!("starting a cluster of {CLUSTER_MASTERS} and {REDLOCK_SERVERS} Redlock servers ...");
    let (_cluster, _redlock, mut others) = other_backends()?;
    let (kinds, other_servers) = kinds_and_servers(&others);

    eprintln!("baselines and uncontended ...");
    let (base, mut uncontended, others_handwritten) =
        measure_loops(url, inspector.conn(), sizes, &kinds, &other_servers)?;
    let others_uncontended = uncontended.split_off(1);
    let uncontended = &uncontended[0];
    eprintln!("contended: tasks ...");
    let tasks = contended::tasks(inspector, TASKS, sizes, Backend::Single)?;
    let tasks_ring = local_ring::tasks(url, TASKS, sizes)?;
    let mut several = Vec::new();
    for kind in [kinds::Kind::Semaphore, kinds::Kind::Shared] {
        eprintln!("contended: tasks, a lock several hold ...");
        several.push((kind, kinds::tasks(inspector, TASKS, sizes, kind)?));
    }
    eprintln!("contended: threads ...");
    let threads = contended::threads(inspector, THREADS, sizes)?;
    let threads_ring = local_ring::threads(url, THREADS, sizes)?;
    eprintln!("contended: processes ...");
    let processes = contended::processes(inspector, url, sizes)?;
    eprintln!("contended: processes, the pub/sub rings ...");
    let ring =
        |inspector: &mut Inspector, delivery| ring::processes(inspector, url, sizes, delivery);
    let rings = [
        ring(inspector, ring::Delivery::Direct)?,
        ring(inspector, ring::Delivery::ThroughThread)?,
    ];
    let mut others_tasks = Vec::new();
    for other in &mut others {
        eprintln!("{}: contended tasks ...", other.section);
        others_tasks.push(contended::tasks(
            &mut other.inspector,
            TASKS,
            sizes,
            other.backend,
        )?);
    }
    eprintln!("scale ...");
    let scale = scale::run(url, sizes.scale_tasks, sizes.scale_limit)?;

    let mut table = Table::default();
    baseline_rows(&mut table, &base);
    uncontended_rows(&mut table, "Uncontended", "", &base, uncontended, true);
    let contended = [
        (format!("Contended (a) {TASKS} tasks"), &tasks, true),
        (format!("Contended (b) {THREADS} threads"), &threads, true),
        (
            format!("Contended (c) {PROCESSES} proc x {TASKS_PER_PROCESS} tasks"),
            &processes,
            false,
        ),
    ];
    for (section, measured, in_process) in &contended {
        contended_rows(&mut table, section, "", &base, measured, *in_process, true);
    }
    let [direct, through] = &rings;
    let rings = [
        (0, "ring of tasks, through channels", &tasks_ring),
        (1, "ring of threads, through channels", &threads_ring),
        (2, "pub/sub ring, direct", &direct.contention),
        (2, "pub/sub ring, through a thread", &through.contention),
    ];
    for (scenario, name, ring) in rings {
        let (section, measured, _) = &contended[scenario];
        ring_row(&mut table, section, name, &base, measured, ring);
    }
    let section = format!("Contended (a) {TASKS} tasks, several holders");
    kinds::rows(&mut table, &section, &tasks, &several);
    scale_rows(&mut table, &base, &scale, sizes);
    let others_measured = others_uncontended
        .iter()
        .zip(&others_handwritten)
        .zip(&others_tasks);
    for (other, ((attr, hand), measured)) in others.iter().zip(others_measured) {
        let section = other.section.as_str();
        handwritten::rows(&mut table, section, other.backend, hand, attr);
        uncontended_rows(&mut table, section, "uncontended ", &base, attr, false);
        let prefix = format!("(a) {TASKS} tasks: ");
        contended_rows(&mut table, section, &prefix, &base, measured, true, false);
        handwritten::handoff_rows(&mut table, section, &prefix, other.backend, hand, measured);
    }
    print_report(machine, &base, sizes, quick, &table);
    Ok(())
}

/// The back-to-back loops (PING, hand-written lock, the hand-written loop of each of
/// `others` on its servers, attribute on each of `kinds`) in alternating rounds, keeping
/// each loop's best round: on a shared machine, load from elsewhere then slows the loops
/// alike instead of skewing their ratios. Each round also gives the attribute's ratio to
/// its own kind's hand-written loop of that round (`Uncontended::rounds_vs_hand`). The
/// attribute's figures come in the order of `kinds`, the other hand-written loops' in the
/// order of `others`.
fn measure_loops(
    url: &str,
    conn: &mut redis::Connection,
    sizes: &Sizes,
    kinds: &[Backend],
    others: &[(Backend, &[String])],
) -> Res<(Baselines, Vec<Uncontended>, Vec<Handwritten>)> {
    let mut base = Baselines {
        ping_per_second: 0.0,
        ping_p50_ns: u64::MAX,
        handwritten_async: 0.0,
        handwritten_sync: 0.0,
        fenced_async: 0.0,
        fenced_sync: 0.0,
    };
    let mut attrs: Vec<Uncontended> = kinds
        .iter()
        .map(|_| Uncontended {
            async_calls: 0.0,
            sync_calls: 0.0,
            fenced_async_calls: 0.0,
            fenced_sync_calls: 0.0,
            renewed_async_calls: 0.0,
            renewed_sync_calls: 0.0,
            renewed_vs_plain: Default::default(),
            rounds_vs_hand: Default::default(),
        })
        .collect();
    // Each kind's loops, best rounds; the single server's into `base` at the end.
    let mut hands: Vec<Handwritten> = kinds.iter().map(|_| Handwritten::default()).collect();
    let single = [url.to_string()];
    let urls: Vec<&[String]> = kinds
        .iter()
        .map(|kind| {
            others
                .iter()
                .find(|(backend, _)| backend == kind)
                .map_or(&single[..], |(_, urls)| urls)
        })
        .collect();
    let at_single = kinds
        .iter()
        .position(|kind| *kind == Backend::Single)
        .ok_or("the single server is measured")?;
    // The four calls, numbered as `Uncontended::keep` numbers them: the async ones first.
    let calls = [
        (0, false, Acquire::Plain),
        (2, false, Acquire::Fenced),
        (1, true, Acquire::Plain),
        (3, true, Acquire::Fenced),
    ];
    for _ in 0..sizes.rounds {
        let (per_second, p50) = baseline::ping(conn, sizes)?;
        base.ping_per_second = base.ping_per_second.max(per_second);
        base.ping_p50_ns = base.ping_p50_ns.min(p50);
        for (at, sync, acquire) in calls {
            for (((attr, hand), &kind), urls) in
                attrs.iter_mut().zip(&mut hands).zip(kinds).zip(&urls)
            {
                let against = paired::Against::Loop(acquire);
                let measured = match sync {
                    true => paired::sync(sizes, kind, urls, against)?,
                    false => paired::asynchronous(sizes, kind, urls, against)?,
                };
                attr.keep(at, &measured);
                hand.keep(at, measured.other);
            }
        }
        // `auto_renew` on the single server, against the same functions without it.
        for sync in [false, true] {
            let (backend, against) = (Backend::Single, paired::Against::WithoutRenewal);
            let measured = match sync {
                true => paired::sync(sizes, backend, urls[at_single], against)?,
                false => paired::asynchronous(sizes, backend, urls[at_single], against)?,
            };
            attrs[at_single].keep_renewed(sync, &measured);
        }
    }
    let single = hands.remove(at_single);
    base.handwritten_async = single.plain_async;
    base.fenced_async = single.fenced_async;
    base.handwritten_sync = single.plain_sync;
    base.fenced_sync = single.fenced_sync;
    Ok((base, attrs, hands))
}

/// `--only-processes`: (c) `runs` times, each with its pub/sub rings.
fn only_processes(inspector: &mut Inspector, url: &str, sizes: &Sizes, runs: u32) -> Res<()> {
    for _ in 0..runs {
        let (_, rt_ns) = baseline::ping(inspector.conn(), sizes)?;
        let m = contended::processes(inspector, url, sizes)?;
        let name = format!("(c) {PROCESSES} processes x {TASKS_PER_PROCESS} tasks");
        println!("{}", contended_line(&name, &m, rt_ns));
        for (name, delivery) in [
            ("direct", ring::Delivery::Direct),
            ("through a thread", ring::Delivery::ThroughThread),
        ] {
            let ring = ring::processes(inspector, url, sizes, delivery)?;
            let (r, c) = (&ring.contention, &m.contention);
            println!(
                "    pub/sub ring, {name}: {:.0} passes/s, handoff p50 {:.1} RT, p99 {:.1} RT ({:.1} us), wait max {:.2} ms; (c)'s p99 is {:.2}x",
                r.per_second,
                r.handoff_p50_ns as f64 / rt_ns as f64,
                r.handoff_p99_ns as f64 / rt_ns as f64,
                r.handoff_p99_ns as f64 / 1e3,
                r.wait_max_ns as f64 / 1e6,
                c.handoff_p99_ns as f64 / r.handoff_p99_ns as f64,
            );
        }
    }
    Ok(())
}

/// `--only-local`: (a) and (b) `runs` times, each with its ring of tasks or threads.
fn only_local(inspector: &mut Inspector, url: &str, sizes: &Sizes, runs: u32) -> Res<()> {
    for _ in 0..runs {
        let (_, rt_ns) = baseline::ping(inspector.conn(), sizes)?;
        let tasks = contended::tasks(inspector, TASKS, sizes, Backend::Single)?;
        let tasks_ring = local_ring::tasks(url, TASKS, sizes)?;
        let threads = contended::threads(inspector, THREADS, sizes)?;
        let threads_ring = local_ring::threads(url, THREADS, sizes)?;
        for (name, m, ring) in [
            (format!("(a) {TASKS} tasks"), &tasks, &tasks_ring),
            (format!("(b) {THREADS} threads"), &threads, &threads_ring),
        ] {
            println!(
                "{}; ring p99 {:.2} RT ({:.1} us), ours {:.2}x",
                contended_line(&name, m, rt_ns),
                ring.handoff_p99_ns as f64 / rt_ns as f64,
                ring.handoff_p99_ns as f64 / 1e3,
                m.contention.handoff_p99_ns as f64 / ring.handoff_p99_ns as f64,
            );
        }
    }
    Ok(())
}

/// One line of a contended run's figures, handoffs in RT (`rt_ns`, a PING round trip of
/// the same run).
fn contended_line(name: &str, m: &Measured, rt_ns: u64) -> String {
    let c = &m.contention;
    let rt = |ns: i64| ns as f64 / rt_ns as f64;
    format!(
        "{name}: {:.0} acq/s, PING p50 {:.1} us, handoff p50 {:.2} RT, p99 {:.2} RT ({:.1} us), wait max {:.2} ms, {:.2} commands/acq",
        c.per_second,
        rt_ns as f64 / 1e3,
        rt(c.handoff_p50_ns),
        rt(c.handoff_p99_ns),
        c.handoff_p99_ns as f64 / 1e3,
        c.wait_max_ns as f64 / 1e6,
        m.commands_per_acquisition,
    )
}

fn print_report(machine: &Machine, base: &Baselines, sizes: &Sizes, quick: bool, table: &Table) {
    let rounds = sizes.rounds;
    let mode = if quick { "quick" } else { "full" };
    println!("# redis-locked bench ({mode} run)\n");
    println!("{}", machine_line(machine));
    print!("{}", table.render());
    println!(
        "\nRT = one PING round trip p50 ({}). PING/2 = half the PING rate: the ideal for a \
         lock + unlock of two round trips. Back-to-back loops: best of {} rounds; \
         the calls against their hand-written loop: the median of the rounds' ratios (range), \
         each the median of 20 pairs of blocks of calls and loop run in turn on the same \
         thread or task, then the ratio of the best rounds. \
         Commands per acquisition count those run inside Lua scripts too; for Cluster those \
         of the lock's shard, for Redlock those of all its servers. Cluster and Redlock rows \
         are held to the single-server baselines; their targets are the single-server ones, \
         shown for comparison and not judged, except the rows against the hand-written loop \
         on the same servers.",
        nanos(base.ping_p50_ns as i64),
        rounds
    );
}

fn machine_line(machine: &Machine) -> String {
    format!(
        "Machine: nproc {}, CPU {}, redis-server {} (loopback TCP)\n",
        machine.nproc, machine.cpu, machine.redis_version
    )
}

/// The 1-minute load average of the machine, as `uptime` gives it: other work on it slows
/// the figures.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

fn baseline_rows(table: &mut Table, base: &Baselines) {
    let half_ping = base.ping_per_second / 2.0;
    let section = "Baseline";
    table.row(
        section,
        "PING, 1 sync connection",
        rate(base.ping_per_second),
        String::new(),
        Target::none(),
    );
    table.row(
        section,
        "PING round trip p50 (RT)",
        nanos(base.ping_p50_ns as i64),
        String::new(),
        Target::none(),
    );
    for (kind, calls) in [
        ("SET NX + EVALSHA, async", base.handwritten_async),
        ("SET NX + EVALSHA, sync", base.handwritten_sync),
        ("fenced EVALSHA + EVALSHA, async", base.fenced_async),
        ("fenced EVALSHA + EVALSHA, sync", base.fenced_sync),
    ] {
        let figure = format!("hand-written {kind}");
        table.row(
            section,
            &figure,
            rate(calls),
            ratio(calls / half_ping) + " PING/2",
            Target::none(),
        );
    }
}

/// A target judged on the single-server rows, and only shown on the others.
fn target(text: &str, met: bool, judged: bool) -> Target {
    if judged {
        Target::new(text, met)
    } else {
        Target::unjudged(text)
    }
}

/// `prefix` starts every figure's name; `judged`: whether the targets are held.
fn uncontended_rows(
    table: &mut Table,
    section: &str,
    prefix: &str,
    base: &Baselines,
    attr: &Uncontended,
    judged: bool,
) {
    let half_ping = base.ping_per_second / 2.0;
    // A function that binds no guard takes no fencing token (a bare `SET NX PX`): it is
    // held to the plain hand-written loop. One that binds its guard takes a token: it is
    // held to the hand-written loop that does the same.
    let kinds = [
        (
            "async fn",
            attr.async_calls,
            base.handwritten_async,
            "unfenced",
        ),
        (
            "sync fn",
            attr.sync_calls,
            base.handwritten_sync,
            "unfenced",
        ),
        (
            "async fn with guard",
            attr.fenced_async_calls,
            base.fenced_async,
            "fenced",
        ),
        (
            "sync fn with guard",
            attr.fenced_sync_calls,
            base.fenced_sync,
            "fenced",
        ),
    ];
    for ((kind, calls, handwritten, loop_kind), rounds) in
        kinds.into_iter().zip(&attr.rounds_vs_hand)
    {
        let vs_ping = calls / half_ping;
        table.row(
            section,
            &format!("{prefix}{kind}: calls vs PING/2"),
            rate(calls),
            ratio(vs_ping),
            target(">= 0.85x", vs_ping >= 0.85, judged),
        );
        // The single server's rows are held to the median of the rounds' ratios; the other
        // kinds' are shown against the single server's loops for comparison only, and
        // their rounds were paired with their own loops (see `handwritten.rs`).
        let (vs_hand, text) = paired_ratio(if judged { rounds } else { &[] }, calls / handwritten);
        table.row(
            section,
            &format!("{prefix}{kind}: calls vs hand-written {loop_kind}"),
            rate(calls),
            text,
            target(">= 0.97x", vs_hand >= 0.97, judged),
        );
    }
    // With `auto_renew` (as without `expire`): the renewal a call that ends before its
    // first renewal does not use, against the same function without it. Not a target of
    // its own: shown so that its cost stays in sight.
    for (kind, renewed, plain, rounds) in [
        (
            "async fn",
            attr.renewed_async_calls,
            attr.async_calls,
            &attr.renewed_vs_plain[0],
        ),
        (
            "sync fn",
            attr.renewed_sync_calls,
            attr.sync_calls,
            &attr.renewed_vs_plain[1],
        ),
    ] {
        if renewed > 0.0 {
            table.row(
                section,
                &format!("{prefix}{kind} with auto_renew: calls vs without"),
                rate(renewed),
                paired_ratio(rounds, renewed / plain).1,
                Target::none(),
            );
        }
    }
}

/// `in_process`: the fairness and max-wait targets apply to one process's tasks/threads.
/// `prefix` starts every figure's name; `judged`: whether the targets are held.
fn contended_rows(
    table: &mut Table,
    section: &str,
    prefix: &str,
    base: &Baselines,
    m: &Measured,
    in_process: bool,
    judged: bool,
) {
    let c = &m.contention;
    let rt = base.ping_p50_ns as f64;
    let in_rt = |ns: i64| format!("{:.3} RT", ns as f64 / rt);
    let only_in_process = |text: &str, met: bool| {
        if in_process {
            target(text, met, judged)
        } else {
            Target::none()
        }
    };
    let handoff_p50 = c.handoff_p50_ns as f64 / rt;
    let handoff_p99 = c.handoff_p99_ns as f64 / rt;
    let max_wait_ms = c.wait_max_ns as f64 / 1e6;

    table.row(
        section,
        &format!(
            "{prefix}acquisitions ({} in all)",
            thousands(c.acquisitions as u64)
        ),
        rate(c.per_second),
        ratio(c.per_second / (base.ping_per_second / 2.0)) + " PING/2",
        Target::none(),
    );
    table.row(
        section,
        &format!("{prefix}handoff p50"),
        nanos(c.handoff_p50_ns),
        in_rt(c.handoff_p50_ns),
        target("<= 1.5 RT", handoff_p50 <= 1.5, judged),
    );
    table.row(
        section,
        &format!("{prefix}handoff p99"),
        nanos(c.handoff_p99_ns),
        in_rt(c.handoff_p99_ns),
        target("<= 5 RT", handoff_p99 <= 5.0, judged),
    );
    table.row(
        section,
        &format!("{prefix}releaser re-takes"),
        format!("{:.1}%", c.retake_share * 100.0),
        String::new(),
        only_in_process("<= 25%", c.retake_share <= 0.25),
    );
    for (figure, ns) in [("wait p50", c.wait_p50_ns), ("wait p99", c.wait_p99_ns)] {
        table.row(
            section,
            &format!("{prefix}{figure}"),
            nanos(ns as i64),
            in_rt(ns as i64),
            Target::none(),
        );
    }
    table.row(
        section,
        &format!("{prefix}wait max"),
        nanos(c.wait_max_ns as i64),
        in_rt(c.wait_max_ns as i64),
        only_in_process("< 20 ms", max_wait_ms < 20.0),
    );
    table.row(
        section,
        &format!("{prefix}server commands per acquisition"),
        format!("{:.2}", m.commands_per_acquisition),
        String::new(),
        target("<= 8", m.commands_per_acquisition <= 8.0, judged),
    );
}

/// A contended scenario's handoffs against a ring that passes a token around as many
/// workers (see `local_ring.rs` and `ring.rs`).
fn ring_row(
    table: &mut Table,
    section: &str,
    name: &str,
    base: &Baselines,
    ours: &Measured,
    ring: &Contention,
) {
    let rt = base.ping_p50_ns as f64;
    table.row(
        section,
        &format!("{name}: handoff p50 / p99; wait max"),
        format!(
            "{} / {}; {}",
            nanos(ring.handoff_p50_ns),
            nanos(ring.handoff_p99_ns),
            nanos(ring.wait_max_ns as i64)
        ),
        format!(
            "{:.3} / {:.3} RT; this scenario's p99 {}",
            ring.handoff_p50_ns as f64 / rt,
            ring.handoff_p99_ns as f64 / rt,
            ratio(ours.contention.handoff_p99_ns as f64 / ring.handoff_p99_ns as f64)
        ),
        Target::none(),
    );
}

fn scale_rows(table: &mut Table, base: &Baselines, s: &Scale, sizes: &Sizes) {
    let section = format!("Scale: {} tasks, 1 lock", thousands(s.tasks as u64));
    let section = section.as_str();
    let all = thousands(s.tasks as u64);
    let per_task_ns = s.elapsed.as_nanos() as f64 / s.tasks as f64;
    table.row(
        section,
        "total time",
        nanos(s.elapsed.as_nanos() as i64),
        format!("{:.2} RT per task", per_task_ns / base.ping_p50_ns as f64),
        Target::none(),
    );
    table.row(
        section,
        "acquired exactly once",
        format!("{}/{all}", thousands(s.exactly_once as u64)),
        String::new(),
        Target::new(format!("{all}/{all}"), s.exactly_once == s.tasks),
    );
    table.row(
        section,
        &format!("all finished within {} s", sizes.scale_limit.as_secs()),
        if s.all_finished { "yes" } else { "no" }.to_string(),
        String::new(),
        Target::new("yes", s.all_finished),
    );
    table.row(
        section,
        "Redis connections opened",
        format!(
            "{} (max {} open at once)",
            s.connections_opened, s.connections_at_once
        ),
        String::new(),
        Target::new("<= 8", s.connections_opened <= 8),
    );
    let (value, met) = match s.peak_rss_kib {
        Some(kib) => {
            let mb = kib as f64 * 1024.0 / 1e6;
            let scope = if s.rss_peak_reset { "" } else { " (whole run)" };
            (format!("{mb:.1} MB{scope}"), mb < 100.0)
        }
        None => ("unknown".to_string(), false),
    };
    table.row(
        section,
        "peak RSS of the process",
        value,
        String::new(),
        Target::new("< 100 MB", met),
    );
}
