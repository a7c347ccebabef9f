//! The seam between the engine and the actions: [`StepRunner`] and the types it returns.
//!
//! The types mirror `lockstep-actions`' `Outcome`, `Probe`, `FactOut` and `ActionError` field by
//! field, so that the adapter the integrator writes (`BuiltinRunner`) is a plain conversion. The
//! engine never depends on the actions crate itself.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use lockstep_core::{HaltClass, Name, Plan, PlannedStep};

/// A fact an action learnt on a node (stored with `put_fact` before the step is marked done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactOut {
    /// Host the fact is about.
    pub host: Name,
    /// Key (`build.before`, `group.EVS1.owner.before`, `boot.time`).
    pub key: String,
    /// Value.
    pub value: String,
}

/// How a step's main action ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The action is done.
    Done {
        /// Output of its commands (the engine keeps the tail, `output_limit` bytes).
        output: String,
        /// Exit code of the main command, if any.
        exit_code: Option<i32>,
        /// Facts learnt.
        facts: Vec<FactOut>,
        /// Message for a person.
        message: String,
    },
    /// An operator step: the run waits for `lockstep approve`.
    Waiting {
        /// What the operator must do.
        instructions: String,
    },
}

/// The "already done?" answer used on resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Probe {
    /// The step's effect is in place: never run it again.
    Done,
    /// The step's effect is not there: run it.
    NotDone,
    /// The step is still running on the node (an installer): wait and probe again.
    InProgress,
}

/// Why an action failed: the halt class it maps to, and what the node said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct StepError {
    /// The class the failure halts the run with (when the failure budget is 0).
    pub class: HaltClass,
    /// Host the action ran on.
    pub host: Name,
    /// What went wrong, for a person.
    pub message: String,
    /// Output of the commands run.
    pub output: String,
    /// Exit code of the main command, if any.
    pub exit_code: Option<i32>,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StepError {
    /// An error with no output (for runners that fail before running anything).
    pub fn new(class: HaltClass, host: &Name, message: impl Into<String>) -> Self {
        StepError {
            class,
            host: host.clone(),
            message: message.into(),
            output: String::new(),
            exit_code: None,
        }
    }
}

/// Runs the actions of planned steps. The engine decides when; the runner decides how (the
/// command lines, reading results, probes). Implemented over `lockstep-actions` by the CLI's
/// wiring and by in-memory fakes in tests.
#[async_trait]
pub trait StepRunner: Send + Sync {
    /// Runs the step's action on `step.host`, within `timeout`.
    async fn execute(&self, step: &PlannedStep, timeout: Duration) -> Result<Outcome, StepError>;

    /// Whether the step's effect is already in place (read-only).
    async fn probe(&self, step: &PlannedStep) -> Result<Probe, StepError>;

    /// The postcondition of a step the operator performed by hand and approved by name
    /// ([`lockstep_core::Action::needs_named_approval`]), read before the run goes on:
    /// `Ok(None)` when its effect is in place, `Ok(Some(why))` when it is not (the step keeps
    /// waiting, with `why`). The default has no postcondition to read.
    async fn verify_performed(&self, step: &PlannedStep) -> Result<Option<String>, StepError> {
        let _ = step;
        Ok(None)
    }

    /// Read-only checks that must hold, live, before stage `stage` of `plan` starts changing
    /// anything: the rules that need the fleet's state at that moment (the actions' tier order,
    /// when front-ends are upgraded by an earlier stage of the same run). `Err` halts the run
    /// with nothing of the stage started. The engine knows no rule itself; the default checks
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
