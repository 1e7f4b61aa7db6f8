//! Chaos: four processes of four tasks each increment a counter non-atomically under one
//! lock while Redis is restarted again and again (with `appendonly yes` and
//! `appendfsync always`, so a restart keeps the lock keys; each outage shorter than the
//! lease) and holder processes are killed and replaced. Afterwards, from the workers' logs
//! (see `src/chaos_worker.rs`): no two critical sections overlapped, and every increment a
//! holder saw acknowledged is in the counter exactly once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis_locked_tests::{RedisServer, read_counter};

const PROCESSES: usize = 4;
const TASKS: usize = 4;
const RUN_FOR: Duration = Duration::from_secs(10);

struct Worker {
    child: Child,
    log: PathBuf,
}

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn spawn(server: &RedisServer, dir: &Path, n: usize, until_ms: u128) -> Worker {
    let log = dir.join(format!("worker-{n}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_contender"))
        .arg("chaos")
        .arg(server.url())
        .args(["chaos", "chaos-counter"])
        .arg(&log)
        .arg(until_ms.to_string())
        .arg(TASKS.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Worker { child, log }
}

/// A tiny deterministic generator for the fault schedule (xorshift64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One critical section as logged: who, when, and what it saw.
#[derive(Debug)]
struct Section {
    token: String,
    enter: u128,
    /// `None` when the process was killed inside it; then it ended by the kill.
    exit: Option<u128>,
    outcome: Outcome,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Done(i64),
    Unknown,
    Lost,
    /// Killed before it logged an outcome.
    Killed,
}

fn read_sections(log: &Path) -> Vec<Section> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut sections: Vec<Section> = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["enter", token, at] => sections.push(Section {
                token: token.to_string(),
                enter: at.parse().unwrap(),
                exit: None,
                outcome: Outcome::Killed,
            }),
            [kind, token, rest @ ..] => {
                let section = sections.last_mut().unwrap();
                assert_eq!(section.token, *token, "interleaved log in {log:?}");
                match (*kind, rest) {
                    ("done", [value]) => section.outcome = Outcome::Done(value.parse().unwrap()),
                    ("unknown", []) => section.outcome = Outcome::Unknown,
                    ("lost", []) => section.outcome = Outcome::Lost,
                    ("exit", [at]) => section.exit = Some(at.parse().unwrap()),
                    _ => panic!("bad log line {line:?}"),
                }
            }
            _ => panic!("bad log line {line:?}"),
        }
    }
    sections
}

#[test]
fn exclusive_and_exactly_once_through_redis_restarts_and_killed_holders() {
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let dir = server.dir().join("chaos-logs");
    std::fs::create_dir_all(&dir).unwrap();
    let until_ms = (unix_ns() / 1_000_000) + RUN_FOR.as_millis();
    let end = Instant::now() + RUN_FOR;

    let mut spawned = 0;
    let mut workers: Vec<Worker> = (0..PROCESSES)
        .map(|_| {
            spawned += 1;
            spawn(&server, &dir, spawned, until_ms)
        })
        .collect();
    // Kill time of each killed worker's log.
    let mut killed: HashMap<PathBuf, u128> = HashMap::new();
    let (mut restarts, mut kills) = (0, 0);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    while Instant::now() + Duration::from_secs(1) < end {
        // The pace of the faults; the workers are never waited for.
        std::thread::sleep(Duration::from_millis(300 + rng.below(400)));
        if rng.below(2) == 0 {
            // An outage of up to 300 ms; the lease is 2 s.
            server.kill();
            std::thread::sleep(Duration::from_millis(rng.below(300)));
            server.start_again();
            restarts += 1;
        } else {
            let victim = rng.below(PROCESSES as u64) as usize;
            let worker = &mut workers[victim];
            worker.child.kill().unwrap();
            worker.child.wait().unwrap();
            killed.insert(worker.log.clone(), unix_ns());
            kills += 1;
            spawned += 1;
            workers[victim] = spawn(&server, &dir, spawned, until_ms);
        }
    }
    for worker in &mut workers {
        assert!(worker.child.wait().unwrap().success(), "a worker failed");
    }

    let mut sections = Vec::new();
    for n in 1..=spawned {
        let log = dir.join(format!("worker-{n}.log"));
        let kill_time = killed.get(&log).copied();
        for mut section in read_sections(&log) {
            if section.exit.is_none() {
                section.exit = Some(kill_time.expect("only a killed worker leaves a section open"));
            }
            sections.push(section);
        }
    }
    sections.sort_by_key(|s| s.enter);

    // No two critical sections overlapped.
    for pair in sections.windows(2) {
        assert!(
            pair[0].exit.unwrap() <= pair[1].enter,
            "overlapping critical sections: {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
    // Acknowledged increments saw successive values, each once, in the order they ran.
    let done: Vec<i64> = sections
        .iter()
        .filter_map(|s| match s.outcome {
            Outcome::Done(value) => Some(value),
            _ => None,
        })
        .collect();
    assert!(
        done.windows(2).all(|w| w[0] < w[1]),
        "an increment was lost or counted twice: {done:?}"
    );
    // And the counter holds each of them once, plus at most the increments whose outcome
    // nobody saw (failed SETs, holders killed mid-increment).
    let unseen = sections
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Unknown | Outcome::Killed))
        .count() as i64;
    let counter = read_counter(&mut server.connection(), "chaos-counter");
    assert!(
        counter >= done.len() as i64 && counter <= done.len() as i64 + unseen,
        "counter {counter}, acknowledged {}, unseen {unseen}",
        done.len()
    );
    let lost = sections
        .iter()
        .filter(|s| s.outcome == Outcome::Lost)
        .count();
    println!(
        "chaos: {restarts} Redis restarts and {kills} holder processes killed in {RUN_FOR:?}; \
         {} critical sections, {} increments acknowledged, {unseen} unseen, {lost} lost locks; \
         counter {counter}",
        sections.len(),
        done.len()
    );
    assert!(done.len() >= 100, "too little progress: {}", done.len());
}
