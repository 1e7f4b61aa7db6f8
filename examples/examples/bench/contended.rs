//! Many workers taking turns on one lock with an empty body: tasks of one process,
//! threads of one process, and tasks spread over several processes.
//!
//! Every run first warms up (connections opened, scripts loaded, pub/sub subscribed), then
//! zeroes the server's command counters, so the figures describe the steady state.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};

use super::clock::now_ns;
use super::locked::Backend;
use super::server::Inspector;
use super::stats::{Contention, Record};
use super::{PROCESSES, Res, Sizes, TASKS_PER_PROCESS, locked, runtime};

/// A contended run's figures and the server commands it cost per acquisition.
pub struct Measured {
    pub contention: Contention,
    pub commands_per_acquisition: f64,
}

impl Measured {
    pub fn new(records: Vec<Record>, commands: u64) -> Measured {
        let commands_per_acquisition = commands as f64 / records.len() as f64;
        Measured {
            contention: Contention::from_records(records),
            commands_per_acquisition,
        }
    }
}

/// The name of the lock of (a): `bench:contended-tasks`, in the key `lock:{bench:contended-tasks}`.
pub const TASKS_LOCK: &str = "contended-tasks";

/// (a) `workers` tokio tasks of this process, locking on `backend`; `inspector` looks at the
/// servers whose commands are counted.
pub fn tasks(
    inspector: &mut Inspector,
    workers: u32,
    sizes: &Sizes,
    backend: Backend,
) -> Res<Measured> {
    let rt = runtime()?;
    rt.block_on(run_tasks(
        backend,
        TASKS_LOCK,
        0..workers,
        sizes.contended_warmup,
    ))?;
    inspector.reset_stats()?;
    let records = rt.block_on(run_tasks(backend, TASKS_LOCK, 0..workers, sizes.per_worker))?;
    Ok(Measured::new(records, inspector.commands_run()?))
}

/// (b) `workers` OS threads of this process calling the sync function.
pub fn threads(inspector: &mut Inspector, workers: u32, sizes: &Sizes) -> Res<Measured> {
    const LOCK: &str = "contended-threads";
    run_threads(LOCK, workers, sizes.contended_warmup)?;
    inspector.reset_stats()?;
    let records = run_threads(LOCK, workers, sizes.per_worker)?;
    Ok(Measured::new(records, inspector.commands_run()?))
}

/// (c) [`PROCESSES`] copies of this program (`bench worker ...`), [`TASKS_PER_PROCESS`]
/// tasks each.
pub fn processes(inspector: &mut Inspector, url: &str, sizes: &Sizes) -> Res<Measured> {
    let tasks_each = TASKS_PER_PROCESS;
    let children = (0..PROCESSES).map(|process| {
        let first = process * tasks_each;
        vec![
            "worker".to_string(),
            url.to_string(),
            first.to_string(),
            (first + tasks_each).to_string(),
            sizes.contended_warmup.to_string(),
            sizes.per_worker.to_string(),
        ]
    });
    run_children(inspector, children.collect())
}

/// Copies of this program, one per argument list: they warm up, say `ready`, wait for `go`
/// on stdin, and print one line per acquisition. The server's commands are counted from `go`.
pub fn run_children(inspector: &mut Inspector, children: Vec<Vec<String>>) -> Res<Measured> {
    let mut children = children
        .into_iter()
        .map(|args| {
            Ok(Command::new(std::env::current_exe()?)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?)
        })
        .collect::<Res<Vec<Child>>>()?;
    let mut outputs: Vec<BufReader<ChildStdout>> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().expect("stdout is piped")))
        .collect();
    // All warmed up before the counters start, so no process has a head start either.
    for output in &mut outputs {
        let mut line = String::new();
        output.read_line(&mut line)?;
        if line.trim() != "ready" {
            return Err(format!("a worker process said {line:?} instead of ready").into());
        }
    }
    inspector.reset_stats()?;
    for child in &mut children {
        writeln!(child.stdin.as_mut().expect("stdin is piped"), "go")?;
    }
    let mut records = Vec::new();
    for output in outputs {
        for line in output.lines() {
            records.extend(Record::parse(&line?));
        }
    }
    for mut child in children {
        if !child.wait()?.success() {
            return Err("a worker process failed".into());
        }
    }
    Ok(Measured::new(records, inspector.commands_run()?))
}

const PROCESS_LOCK: &str = "contended-processes";

/// The child's side of [`processes`]: `worker <url> <first id> <end id> <warm-up> <count>`.
pub fn worker_main(args: &[String]) -> Res<()> {
    let [url, first, end, warmup, count] = args else {
        return Err(format!(
            "usage: bench worker <url> <first> <end> <warmup> <count>, not {args:?}"
        )
        .into());
    };
    let ids = first.parse()?..end.parse()?;
    redis_locked::init(url)?;
    let rt = runtime()?;
    rt.block_on(run_tasks(
        Backend::Single,
        PROCESS_LOCK,
        ids.clone(),
        warmup.parse()?,
    ))?;
    println!("ready");
    std::io::stdin().read_line(&mut String::new())?;
    let records = rt.block_on(run_tasks(
        Backend::Single,
        PROCESS_LOCK,
        ids,
        count.parse()?,
    ))?;
    print_records(records)
}

/// A child's report to its parent: one line per record.
pub fn print_records(records: Vec<Record>) -> Res<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for record in records {
        writeln!(out, "{}", record.to_line())?;
    }
    Ok(out.flush()?)
}

/// One task per worker id, each taking the lock on `backend` `count` times; all their records.
async fn run_tasks(
    backend: Backend,
    lock: &'static str,
    ids: std::ops::Range<u32>,
    count: usize,
) -> Res<Vec<Record>> {
    let tasks: Vec<_> = ids
        .map(|worker| {
            tokio::spawn(async move {
                let mut records = Vec::with_capacity(count);
                for _ in 0..count {
                    let called = now_ns();
                    let acquired = backend.empty_async(lock).await?;
                    records.push(Record::returned_now(worker, called, acquired));
                }
                Ok::<_, redis_locked::LockError>(records)
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}

/// One OS thread per worker, each taking the lock `count` times; all their records.
fn run_threads(lock: &'static str, workers: u32, count: usize) -> Res<Vec<Record>> {
    let threads: Vec<_> = (0..workers)
        .map(|worker| {
            std::thread::spawn(move || {
                let mut records = Vec::with_capacity(count);
                for _ in 0..count {
                    let called = now_ns();
                    let acquired = locked::empty_sync(lock)?;
                    records.push(Record::returned_now(worker, called, acquired));
                }
                Ok::<_, redis_locked::LockError>(records)
            })
        })
        .collect();
    let mut all = Vec::new();
    for thread in threads {
        all.extend(thread.join().map_err(|_| "a worker thread panicked")??);
    }
    Ok(all)
}
