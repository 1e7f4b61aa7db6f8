//! The protocol under one [`Config`] as a stateright [`Model`]: the initial state, the
//! enabled actions, their effects and the properties.

use stateright::{Model, Property};

use crate::actions::{self, Action};
use crate::config::Config;
use crate::state::{Ghost, Phase, Process, PubSub, State, Subscription, Task};
use crate::{check, properties, redis};

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
            .map(|tasks| Process {
                queue: Vec::new(),
                holder_until: None,
                subscription: Subscription::None,
                pubsub: PubSub::Idle,
                inbox: Vec::new(),
                listen_late: false,
                tasks: vec![
                    Task {
                        round: 0,
                        late: false,
                        phase: Phase::Idle,
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
            ghost: Ghost::default(),
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
