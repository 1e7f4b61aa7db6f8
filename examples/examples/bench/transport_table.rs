//! The transport A/B's table: each stack's median, and the ratios of the `redis` crate's
//! connections used directly (B) to the public API (A) and to the runtime's requests (C),
//! taken round by round.

use super::report::{markdown, rate, ratio};
use super::stats::percentile;
use super::transport::{Comparison, Run, Scenario, Stack};

/// The table, then how it was measured and the verdict over all scenarios.
pub fn render(comparisons: &[Comparison], rounds: usize, cycles: usize) -> String {
    let header = [
        "Scenario",
        "A: Lock API",
        "C: runtime's requests",
        "B: redis crate",
        "B/A median (min-max)",
        "B/C median (min-max)",
        "CPU per cycle A / C / B",
        "C/B",
    ];
    let rows: Vec<Vec<String>> = comparisons.iter().map(row).collect();
    format!(
        "\n## Transport A/B: the runtime's requests against the redis crate's connections used directly\n\n{}\n\
         Same cycle in every stack: EVALSHA of the runtime's acquire script, then of its \
         release script, each caller on a lock of its own, a fresh owner value each time. \
         A: `Lock::acquire` + release; C: the two scripts sent as the runtime sends them (its \
         pools of the redis crate's connections); B: the same commands on the redis crate's \
         connections used directly (one `MultiplexedConnection` per \
         runtime, shared by its tasks, or one per task where the scenario says so; one \
         `Connection` per thread). {rounds} rounds, each \
         running A, C and B in turn (rotating which goes first), {cycles} cycles per caller \
         and run; medians of the runs, ratios taken within each round. CPU: user + system \
         time of this process per cycle. C/B: median of the rounds' ratios, what the \
         runtime's requests (pools, deadlines, resend rules) cost over the bare connections.\n",
        markdown(&header, &rows),
    )
}

fn row(c: &Comparison) -> Vec<String> {
    let (api, ours, krate) = (
        c.runs_of(Stack::Api),
        c.runs_of(Stack::Ours),
        c.runs_of(Stack::Crate),
    );
    let median_rate = |runs: &[Run]| rate(median(runs.iter().map(|r| r.per_second).collect()));
    let cpu = |runs: &[Run]| {
        micros(median(
            runs.iter().map(|r| r.cpu_per_cycle.as_secs_f64()).collect(),
        ))
    };
    let verdict = ratio(ours_win_by(c));
    vec![
        label(c.scenario),
        median_rate(api),
        median_rate(ours),
        median_rate(krate),
        spread(round_ratios(krate, api)),
        spread(round_ratios(krate, ours)),
        format!("{} / {} / {}", cpu(api), cpu(ours), cpu(krate)),
        verdict,
    ]
}

fn label(scenario: Scenario) -> String {
    match scenario {
        Scenario::Tasks(1) => "async, 1 task".to_string(),
        Scenario::Tasks(n) => format!("async, {n} tasks, B: 1 shared connection"),
        Scenario::TasksOwnConnections(n) => format!("async, {n} tasks, B: 1 connection each"),
        Scenario::Threads(1) => "sync, 1 thread".to_string(),
        Scenario::Threads(n) => format!("sync, {n} threads"),
    }
}

/// The median over the rounds of C/B: how many times the `redis` crate's cycles ours
/// carried in the same runs.
fn ours_win_by(c: &Comparison) -> f64 {
    median(round_ratios(
        c.runs_of(Stack::Ours),
        c.runs_of(Stack::Crate),
    ))
}

/// `top`'s rate over `bottom`'s, round by round.
fn round_ratios(top: &[Run], bottom: &[Run]) -> Vec<f64> {
    top.iter()
        .zip(bottom)
        .map(|(t, b)| t.per_second / b.per_second)
        .collect()
}

/// `1.02x (0.98x-1.05x)`
fn spread(mut ratios: Vec<f64>) -> String {
    ratios.sort_by(f64::total_cmp);
    let (min, max) = (ratios[0], ratios[ratios.len() - 1]);
    format!("{} ({}-{})", ratio(median(ratios)), ratio(min), ratio(max))
}

/// The median of an odd number of values; of an even number, the lower middle one.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(&values, 0.5)
}

fn micros(seconds: f64) -> String {
    format!("{:.1} µs", seconds * 1e6)
}
