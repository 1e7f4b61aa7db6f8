//! The hand-written loop of each client kind (baseline.rs, cluster_baseline.rs,
//! redlock_baseline.rs), and the rows that hold the annotated functions on the Cluster and
//! Redlock clients to theirs, as the single-server rows are held to the single-server loops.

use super::baseline::Acquire;
use super::contended::Measured;
use super::locked::Backend;
use super::report::{Table, Target, nanos, paired_ratio, rate};
use super::uncontended::Uncontended;
use super::{Res, baseline, cluster_baseline, redlock_baseline};

/// The target for a client besides the single server: this share of its own
/// hand-written loop.
const TARGET: f64 = 0.9;

/// Calls per second of a client's hand-written loops, the best of the rounds (or of one
/// round).
#[derive(Default, Clone)]
pub struct Handwritten {
    pub plain_async: f64,
    pub plain_sync: f64,
    pub fenced_async: f64,
    pub fenced_sync: f64,
}

impl Handwritten {
    /// Keeps the faster of loop `at`'s rate here and `rate` (0 plain async, 1 plain sync,
    /// 2 fenced async, 3 fenced sync, as [`Uncontended::keep`]).
    pub fn keep(&mut self, at: usize, rate: f64) {
        let best = match at {
            0 => &mut self.plain_async,
            1 => &mut self.plain_sync,
            2 => &mut self.fenced_async,
            _ => &mut self.fenced_sync,
        };
        *best = best.max(rate);
    }
}

/// The hand-written loop of a client kind, sync: one cycle takes and releases its lock.
// One per measurement, and a box would put a pointer between the loop and its connection.
#[allow(clippy::large_enum_variant)]
pub enum SyncLoop {
    Single(baseline::SyncLoop),
    Cluster(cluster_baseline::SyncLoop),
    Redlock(redlock_baseline::SyncLoop),
}

impl SyncLoop {
    /// The loop of `backend` on the servers of `urls` (the single server: the first).
    pub fn connect(backend: Backend, urls: &[String], acquire: Acquire) -> Res<SyncLoop> {
        Ok(match backend {
            Backend::Single => SyncLoop::Single(baseline::SyncLoop::connect(&urls[0], acquire)?),
            Backend::Cluster => {
                SyncLoop::Cluster(cluster_baseline::SyncLoop::connect(urls, acquire)?)
            }
            Backend::Redlock => {
                SyncLoop::Redlock(redlock_baseline::SyncLoop::connect(urls, acquire)?)
            }
        })
    }

    pub fn cycle(&mut self) -> Res<()> {
        match self {
            SyncLoop::Single(hand) => hand.cycle(),
            SyncLoop::Cluster(hand) => hand.cycle(),
            SyncLoop::Redlock(hand) => hand.cycle(),
        }
    }
}

/// [`SyncLoop`] for async callers, in a task.
pub enum AsyncLoop {
    Single(baseline::AsyncLoop),
    Cluster(cluster_baseline::AsyncLoop),
    Redlock(redlock_baseline::AsyncLoop),
}

impl AsyncLoop {
    pub async fn connect(backend: Backend, urls: &[String], acquire: Acquire) -> Res<AsyncLoop> {
        Ok(match backend {
            Backend::Single => {
                AsyncLoop::Single(baseline::AsyncLoop::connect(&urls[0], acquire).await?)
            }
            Backend::Cluster => {
                AsyncLoop::Cluster(cluster_baseline::AsyncLoop::connect(urls, acquire).await?)
            }
            Backend::Redlock => {
                AsyncLoop::Redlock(redlock_baseline::AsyncLoop::connect(urls, acquire).await?)
            }
        })
    }

    pub async fn cycle(&mut self) -> Res<()> {
        match self {
            AsyncLoop::Single(hand) => hand.cycle().await,
            AsyncLoop::Cluster(hand) => hand.cycle().await,
            AsyncLoop::Redlock(hand) => hand.cycle().await,
        }
    }
}

/// What the hand-written loops of `backend` are, and what each sends, for the table.
fn loop_names(backend: Backend) -> (&'static str, [&'static str; 2]) {
    match backend {
        Backend::Redlock => (
            "parallel Redlock",
            ["SET NX + EVALSHA", "QUORUM_ACQUIRE + RAISE_FENCE + EVALSHA"],
        ),
        Backend::Cluster | Backend::Single => (
            "cluster-connection loop",
            ["SET NX + RELEASE", "ACQUIRE f + RELEASE"],
        ),
    }
}

/// The hand-written loops' figures in `section`, then the annotated functions' calls
/// (`attr`) as a share of the matching loop: unfenced against the functions that bind no
/// guard, fenced against those that do.
pub fn rows(
    table: &mut Table,
    section: &str,
    backend: Backend,
    hand: &Handwritten,
    attr: &Uncontended,
) {
    // Named apart from the rows below them, which hold the same calls to the
    // single-server loops.
    let (what, [plain, fenced]) = loop_names(backend);
    for (name, calls) in [
        (format!("{plain}, async"), hand.plain_async),
        (format!("{plain}, sync"), hand.plain_sync),
        (format!("{fenced}, async"), hand.fenced_async),
        (format!("{fenced}, sync"), hand.fenced_sync),
    ] {
        table.row(
            section,
            &format!("hand-written {what} {name}"),
            rate(calls),
            String::new(),
            Target::none(),
        );
    }
    let kinds = [
        ("async fn", attr.async_calls, hand.plain_async, "unfenced"),
        ("sync fn", attr.sync_calls, hand.plain_sync, "unfenced"),
        (
            "async fn with guard",
            attr.fenced_async_calls,
            hand.fenced_async,
            "fenced",
        ),
        (
            "sync fn with guard",
            attr.fenced_sync_calls,
            hand.fenced_sync,
            "fenced",
        ),
    ];
    for ((kind, calls, handwritten, loop_kind), rounds) in
        kinds.into_iter().zip(&attr.rounds_vs_hand)
    {
        // Held to the median of the rounds' ratios, each against this client's loop of the
        // same round (see `measure_loops` in bench.rs).
        let (share, text) = paired_ratio(rounds, calls / handwritten);
        table.row(
            section,
            &format!("uncontended {kind}: calls vs hand-written {what}, {loop_kind}"),
            rate(calls),
            text,
            Target::new(format!(">= {TARGET}x"), share >= TARGET),
        );
    }
}

/// The contended handoff of `backend` measured in its own round trips: one request to its
/// servers as the unfenced hand-written async loop makes them (a cycle of that loop is two,
/// the acquisition and the release). For Redlock that is one parallel round to the quorum,
/// which on this machine costs many PING round trips of one server.
pub fn handoff_rows(
    table: &mut Table,
    section: &str,
    prefix: &str,
    backend: Backend,
    hand: &Handwritten,
    measured: &Measured,
) {
    let round_ns = 1e9 / (2.0 * hand.plain_async);
    let (what, _) = loop_names(backend);
    table.row(
        section,
        &format!("{prefix}one request of the hand-written {what} (half a cycle)"),
        nanos(round_ns as i64),
        String::new(),
        Target::none(),
    );
    let c = &measured.contention;
    let p50 = c.handoff_p50_ns as f64 / round_ns;
    table.row(
        section,
        &format!("{prefix}handoff p50 in those requests"),
        nanos(c.handoff_p50_ns),
        format!("{p50:.2} requests"),
        Target::new("<= 3".to_string(), p50 <= 3.0),
    );
}
