//! The in-memory backend answers as redis-server does: random sequences of operations
//! (acquisition attempts, extensions, releases, resets, handovers and reads, over a few lock
//! names and a few owner values) run on both, and every answer is compared.
//!
//! Leases are long enough that nothing expires during a sequence, except after an
//! extension to a short lease, which waits for both keys to expire before going on. What
//! depends on the clock is compared coarsely: a holder's remaining lease is present and
//! within the lease on both; a fencing token (which never falls below each server's clock
//! in microseconds) must stand in the same relation to the lock's previous token on both.
//!
//! A failure names its seed; `MEMORY_DIFF_SEED=<seed>` runs that sequence alone.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::Duration;

use redis_locked::__backend::{Attempted, Operations};
use redis_locked::{Client, ClientBuilder};
use redis_locked_tests::RedisServer;

const SEEDS: u64 = 24;
const STEPS: usize = 80;
const NAMES: usize = 3;
const VALUES: [&str; 3] = ["alice", "bob", "carol"];
const LONG: Duration = Duration::from_secs(60);
const SHORT: Duration = Duration::from_millis(30);
/// How long past a short lease both keys are surely gone.
const EXPIRY_MARGIN: Duration = Duration::from_millis(30);

/// SplitMix64: a small seeded generator, so a sequence is reproduced from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Acquire {
        name: usize,
        value: usize,
    },
    Extend {
        name: usize,
        value: usize,
        short: bool,
    },
    Release {
        name: usize,
        value: usize,
    },
    Reset {
        name: usize,
    },
    Handoff {
        name: usize,
        old: usize,
        new: usize,
        own: u8,
    },
    Read {
        name: usize,
    },
}

impl Op {
    fn random(rng: &mut Rng) -> Op {
        let name = rng.below(NAMES);
        let value = rng.below(VALUES.len());
        match rng.below(100) {
            0..30 => Op::Acquire { name, value },
            30..45 => Op::Extend {
                name,
                value,
                short: rng.below(4) == 0,
            },
            45..63 => Op::Release { name, value },
            63..70 => Op::Reset { name },
            70..85 => Op::Handoff {
                name,
                old: value,
                new: rng.below(VALUES.len()),
                own: rng.below(2) as u8,
            },
            _ => Op::Read { name },
        }
    }
}

/// An answer, reduced to what both backends must agree on.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// Taken, with a fencing token in this relation to the lock's previous one.
    Taken(Ordering),
    /// Held by another value, with a remaining lease within the longest lease given.
    Held {
        lease_left: bool,
    },
    Done(bool),
    /// A handover: handed (the token's relation to the previous one), released to
    /// everyone (-1) or not ours (0).
    Handed(Ordering),
    HandoffRefused(i64),
    Read {
        owner: Option<String>,
        locked: bool,
        lease_left: bool,
        /// Whether the fencing token shown is the last one this lock got.
        last_fence: bool,
        waiting: u64,
    },
}

/// One backend's side of the comparison.
struct Side {
    client: Client,
    ops: Operations,
    /// The last fencing token each lock got on this side.
    fences: HashMap<String, u64>,
}

impl Side {
    fn new(client: Client) -> Side {
        Side {
            ops: Operations::of(&client),
            client,
            fences: HashMap::new(),
        }
    }

    /// Records `fence` as lock `name`'s latest; how it compares with the one before.
    fn fence(&mut self, name: &str, fence: u64) -> Ordering {
        let last = self.fences.entry(name.to_string()).or_insert(0);
        let order = fence.cmp(last);
        *last = (*last).max(fence);
        order
    }

