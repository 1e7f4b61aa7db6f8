//! Running the checker and reading its findings.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use stateright::{Checker, HasDiscoveries, Model};

use crate::actions::Action;
use crate::state::{Owner, State};
use crate::{LockModel, properties};

/// What one run of the checker found.
pub struct Report {
    /// The longest paths explored, in steps.
    pub steps: usize,
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

/// How to run the checker.
pub struct Run {
    /// The longest paths explored, in steps: every state reachable in this many steps or
    /// fewer is checked.
    pub steps: usize,
    pub threads: usize,
    /// Stop as soon as this property is violated.
    pub until_violated: Option<&'static str>,
}

impl Run {
    /// An exhaustive run to `steps` on every core.
    pub fn exhaustive(steps: usize) -> Run {
        Run {
            steps,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            until_violated: None,
        }
    }

    /// A search for a counter-example to `property`, on one thread, so that breadth
    /// first order makes the one found a shortest one.
    pub fn find(property: &'static str, steps: usize) -> Run {
        Run {
            steps,
            threads: 1,
            until_violated: Some(property),
        }
    }
}

/// Explores the states reachable within `run.steps` steps, breadth first.
pub fn run(model: LockModel, run: &Run) -> Report {
    let started = Instant::now();
    // A state `k` steps from the start is at depth `k + 1`; the checker expands and checks
    // states below its target depth only.
    let mut builder = model
        .checker()
        .threads(run.threads)
        .target_max_depth(run.steps + 2);
    if let Some(property) = run.until_violated {
        builder = builder.finish_when(HasDiscoveries::AnyOf(BTreeSet::from([property])));
    }
    let checker = builder.spawn_bfs().join();
    let mut violations = Vec::new();
    let mut reached = Vec::new();
    for (name, path) in checker.discoveries() {
        if properties::ALWAYS.contains(&name) {
            let steps = path
                .into_vec()
                .into_iter()
                .filter_map(|(state, action)| action.map(|a| describe(&state, a)))
                .collect();
            violations.push((name, steps));
        } else {
            reached.push(name);
        }
    }
    violations.sort();
    reached.sort();
    Report {
        steps: run.steps,
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
        Action::Deliver(i) => match s.net[usize::from(i)].reply {
            Some(reply) => format!("reply {reply:?} to {}", request(i)),
            None => format!("no reply yet to {}", request(i)),
        },
        Action::TimeOut(i) => format!("times out: {}", request(i)),
        Action::LoseReply(i) => format!("FAULT reply lost: {}", request(i)),
        Action::Resend(i) => format!("FAULT connection reset, resent: {}", request(i)),
        Action::Stall(i) => format!("FAULT slow: {}", request(i)),
        other => format!("{other:?}"),
    };
    format!("t={} {what}", s.now)
}
