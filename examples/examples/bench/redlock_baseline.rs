//! A hand-written parallel Redlock over the bench's Redlock servers: the yardstick of the
//! Redlock client's uncontended rows. Each cycle sends the acquisition to every server at
//! once, counts a majority and checks the lease left after the drift allowance, then
//! releases on every server at once, with the `redis` crate's connections and nothing of
//! the lock library, a cycle at a time beside the annotated calls (paired.rs).
//!
//! - [`Acquire::Plain`]: the textbook Redlock, `SET NX PX` on each server.
//! - [`Acquire::Fenced`]: what the Redlock client sends for an acquisition that takes a
//!   fencing token (runtime/src/backends/redlock.rs, `Quorum::acquire`): QUORUM_ACQUIRE on
//!   each server, the token worked out from their counters and clocks, then RAISE_FENCE on
//!   each server that answered, a majority of which must confirm.
//!
//! Both release with the compare-and-delete script of the single-server loops.

use std::time::{Duration, Instant};

use redis::Value;
use redis::aio::MultiplexedConnection;

use super::baseline::{Acquire, UNLOCK};
use super::{REDLOCK_SERVERS, Res};

/// Mirrors QUORUM_ACQUIRE of runtime/src/protocol/scripts.rs, which the runtime does not
/// expose: takes the lock like `SET NX PX` (our own token counts as taken) and answers
/// `{1, counter, server clock in µs}` or `{0, holder's PTTL, counter}`.
const QUORUM_ACQUIRE: &str = "local counter = redis.call('get', KEYS[2]) or false \
     if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) \
        or (redis.call('get', KEYS[1]) == ARGV[1] \
            and redis.call('pexpire', KEYS[1], ARGV[2]) == 1) then \
       local now = redis.call('time') \
       return {1, counter, now[1] .. string.format('%06d', tonumber(now[2]))} \
     end \
     return {0, redis.call('pttl', KEYS[1]), counter}";

/// Mirrors RAISE_FENCE of runtime/src/protocol/scripts.rs: raises the counter to at least
/// the acquisition's token and keeps it for a day.
const RAISE_FENCE: &str = "if tonumber(redis.call('get', KEYS[1]) or '0') < tonumber(ARGV[1]) then \
       redis.call('set', KEYS[1], ARGV[1]) \
     end \
     redis.call('pexpire', KEYS[1], 86400000) \
     return 1";

const KEY: &str = "bench:redlock-handwritten";
const FENCE_KEY: &str = "bench:redlock-handwritten:fence";
const LEASE: Duration = Duration::from_secs(10);

/// A majority of the servers.
const NEEDED: usize = REDLOCK_SERVERS / 2 + 1;

/// The scripts' hashes, loaded on every server.
struct Shas {
    unlock: String,
    quorum_acquire: String,
    raise_fence: String,
}

impl Shas {
    fn of_bodies() -> Shas {
        let sha = |body| redis::Script::new(body).get_hash().to_string();
        Shas {
            unlock: sha(UNLOCK),
            quorum_acquire: sha(QUORUM_ACQUIRE),
            raise_fence: sha(RAISE_FENCE),
        }
    }
}

fn script_loads() -> [redis::Cmd; 3] {
    [UNLOCK, QUORUM_ACQUIRE, RAISE_FENCE]
        .map(|body| redis::cmd("SCRIPT").arg("LOAD").arg(body).take())
}

/// The sync loop on one blocking connection per server, all driven from this thread:
/// each step writes its request to every server and only then reads the replies, so the
/// servers work at once without a thread per server (no spawn or hand-off per step, the
/// fastest a blocking caller can do with the `redis` crate).
pub struct SyncLoop {
    conns: Vec<redis::Connection>,
    shas: Shas,
    acquire: Acquire,
    cycles: usize,
}

impl SyncLoop {
    pub fn connect(urls: &[String], acquire: Acquire) -> Res<SyncLoop> {
        let mut conns = urls
            .iter()
            .map(|url| Ok(redis::Client::open(url.as_str())?.get_connection()?))
            .collect::<Res<Vec<redis::Connection>>>()?;
        for load in script_loads() {
            on_all_sync(&mut conns, &load)?;
        }
        Ok(SyncLoop {
            conns,
            shas: Shas::of_bodies(),
            acquire,
            cycles: 0,
        })
    }

