//! Benchmark of `#[redis_lock]` against plain Redis round trips and a hand-written lock.
//!
//! ```text
//! cargo run --release -p redis-lock-examples --example bench [-- --quick]
//! ```
//!
//! Starts its own redis-server, measures everything in one run, and prints one markdown
//! table: each figure, its ratio to the baselines of the same run, its target, and whether
//! the target was met. Progress goes to stderr, the table to stdout.

#[path = "bench/baseline.rs"]
mod baseline;
#[path = "bench/clock.rs"]
mod clock;
#[path = "bench/contended.rs"]
mod contended;
#[path = "bench/locked.rs"]
mod locked;
#[path = "bench/report.rs"]
mod report;
#[path = "bench/scale.rs"]
mod scale;
#[path = "bench/server.rs"]
mod server;
#[path = "bench/stats.rs"]
mod stats;
#[path = "bench/uncontended.rs"]
mod uncontended;

use std::time::Duration;

use baseline::{Acquire, Baselines};
use contended::Measured;
use report::{Table, Target, nanos, rate, ratio, thousands};
use scale::Scale;
use server::{Inspector, Machine};
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
    };
}

/// The multi-thread runtime every async section runs on: 2 workers.
fn runtime() -> Res<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

const TASKS: u32 = 8;
const THREADS: u32 = 8;
const PROCESSES: u32 = 4;
const TASKS_PER_PROCESS: u32 = 2;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        return contended::worker_main(&args[1..]);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let sizes = if quick { Sizes::QUICK } else { Sizes::FULL };

    let server = redis_lock_tests::RedisServer::start();
    let url = server.url();
    redis_lock::init(&url)?;
    let mut inspector = Inspector::new(server.connection());
    let machine = inspector.machine()?;

    eprintln!("baselines and uncontended ...");
    let (base, uncontended) = measure_loops(&url, inspector.conn(), &sizes)?;
    eprintln!("contended: tasks ...");
    let tasks = contended::tasks(&mut inspector, TASKS, &sizes)?;
    eprintln!("contended: threads ...");
    let threads = contended::threads(&mut inspector, THREADS, &sizes)?;
    eprintln!("contended: processes ...");
    let processes =
        contended::processes(&mut inspector, &url, PROCESSES, TASKS_PER_PROCESS, &sizes)?;
    eprintln!("scale ...");
    let scale = scale::run(&url, sizes.scale_tasks, sizes.scale_limit)?;

    let mut table = Table::default();
    baseline_rows(&mut table, &base);
    uncontended_rows(&mut table, &base, &uncontended);
    let contended = [
        (format!("Contended (a) {TASKS} tasks"), &tasks, true),
        (format!("Contended (b) {THREADS} threads"), &threads, true),
        (
            format!("Contended (c) {PROCESSES} proc x {TASKS_PER_PROCESS} tasks"),
            &processes,
            false,
        ),
    ];
    for (section, measured, in_process) in contended {
        contended_rows(&mut table, &section, &base, measured, in_process);
    }
    scale_rows(&mut table, &base, &scale, &sizes);
    print_report(&machine, &base, &sizes, quick, &table);
    Ok(())
}

/// The back-to-back loops (PING, hand-written lock, attribute) in alternating rounds,
/// keeping each loop's best round: on a shared machine, load from elsewhere then slows
/// the loops alike instead of skewing their ratios.
fn measure_loops(
    url: &str,
    conn: &mut redis::Connection,
    sizes: &Sizes,
) -> Res<(Baselines, Uncontended)> {
    let mut base = Baselines {
        ping_per_second: 0.0,
        ping_p50_ns: u64::MAX,
        handwritten_async: 0.0,
        handwritten_sync: 0.0,
        fenced_async: 0.0,
        fenced_sync: 0.0,
    };
    let mut attr = Uncontended {
        async_calls: 0.0,
        sync_calls: 0.0,
    };
    for _ in 0..sizes.rounds {
        let (per_second, p50) = baseline::ping(conn, sizes)?;
        base.ping_per_second = base.ping_per_second.max(per_second);
        base.ping_p50_ns = base.ping_p50_ns.min(p50);
        base.handwritten_async =
            base.handwritten_async
                .max(baseline::handwritten_async(url, sizes, Acquire::Plain)?);
        base.fenced_async =
            base.fenced_async
                .max(baseline::handwritten_async(url, sizes, Acquire::Fenced)?);
        attr.async_calls = attr.async_calls.max(uncontended::async_rate(sizes)?);
        base.handwritten_sync =
            base.handwritten_sync
                .max(baseline::handwritten_sync(url, sizes, Acquire::Plain)?);
        base.fenced_sync =
            base.fenced_sync
                .max(baseline::handwritten_sync(url, sizes, Acquire::Fenced)?);
        attr.sync_calls = attr.sync_calls.max(uncontended::sync_rate(sizes)?);
    }
    Ok((base, attr))
}

