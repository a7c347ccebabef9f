//! [`Engine`]: starts, resumes and approves runs; each drive is an [`crate::executor`] run.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use lockstep_core::{
    Event, EventSink, Gate, HaltClass, Plan, RunId, RunMeta, RunRecord, RunStatus, StateStore,
    StepState,
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
    /// An engine over these backends. It holds no rule of its own: live rules reach it through
    /// [`StepRunner::before_stage`] and the runner's steps.
    pub fn new(
        runner: Arc<dyn StepRunner>,
        store: Arc<dyn StateStore>,
        events: Arc<dyn EventSink>,
        options: EngineOptions,
    ) -> Engine {
        Engine {
            backends: Backends {
                runner,
                store: Arc::clone(&store),
                events,
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

    /// Records a run that halts before its first step: what was known before any change (live
    /// discovery) stops it. The run is stored with status halted and every step pending, so
    /// `lockstep resume` resumes this run (checking again) and not another; the events are the
    /// ones of any halted drive (`run-started`, `halted`, `run-finished`).
    ///
    /// `existing` is a stored run that changed nothing yet (a resume that halts again): its plan
    /// is replaced by `plan` and its status set; `meta` is then not used.
    pub fn halt_before_start(
        &self,
        existing: Option<&RunId>,
        plan: Plan,
        meta: RunMeta,
        class: HaltClass,
        reason: String,
    ) -> Result<RunOutcome, EngineError> {
        let run = match existing {
            Some(r) => r.clone(),
            None => self.store.create_run(&plan, &meta)?,
        };
        let _lock = self.store.lock_run(&run)?;
        if existing.is_some() {
            self.store.replace_plan(&run, &plan)?;
        }
        tracing::debug!(%run, %class, "run halted before its first change");
        let events = &self.backends.events;
        events.emit(&Event::RunStarted {
            run: run.clone(),
            plan: plan.hash.clone(),
            steps: plan.steps.len(),
            complete: 0,
            resumed: false,
        });
        events.emit(&Event::Halted {
            class,
            reason: reason.clone(),
            next: class.next_step().to_owned(),
            standing: lockstep_core::Standing::default().describe(),
        });
        self.store.set_status(
            &run,
            &RunStatus::Halted {
                class,
                reason: reason.clone(),
            },
        )?;
        events.emit(&Event::RunFinished {
            run: run.clone(),
            status: "halted".to_owned(),
            complete: 0,
            total: plan.steps.len(),
        });
        Ok(RunOutcome::Halted { run, class, reason })
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
        let approved: Vec<String> = approvals.into_iter().map(|a| a.what).collect();
        let exec = Executor::new(self.shared(run, plan, &stop), &steps, &approved, stop);
        exec.drive(true).await
    }

    /// Records approvals. `Some(id)` approves that waiting step or gate (`gate:<stage name>`);
    /// `None` approves every waiting step a person acknowledges (not one they must perform:
    /// those only by name) or, when no step waits, the approval gate the run waits at. Returns the ids approved; `resume` then continues.
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
            if record.plan.step(id).is_some() {
                let state = record
                    .steps
                    .iter()
                    .find(|s| s.step == id)
                    .map(|s| s.state)
                    .unwrap_or(StepState::Pending);
                if state != StepState::Waiting {
                    return Err(EngineError::NotWaiting {
                        run: run.clone(),
                        step: id.to_owned(),
                        state: state.as_str().to_owned(),
                    });
                }
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
    let approved: HashSet<&str> = record.approvals.iter().map(|a| a.what.as_str()).collect();
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
    let waiting: Vec<&lockstep_core::PlannedStep> = plan
        .steps
        .iter()
        .zip(&state)
        .filter(|(s, st)| **st == StepState::Waiting && !approved.contains(s.id.as_str()))
        .map(|(s, _)| s)
        .collect();
    // Steps an operator must perform are approved only by name.
    let mut ids: Vec<String> = waiting
        .iter()
        .filter(|s| !s.action.needs_named_approval())
        .map(|s| s.id.clone())
        .collect();
    if !waiting.is_empty() {
        // The run waits for its steps, not at a gate: a gate further on is not waiting yet.
        return ids;
    }
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
        // The gate waits only when every earlier stage is complete and none of its steps started.
        let untouched = plan.steps.iter().zip(&state).all(|(s, st)| {
            s.stage > k
                || (s.stage < k && st.is_complete())
                || (s.stage == k && *st == StepState::Pending)
        });
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