    pub fn cycle(&mut self) -> Res<()> {
        self.cycles += 1;
        let (conns, shas, acquire) = (&mut self.conns, &self.shas, self.acquire);
        let token = self.cycles.to_string();
        let sent = Instant::now();
        let answers = on_all_sync(conns, &acquire_cmd(acquire, shas, &token))?;
        let held = match verdict(acquire, &answers)? {
            Verdict::Majority { fence: None } => valid(sent),
            Verdict::Majority { fence: Some(fence) } => {
                let raised = on_all_sync(conns, &raise_cmd(shas, fence))?;
                yes(&raised) >= NEEDED && valid(sent)
            }
            Verdict::Minority => false,
        };
        assert!(held, "the hand-written Redlock is uncontended");
        let released = on_all_sync(conns, &unlock_cmd(shas, &token))?;
        assert!(
            yes(&released) >= NEEDED,
            "the hand-written Redlock was ours"
        );
        Ok(())
    }
}

/// The async loop on one multiplexed connection per server, the requests of each step
/// joined, for a task of a 2-worker runtime (like the annotated `async fn` it is compared
/// with).
pub struct AsyncLoop {
    conns: [MultiplexedConnection; REDLOCK_SERVERS],
    shas: Shas,
    acquire: Acquire,
    cycles: usize,
}

impl AsyncLoop {
    pub async fn connect(urls: &[String], acquire: Acquire) -> Res<AsyncLoop> {
        let mut conns = Vec::with_capacity(urls.len());
        for url in urls {
            let client = redis::Client::open(url.as_str())?;
            conns.push(client.get_multiplexed_async_connection().await?);
        }
        let mut conns: [MultiplexedConnection; REDLOCK_SERVERS] =
            conns.try_into().map_err(|_| "one URL per Redlock server")?;
        for load in script_loads() {
            on_all_async(&mut conns, &load).await?;
        }
        Ok(AsyncLoop {
            conns,
            shas: Shas::of_bodies(),
            acquire,
            cycles: 0,
        })
    }

    pub async fn cycle(&mut self) -> Res<()> {
        self.cycles += 1;
        let (conns, shas, acquire) = (&mut self.conns, &self.shas, self.acquire);
        let token = self.cycles.to_string();
        let sent = Instant::now();
        let answers = on_all_async(conns, &acquire_cmd(acquire, shas, &token)).await?;
        let held = match verdict(acquire, &answers)? {
            Verdict::Majority { fence: None } => valid(sent),
            Verdict::Majority { fence: Some(fence) } => {
                let raised = on_all_async(conns, &raise_cmd(shas, fence)).await?;
                yes(&raised) >= NEEDED && valid(sent)
            }
            Verdict::Minority => false,
        };
        assert!(held, "the hand-written Redlock is uncontended");
        let released = on_all_async(conns, &unlock_cmd(shas, &token)).await?;
        assert!(
            yes(&released) >= NEEDED,
            "the hand-written Redlock was ours"
        );
        Ok(())
    }
}

/// `cmd` on every server: all the requests written, then the replies read in turn.
fn on_all_sync(conns: &mut [redis::Connection], cmd: &redis::Cmd) -> Res<Vec<Value>> {
    Ok(redis_locked_examples::on_all::on_all_sync(conns, cmd)?)
}

/// `cmd` on every server, the requests joined. Any server's error fails the cycle: in
/// the bench every server answers, so "every server that answered" is all of them.
async fn on_all_async(
    conns: &mut [MultiplexedConnection; REDLOCK_SERVERS],
    cmd: &redis::Cmd,
) -> Res<Vec<Value>> {
    let [a, b, c] = conns;
    let (a, b, c) = tokio::join!(
        cmd.query_async::<Value>(a),
        cmd.query_async::<Value>(b),
        cmd.query_async::<Value>(c),
    );
    Ok(vec![a?, b?, c?])
}

