//! The [`StateStore`] trait: durable checkpoints of a run. `lockstep-store` implements it over
//! SQLite; the engine never names the database.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::halt::HaltClass;
use crate::name::Name;
use crate::plan::Plan;

/// A run's id: `r` + creation time + random suffix, sortable by creation time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    /// Not started.
    Pending,
    /// Started; if the controller stops now, resume re-probes it.
    Running,
    /// Waiting for the operator (`lockstep approve`).
    Waiting,
    /// Finished successfully.
    Done,
    /// Found already done by its probe, or not needed.
    Skipped,
    /// Failed.
    Failed,
}

impl StepState {
    /// Done or skipped: nothing more to do.
    pub fn is_complete(self) -> bool {
        matches!(self, StepState::Done | StepState::Skipped)
    }

    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Waiting => "waiting",
            StepState::Done => "done",
            StepState::Skipped => "skipped",
            StepState::Failed => "failed",
        }
    }
}

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum RunStatus {
    /// A controller is driving it (or died while driving it).
    Running,
    /// Waiting for an operator approval (a gate or an operator step).
    Waiting {
        /// What is awaited.
        reason: String,
    },
    /// Stopped on a halt.
    Halted {
        /// The class.
        class: HaltClass,
        /// The message.
        reason: String,
    },
    /// Every step is complete.
    Finished,
}

/// A step transition as written to the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step id.
    pub step: String,
    /// New state.
    pub state: StepState,
    /// Attempts so far (sends of the step's main command).
    pub attempts: u32,
    /// When the step started, ms since the Unix epoch.
    pub started_ms: Option<u64>,
    /// When the step ended, ms since the Unix epoch.
    pub finished_ms: Option<u64>,
    /// Exit code of the main command, if any.
    pub exit_code: Option<i32>,
    /// Output of the step's commands (truncated by the engine).
    pub output: String,
    /// Message for a person (why it failed, why skipped).
    pub message: String,
}

impl StepRecord {
    /// A fresh pending record.
    pub fn pending(step: &str) -> Self {
        StepRecord {
            step: step.to_owned(),
            state: StepState::Pending,
            attempts: 0,
            started_ms: None,
            finished_ms: None,
            exit_code: None,
            output: String::new(),
            message: String::new(),
        }
    }
}

/// A fact learnt on a node (versions, group owners before a move, boot time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    /// Host.
    pub host: Name,
    /// Key (`exchange.build`, `group.EVS1.owner`, `boot.time`, `build.before`).
    pub key: String,
    /// Value.
    pub value: String,
    /// When learnt, ms since the Unix epoch.
    pub at_ms: u64,
}

/// What was given to start a run: enough to plan it again identically (resume compares the
/// hash) and to show it in status and reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RunMeta {
    /// Inventory file(s), one per line.
    pub inventory: String,
    /// Playbook file (or built-in playbook name).
    pub playbook: String,
    /// Who started it (OS user).
    pub started_by: String,
    /// `--limit` patterns the plan was made with.
    #[serde(default)]
    pub limit: Vec<String>,
    /// Live group owners (group to node) the plan was made with.
    #[serde(default)]
    pub owners: std::collections::BTreeMap<String, String>,
    /// The operator's `-e NAME=VALUE` variables the plan was made with.
    #[serde(default)]
    pub extra_vars: std::collections::BTreeMap<String, String>,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Id.
    pub id: RunId,
    /// The plan (with its hash).
    pub plan: Plan,
    /// Start parameters.
    pub meta: RunMeta,
    /// Status.
    pub status: RunStatus,
    /// Latest record of every step, in plan order.
    pub steps: Vec<StepRecord>,
    /// Facts, in the order learnt.
    pub facts: Vec<Fact>,
    /// Approvals given (gate or step ids), in order.
    pub approvals: Vec<String>,
    /// Creation time, ms since the Unix epoch.
    pub created_ms: u64,
}

/// One line of `lockstep status` without a run id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Id.
    pub id: RunId,
    /// Playbook name.
    pub playbook: String,
    /// Status.
    pub status: RunStatus,
    /// Steps complete / all.
    pub complete: usize,
    /// All steps.
    pub total: usize,
    /// Creation time, ms since the Unix epoch.
    pub created_ms: u64,
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No run with that id.
    #[error("no run `{0}` in the state file")]
    NoSuchRun(RunId),
    /// No step with that id in the run.
    #[error("run `{run}` has no step `{step}`")]
    NoSuchStep {
        /// Run.
        run: RunId,
        /// Step.
        step: String,
    },
    /// Another controller holds the run.
    #[error("run `{run}` is being driven by another controller ({holder})")]
    Locked {
        /// Run.
        run: RunId,
        /// Who holds it (pid and host), as far as known.
        holder: String,
    },
    /// The backend failed.
    #[error("state store `{path}`: {detail}")]
    Backend {
        /// File or URL of the store.
        path: String,
        /// What failed.
        detail: String,
    },
}

/// Held while a controller drives a run; dropping it releases the run.
pub trait RunLock: Send + Sync {}

/// Durable state of runs. Every write is durable when the call returns: the engine writes a
/// transition before it starts the next remote action.
pub trait StateStore: Send + Sync {
    /// Stores a new run for `plan` (every step pending, status running) and returns its id.
    fn create_run(&self, plan: &Plan, meta: &RunMeta) -> Result<RunId, StoreError>;
    /// Loads a run.
    fn load_run(&self, run: &RunId) -> Result<RunRecord, StoreError>;
    /// The most recently created run.
    fn latest_run(&self) -> Result<Option<RunId>, StoreError>;
    /// Every run, newest first.
    fn list_runs(&self) -> Result<Vec<RunSummary>, StoreError>;
    /// Takes the run for this controller; fails with [`StoreError::Locked`] if another holds it.
    fn lock_run(&self, run: &RunId) -> Result<Box<dyn RunLock>, StoreError>;
    /// Writes a step's new record (durable on return).
    fn put_step(&self, run: &RunId, record: &StepRecord) -> Result<(), StoreError>;
    /// Writes a fact (durable on return).
    fn put_fact(&self, run: &RunId, fact: &Fact) -> Result<(), StoreError>;
    /// Sets the run's status.
    fn set_status(&self, run: &RunId, status: &RunStatus) -> Result<(), StoreError>;
    /// Records an approval of a gate or a step (by id).
    fn approve(&self, run: &RunId, what: &str) -> Result<(), StoreError>;
    /// Replaces the run's plan (`lockstep resume --replan`): step records whose ids survive keep
    /// their state.
    fn replace_plan(&self, run: &RunId, plan: &Plan) -> Result<(), StoreError>;

    /// Keeps facts read from the fleet outside any run (`lockstep facts`), each with the time it
    /// was read, in one durable write. A backend that keeps none says so.
    fn put_fleet_facts(&self, facts: &[Fact]) -> Result<(), StoreError> {
        let _ = facts;
        Err(StoreError::Backend {
            path: String::new(),
            detail: "this state store does not keep fleet facts".to_owned(),
        })
    }

    /// The latest reading of every host `put_fleet_facts` was given: for each host, the facts
    /// written with its newest time, sorted by host then in write order. Empty when none.
    fn latest_fleet_facts(&self) -> Result<Vec<Fact>, StoreError> {
        Ok(Vec::new())
    }
}