    async fn run(&mut self, op: Op, names: &[String]) -> Answer {
        let name_of = |i: usize| names[i].as_str();
        match op {
            Op::Acquire { name, value } => {
                match self
                    .ops
                    .acquire(name_of(name), VALUES[value], LONG)
                    .await
                    .unwrap()
                {
                    Attempted::Taken { fence } => Answer::Taken(self.fence(name_of(name), fence)),
                    Attempted::Held { remaining } => Answer::Held {
                        lease_left: !remaining.is_zero() && remaining <= LONG,
                    },
                }
            }
            Op::Extend { name, value, short } => {
                let lease = if short { SHORT } else { LONG };
                let ops = &self.ops;
                Answer::Done(
                    ops.extend(name_of(name), VALUES[value], lease)
                        .await
                        .unwrap(),
                )
            }
            Op::Release { name, value } => Answer::Done(
                self.ops
                    .release(name_of(name), VALUES[value])
                    .await
                    .unwrap(),
            ),
            Op::Reset { name } => Answer::Done(self.ops.reset(name_of(name)).await.unwrap()),
            Op::Handoff {
                name,
                old,
                new,
                own,
            } => {
                let values = [VALUES[old], VALUES[new]];
                let reply = self
                    .ops
                    .handoff(name_of(name), values, LONG, own)
                    .await
                    .unwrap();
                match u64::try_from(reply) {
                    Ok(fence) if fence > 0 => Answer::Handed(self.fence(name_of(name), fence)),
                    _ => Answer::HandoffRefused(reply),
                }
            }
            Op::Read { name } => {
                let lock = self.client.lock(name_of(name)).unwrap();
                let owner = lock.owner().await.unwrap();
                let locked = lock.is_locked().await.unwrap();
                let info = lock.info().await.unwrap();
                assert_eq!(info.is_some(), locked, "info and is_locked disagree");
                let last = self.fences.get(name_of(name)).copied();
                Answer::Read {
                    owner,
                    locked,
                    lease_left: info
                        .as_ref()
                        .and_then(|info| info.remaining_lease)
                        .is_some_and(|left| !left.is_zero() && left <= LONG),
                    last_fence: info.as_ref().is_some_and(|i| Some(i.fencing_token) == last),
                    waiting: info.map_or(0, |info| info.waiting_processes),
                }
            }
        }
    }
}

/// Runs sequence `seed` on `redis` and on a fresh in-memory client, comparing each answer.
async fn sequence(seed: u64, redis: Client) {
    let mut rng = Rng(seed);
    // Names of this sequence only: the server is shared by every sequence of the test.
    let names: Vec<String> = (0..NAMES).map(|n| format!("seed{seed}:{n}")).collect();
    let mut on_redis = Side::new(redis);
    let mut in_memory = Side::new(ClientBuilder::in_memory().build().unwrap());
    let mut history = Vec::new();
    for step in 0..STEPS {
        let op = Op::random(&mut rng);
        let expected = on_redis.run(op, &names).await;
        let answered = in_memory.run(op, &names).await;
        history.push(format!("{step}: {op:?} -> {expected:?}"));
        assert_eq!(
            answered,
            expected,
            "seed {seed} (MEMORY_DIFF_SEED={seed}), step {step}: {op:?}: in memory (left) \
             and on redis-server (right) differ after:\n{}",
            history.join("\n")
        );
        if let (
            Op::Extend {
                name, short: true, ..
            },
            Answer::Done(true),
        ) = (op, &expected)
        {
            // Both keys now end within the short lease: let them, and look.
            tokio::time::sleep(SHORT + EXPIRY_MARGIN).await;
            let read = Op::Read { name };
            let expected = on_redis.run(read, &names).await;
            assert_eq!(
                in_memory.run(read, &names).await,
                expected,
                "seed {seed}, step {step}: after the short lease ended"
            );
            assert!(
                matches!(expected, Answer::Read { locked: false, .. }),
                "seed {seed}, step {step}: the short lease did not end"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sequences_answer_alike_in_memory_and_on_redis_server() {
    let server = RedisServer::start();
    let redis = ClientBuilder::new(server.url()).build().unwrap();
    let seeds: Vec<u64> = match std::env::var("MEMORY_DIFF_SEED") {
        Ok(seed) => vec![seed.parse().expect("MEMORY_DIFF_SEED is a number")],
        Err(_) => (0..SEEDS).collect(),
    };
    let sequences: Vec<_> = seeds
        .into_iter()
        .map(|seed| tokio::spawn(sequence(seed, redis.clone())))
        .collect();
    for sequence in sequences {
        sequence.await.unwrap();
    }
}