fn acquire_cmd(acquire: Acquire, shas: &Shas, token: &str) -> redis::Cmd {
    let ms = LEASE.as_millis() as u64;
    match acquire {
        Acquire::Plain => redis::cmd("SET")
            .arg(KEY)
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(ms)
            .take(),
        Acquire::Fenced => redis::cmd("EVALSHA")
            .arg(&shas.quorum_acquire)
            .arg(2)
            .arg(KEY)
            .arg(FENCE_KEY)
            .arg(token)
            .arg(ms)
            .take(),
    }
}

fn raise_cmd(shas: &Shas, fence: u64) -> redis::Cmd {
    redis::cmd("EVALSHA")
        .arg(&shas.raise_fence)
        .arg(1)
        .arg(FENCE_KEY)
        .arg(fence)
        .take()
}

fn unlock_cmd(shas: &Shas, token: &str) -> redis::Cmd {
    redis::cmd("EVALSHA")
        .arg(&shas.unlock)
        .arg(1)
        .arg(KEY)
        .arg(token)
        .take()
}

/// What the servers' answers to an acquisition come to.
enum Verdict {
    /// A majority granted it; with the fencing token to write when one was asked for.
    Majority {
        fence: Option<u64>,
    },
    Minority,
}

/// One server's answer to QUORUM_ACQUIRE.
struct Answer {
    granted: bool,
    counter: Option<u64>,
    clock: u64,
}

fn verdict(acquire: Acquire, replies: &[Value]) -> Res<Verdict> {
    if let Acquire::Plain = acquire {
        let granted = replies
            .iter()
            .filter(|reply| matches!(reply, Value::Okay))
            .count();
        return Ok(match granted >= NEEDED {
            true => Verdict::Majority { fence: None },
            false => Verdict::Minority,
        });
    }
    let answers = replies.iter().map(answer).collect::<Res<Vec<Answer>>>()?;
    if answers.iter().filter(|a| a.granted).count() < NEEDED {
        return Ok(Verdict::Minority);
    }
    // As `Quorum::next_fence`: above every counter and never below the servers' clocks,
    // the counters trusted only when a majority of them (or every server) answered.
    let counters: Vec<u64> = answers.iter().filter_map(|a| a.counter).collect();
    if !counters.is_empty() && counters.len() < NEEDED && answers.len() < REDLOCK_SERVERS {
        return Err("too few fencing counters vouch for the last token".into());
    }
    let clock = answers.iter().map(|a| a.clock).max().unwrap_or(0);
    let above = counters.iter().max().map_or(1, |c| c.saturating_add(1));
    Ok(Verdict::Majority {
        fence: Some(above.max(clock)),
    })
}

fn answer(reply: &Value) -> Res<Answer> {
    let number = |part: &Value| -> Res<u64> {
        match part {
            Value::BulkString(bytes) => Ok(std::str::from_utf8(bytes)?.parse()?),
            other => Err(format!("not a number: {other:?}").into()),
        }
    };
    let counter = |part: &Value| match part {
        Value::Nil => Ok(None),
        part => number(part).map(Some),
    };
    match reply {
        Value::Array(parts) => match parts.as_slice() {
            [Value::Int(1), held, clock] => Ok(Answer {
                granted: true,
                counter: counter(held)?,
                clock: number(clock)?,
            }),
            [Value::Int(0), Value::Int(_), held] => Ok(Answer {
                granted: false,
                counter: counter(held)?,
                clock: 0,
            }),
            _ => Err(format!("unexpected QUORUM_ACQUIRE reply {reply:?}").into()),
        },
        _ => Err(format!("unexpected QUORUM_ACQUIRE reply {reply:?}").into()),
    }
}

/// Whether the lease left after the published algorithm's drift allowance
/// (`lease / 100 + 2 ms`, as `Quorum::drift`) has not run out since `sent`.
fn valid(sent: Instant) -> bool {
    let drift = LEASE / 100 + Duration::from_millis(2);
    sent.elapsed() + drift < LEASE
}

/// How many servers answered 1: confirmed RAISE_FENCE, or deleted the lock.
fn yes(replies: &[Value]) -> usize {
    replies
        .iter()
        .filter(|r| matches!(r, Value::Int(1)))
        .count()
}