fn print_report(machine: &Machine, base: &Baselines, sizes: &Sizes, quick: bool, table: &Table) {
    let rounds = sizes.rounds;
    let mode = if quick { "quick" } else { "full" };
    println!("# redis-lock bench ({mode} run)\n");
    println!(
        "Machine: nproc {}, CPU {}, redis-server {} (loopback TCP)\n",
        machine.nproc, machine.cpu, machine.redis_version
    );
    print!("{}", table.render());
    println!(
        "\nRT = one PING round trip p50 ({}). PING/2 = half the PING rate: the ideal for a \
         lock + unlock of two round trips. Back-to-back loops: best of {} alternating rounds. \
         Commands per acquisition count those run inside Lua scripts too.",
        nanos(base.ping_p50_ns as i64),
        rounds
    );
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

fn uncontended_rows(table: &mut Table, base: &Baselines, attr: &Uncontended) {
    let half_ping = base.ping_per_second / 2.0;
    // The crate takes a fencing token with every lock: it is held to the hand-written loop
    // that does the same; the ratio to the plain loop shows what the token costs.
    let kinds = [
        (
            "async fn",
            attr.async_calls,
            base.fenced_async,
            base.handwritten_async,
        ),
        (
            "sync fn",
            attr.sync_calls,
            base.fenced_sync,
            base.handwritten_sync,
        ),
    ];
    for (kind, calls, handwritten, plain) in kinds {
        let vs_ping = calls / half_ping;
        let vs_hand = calls / handwritten;
        let vs_plain = calls / plain;
        let section = "Uncontended";
        table.row(
            section,
            &format!("{kind}: calls vs PING/2"),
            rate(calls),
            ratio(vs_ping),
            Target::new(">= 0.85x", vs_ping >= 0.85),
        );
        table.row(
            section,
            &format!("{kind}: calls vs hand-written fenced"),
            rate(calls),
            ratio(vs_hand),
            Target::new(">= 0.95x", vs_hand >= 0.95),
        );
        table.row(
            section,
            &format!("{kind}: calls vs hand-written unfenced"),
            rate(calls),
            ratio(vs_plain),
            Target::none(),
        );
    }
}

/// `in_process`: the fairness and max-wait targets apply to one process's tasks/threads.
fn contended_rows(
    table: &mut Table,
    section: &str,
    base: &Baselines,
    m: &Measured,
    in_process: bool,
) {
    let c = &m.contention;
    let rt = base.ping_p50_ns as f64;
    let in_rt = |ns: i64| format!("{:.3} RT", ns as f64 / rt);
    let only_in_process = |text: &str, met: bool| {
        if in_process {
            Target::new(text, met)
        } else {
            Target::none()
        }
    };
    let handoff_p50 = c.handoff_p50_ns as f64 / rt;
    let handoff_p99 = c.handoff_p99_ns as f64 / rt;
    let max_wait_ms = c.wait_max_ns as f64 / 1e6;

    table.row(
        section,
        &format!("acquisitions ({} in all)", thousands(c.acquisitions as u64)),
        rate(c.per_second),
        ratio(c.per_second / (base.ping_per_second / 2.0)) + " PING/2",
        Target::none(),
    );
    table.row(
        section,
        "handoff p50",
        nanos(c.handoff_p50_ns),
        in_rt(c.handoff_p50_ns),
        Target::new("<= 1.5 RT", handoff_p50 <= 1.5),
    );
    table.row(
        section,
        "handoff p99",
        nanos(c.handoff_p99_ns),
        in_rt(c.handoff_p99_ns),
        Target::new("<= 5 RT", handoff_p99 <= 5.0),
    );
    table.row(
        section,
        "releaser re-takes",
        format!("{:.1}%", c.retake_share * 100.0),
        String::new(),
        only_in_process("<= 25%", c.retake_share <= 0.25),
    );
    for (figure, ns) in [("wait p50", c.wait_p50_ns), ("wait p99", c.wait_p99_ns)] {
        table.row(
            section,
            figure,
            nanos(ns as i64),
            in_rt(ns as i64),
            Target::none(),
        );
    }
    table.row(
        section,
        "wait max",
        nanos(c.wait_max_ns as i64),
        in_rt(c.wait_max_ns as i64),
        only_in_process("< 20 ms", max_wait_ms < 20.0),
    );
    table.row(
        section,
        "server commands per acquisition",
        format!("{:.2}", m.commands_per_acquisition),
        String::new(),
        Target::new("<= 8", m.commands_per_acquisition <= 8.0),
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
