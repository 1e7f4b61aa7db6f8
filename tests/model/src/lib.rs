//! A model of redis-locked's lock protocol (placeholder doc, written at the end).

pub mod actions;
pub mod check;
pub mod client;
pub mod config;
pub mod net;
pub mod properties;
pub mod redis;
pub mod state;
pub mod time;

use stateright::{Model, Property};

pub use actions::Action;
pub use config::{Config, Fault, Fix, Fixes, TaskSpec};
pub use state::State;

/// The protocol under one [`Config`], as a stateright model.
#[derive(Clone, Debug)]
pub struct LockModel {
    pub config: Config,
}

impl LockModel {
    pub fn new(config: Config) -> LockModel {
        config.validate();
        LockModel { config }
    }
}

impl Model for LockModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let procs = self
            .config
            .processes
            .iter()
            .map(|tasks| state::Process {
                queue: Vec::new(),
                holder_until: None,
                subscription: state::Subscription::None,
                pubsub: state::PubSub::Idle,
                tasks: vec![
                    state::Task {
                        round: 0,
                        late: false,
                        phase: state::Phase::Idle,
                    };
                    tasks.len()
                ],
            })
            .collect();
        vec![State {
            now: 0,
            redis: redis::Redis::default(),
            net: Vec::new(),
            procs,
            cleanups: Vec::new(),
            faults_left: self.config.faults,
            ghost: state::Ghost::default(),
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        actions::enabled(&self.config, state, actions);
    }

    fn next_state(&self, state: &State, action: Action) -> Option<State> {
        Some(actions::apply(&self.config, state, action))
    }

    fn format_step(&self, last: &State, action: Action) -> Option<String> {
        Some(check::describe(last, action))
    }

    fn properties(&self) -> Vec<Property<Self>> {
        properties::all()
    }
}
