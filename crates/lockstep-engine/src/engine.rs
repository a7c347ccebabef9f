//! [`Engine`]: starts, resumes and approves runs; each drive is an [`crate::executor`] run.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use lockstep_core::{
    EventSink, Fleet, Gate, Plan, RunId, RunMeta, RunRecord, StateStore, StepState,
};

use crate::error::EngineError;
use crate::executor::{gate_id, Executor};
use crate::options::EngineOptions;
use crate::outcome::RunOutcome;
use crate::runner::StepRunner;
use crate::step_task::{Backends, Shared};
use crate::stop::StopSignal;

/// The executor of plans: generic over the step runner, the state store and the event sink.
pub struct Engine {
    backends: Backends,
    store: Arc<dyn StateStore>,
    options: EngineOptions,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over these backends. `fleet` is the inventory the plan was made from (the
    /// front-end/back-end gate reads its front-ends).
    pub fn new(
        runner: Arc<dyn StepRunner>,
        store: Arc<dyn StateStore>,
        events: Arc<dyn EventSink>,
        fleet: Arc<Fleet>,
        options: EngineOptions,
    ) -> Engine {
        Engine {
            backends: Backends {
                runner,
                store: Arc::clone(&store),
                events,
                fleet,
            },
            store,
            options,
        }
    }

    /// The options.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    fn shared(&self, run: &RunId, plan: Plan, stop: &StopSignal) -> Arc<Shared> {
        Arc::new(Shared::new(
            self.backends.clone(),
            self.options.clone(),
            run.clone(),
            Arc::new(plan),
            stop.clone(),
        ))
    }

    /// Creates a run for `plan`, takes its lock for the whole drive and drives it until it
    /// finishes, halts or waits for an approval.
    pub async fn start(
        &self,
        plan: Plan,
        meta: RunMeta,
        stop: StopSignal,
    ) -> Result<RunOutcome, EngineError> {
        let run = self.store.create_run(&plan, &meta)?;
        let _lock = self.store.lock_run(&run)?;
        // The host leases the caller took now name this run: if this controller dies, only
        // the resume of this run may take them over.
        self.store.bind_hosts(&run)?;
        tracing::info!(%run, plan = plan.hash.short(), steps = plan.steps.len(), "run started");
        let exec = Executor::new(self.shared(&run, plan, &stop), &[], &[], stop);
        exec.drive(false).await
    }

    /// Resumes a run: takes its lock, re-probes every step an earlier drive left running (or
    /// failed), never runs a finished step again, and drives the rest.
    ///
    /// `current` is the plan made now from the same inventory and playbook (the CLI always
    /// passes it; `None` resumes the stored plan unchecked). If its hash differs from the stored
    /// plan's, the resume is refused with [`EngineError::PlanChanged`] unless `replan` is true
    /// (`lockstep resume --replan`): then the stored plan is replaced, and steps whose ids
    /// survive keep their state.
    pub async fn resume(
        &self,
        run: &RunId,
        current: Option<Plan>,
        replan: bool,
        stop: StopSignal,
    ) -> Result<RunOutcome, EngineError> {
        let _lock = self.store.lock_run(run)?;
        let mut record = self.store.load_run(run)?;
        if let Some(plan) = current {
            if plan.hash != record.plan.hash {
                if !replan {
                    return Err(EngineError::PlanChanged {
                        run: run.clone(),
                        stored: record.plan.hash.clone(),
                        new: plan.hash,
                    });
                }
                tracing::info!(%run, from = record.plan.hash.short(), to = plan.hash.short(), "replacing the plan");
                self.store.replace_plan(run, &plan)?;
                record = self.store.load_run(run)?;
            }
        }
        let RunRecord {
            plan,
            steps,
            approvals,
            ..
        } = record;
        tracing::info!(%run, plan = plan.hash.short(), "run resumed");
        let exec = Executor::new(self.shared(run, plan, &stop), &steps, &approvals, stop);
        exec.drive(true).await
    }

    /// Records approvals. `Some(id)` approves that step or gate (`gate:<stage name>`);
    /// `None` approves every step waiting for the operator and the approval gate the run waits
    /// at, if any. Returns the ids approved; `resume` then continues.
    pub fn approve(&self, run: &RunId, what: Option<&str>) -> Result<Vec<String>, EngineError> {
        approve(self.store.as_ref(), run, what)
    }
}

/// Records approvals in the store: `what` (a step id or `gate:<stage>`), or every waiting gate and
/// operator step when `None`. Needs no runner: `lockstep approve` calls it without a transport;
/// the next `resume` acts on the approvals.
pub fn approve(
    store: &dyn StateStore,
    run: &RunId,
    what: Option<&str>,
) -> Result<Vec<String>, EngineError> {
    let record = store.load_run(run)?;
    let ids = match what {
        Some(id) => {
            let known = record.plan.step(id).is_some()
                || record.plan.stages.iter().enumerate().any(|(k, s)| {
                    s.gate == Gate::Approval
                        && (id == gate_id(&s.name) || id == gate_id(&k.to_string()))
                });
            if !known {
                return Err(EngineError::UnknownApproval {
                    run: run.clone(),
                    what: id.to_owned(),
                });
            }
            vec![id.to_owned()]
        }
        None => {
            let ids = waiting_approvals(&record);
            if ids.is_empty() {
                return Err(EngineError::NothingToApprove { run: run.clone() });
            }
            ids
        }
    };
    for id in &ids {
        store.approve(run, id)?;
    }
    Ok(ids)
}

/// Ids of every waiting, unapproved step, and of the approval gate the run stands at (the first
/// stage with work left, when none of its steps started and every earlier step is settled).
fn waiting_approvals(record: &RunRecord) -> Vec<String> {
    let plan = &record.plan;
    let approved: HashSet<&str> = record.approvals.iter().map(String::as_str).collect();
    let by_id: HashMap<&str, StepState> = record
        .steps
        .iter()
        .map(|r| (r.step.as_str(), r.state))
        .collect();
    let state: Vec<StepState> = plan
        .steps
        .iter()
        .map(|s| {
            by_id
                .get(s.id.as_str())
                .copied()
                .unwrap_or(StepState::Pending)
        })
        .collect();
    let mut ids: Vec<String> = plan
        .steps
        .iter()
        .zip(&state)
        .filter(|(s, st)| **st == StepState::Waiting && !approved.contains(s.id.as_str()))
        .map(|(s, _)| s.id.clone())
        .collect();
    // A pending step is blocked when a step it depends on failed or is blocked (topological).
    let mut blocked = vec![false; state.len()];
    for (i, s) in plan.steps.iter().enumerate() {
        blocked[i] = state[i] == StepState::Pending
            && s.after
                .iter()
                .any(|&d| d < i && (state[d] == StepState::Failed || blocked[d]));
    }
    let open = |i: usize| {
        matches!(state[i], StepState::Running) || (state[i] == StepState::Pending && !blocked[i])
    };
    let first_open_stage = (0..plan.steps.len())
        .filter(|&i| open(i))
        .map(|i| plan.steps[i].stage)
        .min();
    if let Some(k) = first_open_stage {
        let untouched = plan
            .steps
            .iter()
            .zip(&state)
            .filter(|(s, _)| s.stage == k)
            .all(|(_, st)| *st == StepState::Pending);
        if let Some(stage) = plan.stages.get(k) {
            let id = gate_id(&stage.name);
            if untouched
                && stage.gate == Gate::Approval
                && !approved.contains(id.as_str())
                && !approved.contains(gate_id(&k.to_string()).as_str())
            {
                ids.push(id);
            }
        }
    }
    ids
}
