//! Running the checker and reading its findings.

use std::time::{Duration, Instant};

use stateright::{Checker, HasDiscoveries, Model};

use crate::actions::Action;
use crate::state::{Owner, State};
use crate::{LockModel, properties};

/// What one exhaustive run found.
pub struct Report {
    pub depth: usize,
    pub unique_states: usize,
    pub elapsed: Duration,
    /// Each violated `always` property with the steps of its shortest counter-example.
    pub violations: Vec<(&'static str, Vec<String>)>,
    /// The `sometimes` properties that were reached.
    pub reached: Vec<&'static str>,
}

impl Report {
    /// The counter-example for `property`, if the run found one.
    pub fn violation(&self, property: &str) -> Option<&[String]> {
        self.violations
            .iter()
            .find(|(name, _)| *name == property)
            .map(|(_, steps)| steps.as_slice())
    }
}

/// Explores every state reachable in fewer than `depth` steps, breadth first, so every
/// counter-example found is a shortest one. With `stop_at_first`, stops at the first
/// violated `always` property.
pub fn run(model: LockModel, depth: usize, stop_at_first: bool) -> Report {
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut builder = model.checker().threads(threads).target_max_depth(depth);
    if stop_at_first {
        builder = builder.finish_when(HasDiscoveries::AnyFailures);
    }
    let checker = builder.spawn_bfs().join();
    let model = checker.model();
    let mut violations = Vec::new();
    let mut reached = Vec::new();
    for (name, path) in checker.discoveries() {
        if properties::ALWAYS.contains(&name) {
            let steps = path
                .into_vec()
                .into_iter()
                .filter_map(|(state, action)| action.map(|a| model.format_step(&state, a)))
                .map(|step| step.unwrap_or_default())
                .collect();
            violations.push((name, steps));
        } else {
            reached.push(name);
        }
    }
    violations.sort();
    reached.sort();
    Report {
        depth,
        unique_states: checker.unique_state_count(),
        elapsed: started.elapsed(),
        violations,
        reached,
    }
}

/// One step of a counter-example, in words.
pub fn describe(s: &State, action: Action) -> String {
    let request = |i: u8| {
        let r = &s.net[usize::from(i)];
        let who = match r.owner {
            Owner::Task(p, t) => format!("p{p}t{t}"),
            Owner::Cleanup(token) => format!("cleanup of {token:?}"),
            Owner::Nobody => "nobody".to_string(),
        };
        format!("{:?} from {who}", r.op)
    };
    let what = match action {
        Action::Apply(i) => format!("Redis runs {}", request(i)),
        Action::Deliver(i) => format!("reply {:?} to {}", s.net[usize::from(i)].reply, request(i)),
        Action::TimeOut(i) => format!("times out: {}", request(i)),
        Action::LoseReply(i) => format!("FAULT reply lost: {}", request(i)),
        Action::Resend(i) => format!("FAULT connection reset, resent: {}", request(i)),
        Action::Stall(i) => format!("FAULT slow: {}", request(i)),
        other => format!("{other:?}"),
    };
    format!("t={} {what}", s.now)
}
