//! The step-runner contract: what the engine asks of whoever runs a planned step's action
//! ([`StepRunner`]) and the types it answers with ([`Outcome`], [`Probe`], [`FactOut`],
//! [`StepError`], [`StageHalt`]). One home: the actions crate implements them, the engine
//! consumes them, neither knows the other.

use std::time::Duration;

use async_trait::async_trait;

use crate::{HaltClass, Name, Plan, PlannedStep, TransportError};

/// A fact a step learnt on a node (stored before the step is marked done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactOut {
    /// The host it is about.
    pub host: Name,
    /// Key (`build.before`, `group.EVS1 Group.owner.before`, `boot.time`, `reboot.pending`).
    pub key: String,
    /// Value.
    pub value: String,
}

impl FactOut {
    /// A fact about `host`.
    pub fn new(host: &Name, key: impl Into<String>, value: impl Into<String>) -> Self {
        FactOut {
            host: host.clone(),
            key: key.into(),
            value: value.into(),
        }
    }
}

/// How a step ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The step is done.
    Done {
        /// The main command's output (stdout then stderr; several commands joined); the engine
        /// keeps its tail.
        output: String,
        /// The main command's exit code, when one ran.
        exit_code: Option<i32>,
        /// Facts learnt (owner before a move, build before/after, boot time...).
        facts: Vec<FactOut>,
        /// One line for a person.
        message: String,
    },
    /// An operator step: the engine waits for `lockstep approve`.
    Waiting {
        /// What the operator must do.
        instructions: String,
    },
}

impl Outcome {
    /// Done, with a message and nothing else.
    pub fn done(message: impl Into<String>) -> Self {
        Outcome::Done {
            output: String::new(),
            exit_code: None,
            facts: Vec::new(),
            message: message.into(),
        }
    }
}

/// What a step's "already done?" probe found (used on resume).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Probe {
    /// The step's effect is in place: do not run it again.
    Done,
    /// Not done: run it.
    NotDone,
    /// Still under way on the node (e.g. the installer is still running): wait and probe again.
    InProgress,
}

/// Why a step's action did not complete. The message names the objects involved in backticks;
/// `output` and `exit_code` carry what the node said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    /// How the engine halts on it (when the failure budget is spent).
    pub class: HaltClass,
    /// The host the failing command or query ran on.
    pub host: Name,
    /// What went wrong, for a person.
    pub message: String,
    /// The command's output (stdout then stderr), empty when nothing ran.
    pub output: String,
    /// The command's exit code, when a command finished.
    pub exit_code: Option<i32>,
    /// The transport failure behind the error, when the node could not be asked at all
    /// (refused, credentials, timeout): `lockstep facts` reports hosts by it.
    pub transport: Option<Box<TransportError>>,
}

impl StepError {
    /// An error with no command output.
    pub fn new(class: HaltClass, host: &Name, message: impl Into<String>) -> Self {
        StepError {
            class,
            host: host.clone(),
            message: message.into(),
            output: String::new(),
            exit_code: None,
            transport: None,
        }
    }

    /// A [`HaltClass::Precondition`] error.
    pub fn precondition(host: &Name, message: impl Into<String>) -> Self {
        Self::new(HaltClass::Precondition, host, message)
    }

    /// A [`HaltClass::StepFailed`] error.
    pub fn step_failed(host: &Name, message: impl Into<String>) -> Self {
        Self::new(HaltClass::StepFailed, host, message)
    }

    /// A [`HaltClass::VersionMismatch`] error.
    pub fn version_mismatch(host: &Name, message: impl Into<String>) -> Self {
        Self::new(HaltClass::VersionMismatch, host, message)
    }

    /// A [`HaltClass::NodeUnreachable`] error.
    pub fn unreachable(host: &Name, message: impl Into<String>) -> Self {
        Self::new(HaltClass::NodeUnreachable, host, message)
    }

    /// Attaches a finished command's output and exit code.
    pub fn with_output(mut self, output: impl Into<String>, exit_code: Option<i32>) -> Self {
        self.output = output.into();
        self.exit_code = exit_code;
        self
    }

    /// Maps a transport failure: a node that could not be reached, dropped the connection or
    /// did not answer in time is [`HaltClass::NodeUnreachable`]; anything else (credentials,
    /// protocol faults, an exhausted WinRM quota, missing settings) is [`HaltClass::StepFailed`]. `what` says what was
    /// being done (``running `net stop clussvc` ``).
    pub fn from_transport(host: &Name, what: &str, err: &TransportError) -> Self {
        let class = match err {
            TransportError::Unreachable { .. }
            | TransportError::Interrupted { .. }
            | TransportError::TimedOut { .. } => HaltClass::NodeUnreachable,
            TransportError::AuthRejected { .. }
            | TransportError::Protocol { .. }
            | TransportError::Quota { .. }
            | TransportError::Config { .. } => HaltClass::StepFailed,
        };
        let mut e = Self::new(
            class,
            host,
            format!("{what} on host `{host}` failed: {err}"),
        );
        e.transport = Some(Box::new(err.clone()));
        e
    }
}

/// Runs the actions of planned steps. The engine decides when; the runner decides how (the
/// command lines, reading results, probes). Implemented over the built-in actions by the CLI's
/// wiring and by in-memory fakes in tests.
#[async_trait]
pub trait StepRunner: Send + Sync {
    /// Runs the step's action on `step.host`, within `timeout`.
    async fn execute(&self, step: &PlannedStep, timeout: Duration) -> Result<Outcome, StepError>;

    /// Whether the step's effect is already in place (read-only).
    async fn probe(&self, step: &PlannedStep) -> Result<Probe, StepError>;

    /// The postcondition of a step the operator performed by hand and approved by name
    /// ([`crate::Action::needs_named_approval`]), read before the run goes on: `Ok(None)` when
    /// its effect is in place, `Ok(Some(why))` when it is not (the step keeps waiting, with
    /// `why`). The default has no postcondition to read.
    async fn verify_performed(&self, step: &PlannedStep) -> Result<Option<String>, StepError> {
        let _ = step;
        Ok(None)
    }

    /// Read-only checks that must hold, live, before stage `stage` of `plan` starts changing
    /// anything: the rules that need the fleet's state at that moment (the tier order, when
    /// front-ends are upgraded by an earlier stage of the same run). `Err` halts the run with
    /// nothing of the stage started. The engine knows no rule itself; the default checks
    /// nothing.
    async fn before_stage(&self, plan: &Plan, stage: usize) -> Result<(), StageHalt> {
        let _ = (plan, stage);
        Ok(())
    }
}

/// Why a stage must not start (see [`StepRunner::before_stage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageHalt {
    /// The halt class.
    pub class: HaltClass,
    /// Why, naming the rule and the hosts.
    pub reason: String,
}
