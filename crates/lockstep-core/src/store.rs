//! The [`StateStore`] trait: durable checkpoints of a run, and the leases that keep one
//! controller per run and per host. `lockstep-store` implements it over SQLite and PostgreSQL;
//! the engine never names the database. A [`Fence`] is the controller's local view of its
//! leases: checked before every checkpoint and every remote action.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
    /// Approvals given, in order.
    pub approvals: Vec<Approval>,
    /// Creation time, ms since the Unix epoch.
    pub created_ms: u64,
}

/// An approval: what was approved (a gate `gate:NAME` or a step id), by whom and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The gate or step id.
    pub what: String,
    /// The OS user of the controller that recorded it (`lockstep approve`, or `--yes`).
    pub by: String,
    /// When, ms since the Unix epoch.
    pub at_ms: u64,
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
    /// This controller no longer holds the lease of the run (another controller took it over,
    /// or this one was paused past the lease's expiry): it must send nothing more.
    #[error("this controller lost the lease of run `{run}`: {detail}; it sent no further command")]
    Fenced {
        /// Run.
        run: RunId,
        /// Why (taken over by whom, or expired when).
        detail: String,
    },
    /// Hosts a run would touch are leased by other controllers or left by a dead one's run.
    #[error("{}", HostLease::describe_all(.0))]
    HostsLeased(Vec<HostLease>),
    /// The backend failed.
    #[error("state store `{path}`: {detail}")]
    Backend {
        /// File or URL of the store.
        path: String,
        /// What failed.
        detail: String,
    },
}

/// A host lease another controller holds (or a dead controller left), as a refusal names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostLease {
    /// Host.
    pub host: String,
    /// The controller holding it (`controller pid N on host H`).
    pub holder: String,
    /// The run it was taken for, once the run exists.
    pub run: Option<RunId>,
    /// The holder stopped renewing it (the controller died or hangs).
    pub expired: bool,
}

impl HostLease {
    /// One line per host, with what to do about it.
    pub fn describe_all(leases: &[HostLease]) -> String {
        let lines: Vec<String> = leases
            .iter()
            .map(|l| match (&l.run, l.expired) {
                (Some(run), true) => format!(
                    "host `{}` was left mid-run by run `{run}`, whose controller ({}) stopped renewing its lease: only `lockstep resume {run}` may take it over",
                    l.host, l.holder
                ),
                (Some(run), false) => format!(
                    "host `{}` is being driven by another controller ({}, run `{run}`)",
                    l.host, l.holder
                ),
                (None, _) => format!(
                    "host `{}` is leased by another controller ({}) that is starting a run",
                    l.host, l.holder
                ),
            })
            .collect();
        format!(
            "one controller per host: {}; nothing was changed",
            lines.join("; ")
        )
    }
}

/// Who holds a run's lease, for `lockstep status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLease {
    /// Run.
    pub run: RunId,
    /// The controller (`controller pid N on host H`).
    pub holder: String,
    /// Fencing token: grows by one at every take-over.
    pub token: u64,
    /// When the lease lapses unless renewed, ms since the Unix epoch.
    pub expires_ms: u64,
    /// It has lapsed: the holder died or hangs; a `lockstep controller` takes the run over.
    pub expired: bool,
}

/// A controller's local view of its leases: valid until a little before the store would let
/// another controller take them, counted on this machine's monotonic clock from the moment
/// the last renewal was sent. A controller paused past that point (SIGSTOP, a VM freeze, a
/// partition) finds its fence closed when it wakes, before it can send anything; a renewal the
/// store refused (another controller took over) closes it for good.
#[derive(Debug)]
pub struct Fence {
    ttl: Duration,
    state: Mutex<FenceState>,
}

#[derive(Debug, Default)]
struct FenceState {
    valid_until: Option<Instant>,
    lost: Option<String>,
}

impl Fence {
    /// A fence for leases of `ttl`; open until the first lease is taken.
    pub fn new(ttl: Duration) -> Self {
        Fence {
            ttl,
            state: Mutex::new(FenceState::default()),
        }
    }

    /// The lease length.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FenceState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A renewal sent at `sent` succeeded: valid until `sent` + 3/4 of the lease (the store
    /// counts the lease from when it wrote it, later than `sent`, so this side closes first).
    pub fn renewed(&self, sent: Instant) {
        let until = sent + self.ttl - self.ttl / 4;
        let mut st = self.state();
        if st.lost.is_none() {
            st.valid_until = Some(st.valid_until.map_or(until, |u| u.max(until)));
        }
    }

    /// The store refused a renewal or a write: closed for good.
    pub fn lose(&self, why: impl Into<String>) {
        let mut st = self.state();
        if st.lost.is_none() {
            st.lost = Some(why.into());
        }
    }

    /// `Ok` while the leases hold; else why not.
    pub fn check(&self) -> Result<(), String> {
        let st = self.state();
        if let Some(why) = &st.lost {
            return Err(why.clone());
        }
        match st.valid_until {
            Some(until) if Instant::now() >= until => Err(format!(
                "its lease was not renewed for {:.1} s (was the controller paused?), so another controller may have taken it over",
                (Instant::now() - until + self.ttl - self.ttl / 4).as_secs_f64()
            )),
            _ => Ok(()),
        }
    }
}

/// Held while a controller drives a run; dropping it releases the run.
pub trait RunLock: Send + Sync {}

/// A durable write in flight: resolves once it is durable (or failed).
pub type StoreFuture = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'static>>;

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

    /// Whether a live controller drives `run` now, found without taking anything (a `status`
    /// must never take a run or its lease from the controller driving it). `None`: this backend
    /// cannot tell beyond the run's lease, which the caller reads from [`Self::run_leases`].
    fn run_driven(&self, run: &RunId) -> Result<Option<bool>, StoreError> {
        let _ = run;
        Ok(None)
    }
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

    /// [`StateStore::put_step`] without blocking the caller: the future resolves when the record
    /// is durable. A store that group-commits shares one commit among the records that arrive
    /// while the previous commit syncs. Default: the blocking write.
    fn put_step_async(&self, run: &RunId, record: &StepRecord) -> StoreFuture {
        Box::pin(std::future::ready(self.put_step(run, record)))
    }

    /// [`StateStore::put_fact`] without blocking the caller (see [`StateStore::put_step_async`]).
    fn put_fact_async(&self, run: &RunId, fact: &Fact) -> StoreFuture {
        Box::pin(std::future::ready(self.put_fact(run, fact)))
    }

    /// This controller's fence, once it holds leases; `None` for stores without leases (the
    /// in-memory stores of tests).
    fn fence(&self) -> Option<std::sync::Arc<Fence>> {
        None
    }

    /// Leases every host of `hosts` to this controller, all or none, before its first remote
    /// action. Refused with [`StoreError::HostsLeased`], naming every holder, when another live
    /// controller holds one, or when a dead controller's unfinished run left one: only the
    /// resume of that run (`run`) takes those over. Default: no leases.
    fn take_hosts(&self, hosts: &[Name], run: Option<&RunId>) -> Result<(), StoreError> {
        let _ = (hosts, run);
        Ok(())
    }

    /// Ties this controller's host leases to the run it created.
    fn bind_hosts(&self, run: &RunId) -> Result<(), StoreError> {
        let _ = run;
        Ok(())
    }

    /// Releases every lease this controller holds (the drive ended cleanly).
    fn release_leases(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Every run lease, live or lapsed.
    fn run_leases(&self) -> Result<Vec<RunLease>, StoreError> {
        Ok(Vec::new())
    }

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
