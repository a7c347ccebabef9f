//! [`Executor`]: one drive of a run. Stages in order behind their gates; within a stage, ready
//! steps run concurrently under the site and per-site unit limits; halts, stops and operator
//! waits end the drive at a safe point (running steps finish, nothing new starts).
//!
//! Scheduling is event-driven: a step's completion decrements its dependents' counters
//! (precomputed in [`Graph`]) and starts those that reach zero. Nothing polls on a timer, nothing
//! scans the plan per transition. Running steps are futures in a `FuturesUnordered` owned by the
//! drive (not spawned tasks), so a completion and the starts it causes happen in one poll; the
//! runner's futures must therefore not block the thread.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use lockstep_core::{
    Event, Gate, HaltClass, Name, RunId, RunStatus, Standing, StepRecord, StepState,
};
use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;

use crate::error::EngineError;
use crate::graph::Graph;
use crate::outcome::RunOutcome;
use crate::step_task::{Shared, StepEnd, StepTask};
use crate::stop::StopSignal;

/// How a stage's drive ended.
enum StageEnd {
    /// Nothing more can run in it; go on (its steps are complete, or failed within budget).
    Settled,
    /// Operator steps wait.
    Waiting(String),
    /// Halted (or stopped).
    Halted,
}

/// A running step: its index and how it ended (or its panic).
type StepFuture =
    Pin<Box<dyn Future<Output = (usize, Result<StepEnd, Box<dyn Any + Send>>)> + Send>>;

/// The text of a panic payload, as far as it is text.
fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

/// The approval id of a stage's gate.
pub(crate) fn gate_id(stage_name: &str) -> String {
    format!("gate:{stage_name}")
}

/// One drive of a run.
pub(crate) struct Executor {
    sh: Arc<Shared>,
    graph: Graph,
    stop: StopSignal,
    state: Vec<StepState>,
    remaining: Vec<u32>,
    attempts: Vec<u32>,
    needs_probe: Vec<bool>,
    approvals: HashSet<String>,
    /// Approved steps whose postcondition does not hold yet: why (they keep waiting).
    unverified: BTreeMap<usize, String>,
    /// Hosts with a failed step (lower-cased key), for the failure budget.
    failed_hosts: BTreeMap<String, Name>,
    /// Hosts with a failed step, per stage (for the stages' own failure budgets).
    stage_failed_hosts: BTreeMap<usize, HashSet<String>>,
    first_failure: Option<(HaltClass, String)>,
    halt: Option<(HaltClass, String)>,
    fatal: Option<EngineError>,
    /// The running steps, polled by the drive itself: a completion is handled, and the steps
    /// it makes ready are started, in the same poll (no task spawn, no cross-task wake-up).
    tasks: FuturesUnordered<StepFuture>,
    // Per-stage slot accounting (see `make_ready` and `release`).
    stage: usize,
    max_sites: usize,
    max_units: usize,
    /// Steps of the site running, or ready but held by the unit limit.
    site_count: Vec<usize>,
    /// Steps of the unit running.
    unit_count: Vec<usize>,
    active_sites: usize,
    active_units: Vec<usize>,
    /// Ready steps of a site that has no slot yet.
    site_queue: Vec<Vec<usize>>,
    /// Sites waiting for a slot, by rank in the stage.
    pending_sites: BTreeSet<(usize, usize)>,
    /// Ready steps of a unit that has no slot yet.
    unit_queue: Vec<Vec<usize>>,
    /// Units waiting for a slot, per site, in plan order.
    pending_units: Vec<BTreeSet<usize>>,
}

impl Executor {
    /// A drive of `sh.plan` from the step records `records` (plan order, or empty for a new run).
    pub fn new(
        sh: Arc<Shared>,
        records: &[StepRecord],
        approvals: &[String],
        stop: StopSignal,
    ) -> Executor {
        let plan = Arc::clone(&sh.plan);
        let graph = Graph::new(&plan);
        let n = plan.steps.len();
        let by_id: HashMap<&str, &StepRecord> =
            records.iter().map(|r| (r.step.as_str(), r)).collect();
        let mut state = vec![StepState::Pending; n];
        let mut attempts = vec![0; n];
        let mut needs_probe = vec![false; n];
        for (i, step) in plan.steps.iter().enumerate() {
            if let Some(r) = by_id.get(step.id.as_str()) {
                state[i] = r.state;
                attempts[i] = r.attempts;
                needs_probe[i] = matches!(r.state, StepState::Running | StepState::Failed);
            }
        }
        let remaining = plan
            .steps
            .iter()
            .map(|s| {
                s.after
                    .iter()
                    .filter(|&&d| d < n && !state[d].is_complete())
                    .count() as u32
            })
            .collect();
        let (n_sites, n_units) = (graph.n_sites, graph.n_units);
        Executor {
            sh,
            graph,
            stop,
            state,
            remaining,
            attempts,
            needs_probe,
            approvals: approvals.iter().cloned().collect(),
            unverified: BTreeMap::new(),
            failed_hosts: BTreeMap::new(),
            stage_failed_hosts: BTreeMap::new(),
            first_failure: None,
            halt: None,
            fatal: None,
            tasks: FuturesUnordered::new(),
            stage: 0,
            max_sites: usize::MAX,
            max_units: usize::MAX,
            site_count: vec![0; n_sites],
            unit_count: vec![0; n_units],
            active_sites: 0,
            active_units: vec![0; n_sites],
            site_queue: vec![Vec::new(); n_sites],
            pending_sites: BTreeSet::new(),
            unit_queue: vec![Vec::new(); n_units],
            pending_units: vec![BTreeSet::new(); n_sites],
        }
    }

    fn complete_count(&self) -> usize {
        self.state.iter().filter(|s| s.is_complete()).count()
    }

    /// Drives the run to its end, a halt, or a wait.
    pub async fn drive(mut self, resumed: bool) -> Result<RunOutcome, EngineError> {
        let sh = Arc::clone(&self.sh);
        let run = sh.run.clone();
        sh.store.set_status(&run, &RunStatus::Running)?;
        sh.events.emit(&Event::RunStarted {
            run: run.clone(),
            plan: sh.plan.hash.clone(),
            steps: sh.plan.steps.len(),
            complete: self.complete_count(),
            resumed,
        });
        self.settle_waiting_steps().await?;
        for k in 0..self.graph.stage_steps.len() {
            let steps = &self.graph.stage_steps[k];
            if steps.iter().all(|&i| self.state[i].is_complete()) {
                continue;
            }
            let started = steps.iter().any(|&i| self.state[i] != StepState::Pending);
            if self.stop.is_triggered() {
                self.set_halt(
                    HaltClass::OperatorStop,
                    "stopped by the operator".to_owned(),
                );
                return self.finish(None);
            }
            if !started {
                if let Some(outcome) = self.pass_gate(k).await? {
                    return Ok(outcome);
                }
                if let Err(h) = sh.runner.before_stage(&sh.plan, k).await {
                    self.set_halt(h.class, h.reason);
                    return self.finish(None);
                }
            }
            let name = sh
                .plan
                .stages
                .get(k)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            sh.events.emit(&Event::StageStarted { stage: k, name });
            match self.run_stage(k).await {
                StageEnd::Settled => {}
                StageEnd::Waiting(reason) => return self.finish(Some(reason)),
                StageEnd::Halted => return self.finish(None),
            }
        }
        self.finish(None)
    }

    /// On resume, a waiting step approved by the operator (or any, with `auto_approve`) is done;
    /// a step the operator performed by hand is done only when its postcondition holds
    /// ([`crate::runner::StepRunner::verify_performed`]), else it keeps waiting and says why.
    async fn settle_waiting_steps(&mut self) -> Result<(), EngineError> {
        let sh = Arc::clone(&self.sh);
        for i in 0..self.state.len() {
            if self.state[i] != StepState::Waiting {
                continue;
            }
            let step = &sh.plan.steps[i];
            let id = &step.id;
            let approved = self.approvals.contains(id);
            if !approved && (!sh.options.auto_approve || step.action.needs_named_approval()) {
                continue;
            }
            if !approved {
                sh.store.approve(&sh.run, id)?;
                self.approvals.insert(id.clone());
            }
            if step.action.needs_named_approval() {
                let why = match sh
                    .read_only(&step.host, || sh.runner.verify_performed(step))
                    .await
                {
                    Ok(None) => None,
                    Ok(Some(why)) => Some(why),
                    Err(e) => Some(format!(
                        "its effect could not be read on host `{}`: {}",
                        e.host, e.message
                    )),
                };
                if let Some(why) = why {
                    let mut rec = StepRecord::pending(id);
                    rec.state = StepState::Waiting;
                    rec.attempts = self.attempts[i];
                    rec.message = format!("approved, but not in place: {why}");
                    sh.checkpoint(i, rec)?;
                    self.unverified.insert(i, why);
                    continue;
                }
            }
            let mut rec = StepRecord::pending(id);
            rec.state = StepState::Done;
            rec.attempts = self.attempts[i];
            rec.finished_ms = Some(lockstep_core::now_ms());
            rec.message = if approved {
                "approved by the operator".to_owned()
            } else {
                "auto-approved".to_owned()
            };
            sh.checkpoint(i, rec)?;
            self.mark_complete(i);
        }
        Ok(())
    }

    /// Marks a step complete and updates its dependents' counters (no scheduling).
    fn mark_complete(&mut self, i: usize) {
        self.state[i] = StepState::Done;
        for j in 0..self.graph.dependents[i].len() {
            let d = self.graph.dependents[i][j];
            self.remaining[d] = self.remaining[d].saturating_sub(1);
        }
    }

    /// The gate before stage `k`: `Some(outcome)` when the drive ends there (waiting, stopped).
    async fn pass_gate(&mut self, k: usize) -> Result<Option<RunOutcome>, EngineError> {
        let sh = Arc::clone(&self.sh);
        let Some(stage) = sh.plan.stages.get(k) else {
            return Ok(None);
        };
        match &stage.gate {
            Gate::None => Ok(None),
            Gate::Approval => {
                let id = gate_id(&stage.name);
                if self.approvals.contains(&id) || self.approvals.contains(&gate_id(&k.to_string()))
                {
                    return Ok(None);
                }
                if sh.options.auto_approve {
                    sh.store.approve(&sh.run, &id)?;
                    self.approvals.insert(id);
                    return Ok(None);
                }
                let reason = format!(
                    "stage `{}` waits for approval: `lockstep approve` (gate `{id}`)",
                    stage.name
                );
                sh.events.emit(&Event::GateWaiting {
                    stage: k,
                    reason: reason.clone(),
                });
                self.finish(Some(reason)).map(Some)
            }
            // A soak watches what the earlier stages changed: before the first stage that has
            // steps there is nothing to watch.
            Gate::Soak { .. } if !sh.plan.steps.iter().any(|s| s.stage < k) => Ok(None),
            Gate::Soak { secs } => {
                let wait =
                    Duration::try_from_secs_f64(*secs as f64 * sh.options.soak_scale.max(0.0))
                        .unwrap_or(Duration::MAX);
                sh.events.emit(&Event::GateWaiting {
                    stage: k,
                    reason: format!(
                        "soak {} before stage `{}`",
                        lockstep_core::duration_text(secs.saturating_mul(1000)),
                        stage.name
                    ),
                });
                tokio::select! {
                    _ = tokio::time::sleep(wait) => Ok(None),
                    _ = self.stop.triggered() => {
                        self.set_halt(HaltClass::OperatorStop, "stopped by the operator".to_owned());
                        self.finish(None).map(Some)
                    }
                }
            }
        }
    }

    fn set_halt(&mut self, class: HaltClass, reason: String) {
        if self.halt.is_none() {
            tracing::info!(%class, "halting at the next safe point: {reason}");
            self.halt = Some((class, reason));
        }
    }

    fn halting(&mut self) -> bool {
        if self.halt.is_none() && self.stop.is_triggered() {
            self.set_halt(
                HaltClass::OperatorStop,
                "stopped by the operator".to_owned(),
            );
        }
        self.halt.is_some() || self.fatal.is_some()
    }

    /// Runs stage `k` until nothing more can run in it.
    async fn run_stage(&mut self, k: usize) -> StageEnd {
        let sh = Arc::clone(&self.sh);
        self.stage = k;
        let stage = sh.plan.stages.get(k);
        self.max_sites = match stage.map(|s| s.max_parallel_sites).unwrap_or(0) {
            0 => usize::MAX,
            n => n as usize,
        };
        self.max_units = match sh.plan.max_parallel_per_site {
            0 => usize::MAX,
            n => n as usize,
        };
        let rank = &self.graph.site_rank[k];
        let mut ready: Vec<usize> = self.graph.stage_steps[k]
            .iter()
            .copied()
            .filter(|&i| self.is_runnable(i) && self.remaining[i] == 0)
            .collect();
        ready.sort_by_key(|&i| (rank[self.graph.site[i]], i));
        for i in ready {
            self.make_ready(i);
        }
        while let Some((i, ended)) = self.tasks.next().await {
            match ended {
                Ok(end) => self.on_end(i, end),
                Err(panic) => {
                    if self.fatal.is_none() {
                        self.fatal = Some(EngineError::StepPanicked {
                            run: sh.run.clone(),
                            step: sh.plan.steps[i].id.clone(),
                            detail: panic_message(panic.as_ref()),
                        });
                    }
                    self.release(i);
                }
            }
        }
        if self.halting() {
            return StageEnd::Halted;
        }
        let waiting: Vec<String> = self.graph.stage_steps[k]
            .iter()
            .filter(|&&i| self.state[i] == StepState::Waiting)
            .map(|&i| {
                let s = &sh.plan.steps[i];
                if let Some(why) = self.unverified.get(&i) {
                    format!(
                        "step `{}` on host `{}` was approved, but {why}; perform it, then `lockstep resume` (the approval stands and is checked again)",
                        s.id, s.host
                    )
                } else if s.action.needs_named_approval() {
                    format!(
                        "step `{}` on host `{}` waits for the operator to perform it, then `lockstep approve {} {}` naming it (`--yes` does not approve it)",
                        s.id, s.host, sh.run, s.id
                    )
                } else {
                    format!(
                        "step `{}` on host `{}` waits for the operator's acknowledgement (`lockstep approve {}`)",
                        s.id, s.host, sh.run
                    )
                }
            })
            .collect();
        if !waiting.is_empty() {
            return StageEnd::Waiting(format!("{}; then `lockstep resume`", waiting.join("; ")));
        }
        StageEnd::Settled
    }

    /// Not complete, not failed in this drive, not waiting: may be started.
    fn is_runnable(&self, i: usize) -> bool {
        match self.state[i] {
            StepState::Pending | StepState::Running => true,
            // Failed in an earlier drive: probed, then run again.
            StepState::Failed => self.needs_probe[i],
            StepState::Waiting | StepState::Done | StepState::Skipped => false,
        }
    }

    /// Step `i`'s dependencies are complete: start it if its site and unit have slots, else
    /// queue it. A site takes a slot while any of its steps runs or is ready (held by the unit
    /// limit); a unit takes one while any of its steps runs.
    fn make_ready(&mut self, i: usize) {
        if self.halting() {
            return;
        }
        let s = self.graph.site[i];
        if self.site_count[s] == 0 {
            if self.active_sites >= self.max_sites {
                self.site_queue[s].push(i);
                self.pending_sites
                    .insert((self.graph.site_rank[self.stage][s], s));
                return;
            }
            self.active_sites += 1;
        }
        self.site_count[s] += 1;
        let u = self.graph.unit[i];
        if self.unit_count[u] == 0 {
            if self.active_units[s] >= self.max_units {
                self.unit_queue[u].push(i);
                self.pending_units[s].insert(u);
                return;
            }
            self.active_units[s] += 1;
        }
        self.unit_count[u] += 1;
        self.spawn(i);
    }

    /// Step `i` stopped running: free its unit's and site's slots when they empty, and give them
    /// to the next queued unit (plan order) and site (stage order).
    fn release(&mut self, i: usize) {
        let s = self.graph.site[i];
        let u = self.graph.unit[i];
        self.unit_count[u] -= 1;
        if self.unit_count[u] == 0 {
            self.active_units[s] -= 1;
            while self.active_units[s] < self.max_units {
                let Some(next) = self.pending_units[s].pop_first() else {
                    break;
                };
                self.active_units[s] += 1;
                for j in std::mem::take(&mut self.unit_queue[next]) {
                    self.unit_count[next] += 1;
                    self.spawn(j);
                }
            }
        }
        self.site_count[s] -= 1;
        if self.site_count[s] == 0 {
            self.active_sites -= 1;
            while self.active_sites < self.max_sites {
                let Some((_, next)) = self.pending_sites.pop_first() else {
                    break;
                };
                for j in std::mem::take(&mut self.site_queue[next]) {
                    self.make_ready(j);
                }
            }
        }
    }

    fn spawn(&mut self, i: usize) {
        if self.halting() {
            // The drive is ending: nothing new starts (the slot counts no longer matter).
            return;
        }
        self.state[i] = StepState::Running;
        let task = StepTask {
            shared: Arc::clone(&self.sh),
            idx: i,
            attempts: self.attempts[i],
            needs_probe: self.needs_probe[i],
        };
        self.tasks.push(Box::pin(async move {
            (i, AssertUnwindSafe(task.run()).catch_unwind().await)
        }));
    }

    fn on_end(&mut self, i: usize, end: StepEnd) {
        let sh = Arc::clone(&self.sh);
        self.needs_probe[i] = false;
        match end {
            StepEnd::Done => {
                self.state[i] = StepState::Done;
                for j in 0..self.graph.dependents[i].len() {
                    let d = self.graph.dependents[i][j];
                    self.remaining[d] = self.remaining[d].saturating_sub(1);
                    if self.remaining[d] == 0
                        && sh.plan.steps[d].stage == self.stage
                        && self.is_runnable(d)
                    {
                        self.make_ready(d);
                    }
                }
            }
            StepEnd::Waiting => self.state[i] = StepState::Waiting,
            StepEnd::Failed {
                class,
                host,
                message,
            } => {
                self.state[i] = StepState::Failed;
                self.mark_blocked(i);
                let key = host.as_str().to_ascii_lowercase();
                self.failed_hosts.insert(key.clone(), host);
                if self.first_failure.is_none() {
                    self.first_failure = Some((class, message.clone()));
                }
                let st = sh.plan.steps[i].stage;
                let in_stage = self.stage_failed_hosts.entry(st).or_default();
                in_stage.insert(key);
                let in_stage = in_stage.len();
                let stage_budget = sh.plan.stages.get(st).and_then(|s| {
                    s.failure_budget
                        .map(|b| (s.name.clone(), b.max_failed_hosts as usize))
                });
                let budget = sh.plan.failure_budget.max_failed_hosts as usize;
                if let Some((name, b)) = stage_budget.filter(|(_, b)| in_stage > *b) {
                    if b == 0 {
                        self.set_halt(class, message);
                    } else {
                        self.set_halt(
                            HaltClass::BudgetExceeded,
                            format!(
                                "{in_stage} hosts of stage `{name}` failed, more than its failure budget of {b}; last: {message}"
                            ),
                        );
                    }
                } else if self.failed_hosts.len() > budget {
                    if budget == 0 {
                        self.set_halt(class, message);
                    } else {
                        self.set_halt(
                            HaltClass::BudgetExceeded,
                            format!(
                                "{} hosts failed, more than the failure budget of {budget}; last: {message}",
                                self.failed_hosts.len()
                            ),
                        );
                    }
                }
            }
            StepEnd::Halt { class, reason } => {
                // The step never started: it is pending again.
                self.state[i] = StepState::Pending;
                self.set_halt(class, reason);
            }
            StepEnd::Fatal(e) => {
                if self.fatal.is_none() {
                    self.fatal = Some(e);
                }
            }
        }
        self.release(i);
    }

    /// Records every pending step that depends on the failed step `failed`, transitively, as
    /// blocked (state pending, with the reason): its unit stops where it is.
    fn mark_blocked(&mut self, failed: usize) {
        let sh = Arc::clone(&self.sh);
        let reason = format!("blocked: step `{}` failed", sh.plan.steps[failed].id);
        let mut seen = HashSet::new();
        let mut stack = self.graph.dependents[failed].clone();
        while let Some(d) = stack.pop() {
            if !seen.insert(d) || self.state[d] != StepState::Pending {
                continue;
            }
            let mut rec = StepRecord::pending(&sh.plan.steps[d].id);
            rec.attempts = self.attempts[d];
            rec.message = reason.clone();
            if let Err(e) = sh.checkpoint(d, rec) {
                self.fatal.get_or_insert(e);
                return;
            }
            stack.extend_from_slice(&self.graph.dependents[d]);
        }
    }

    /// Writes the final status, emits the closing events and returns the outcome.
    fn finish(&mut self, waiting: Option<String>) -> Result<RunOutcome, EngineError> {
        if let Some(e) = self.fatal.take() {
            return Err(e);
        }
        let sh = Arc::clone(&self.sh);
        let run: RunId = sh.run.clone();
        let total = self.state.len();
        let complete = self.complete_count();
        if self.halt.is_none() && waiting.is_none() && complete < total {
            // Every stage settled but some steps failed within the budget (or are blocked
            // behind them).
            let (class, last) = self
                .first_failure
                .clone()
                .unwrap_or((HaltClass::StepFailed, "steps are blocked".to_owned()));
            let hosts: Vec<String> = self
                .failed_hosts
                .values()
                .map(|h| format!("`{h}`"))
                .collect();
            self.halt = Some((
                class,
                format!(
                    "{} of {total} steps complete; {} host(s) failed within the failure budget ({}); first: {last}",
                    complete,
                    hosts.len(),
                    hosts.join(", ")
                ),
            ));
        }
        let (status, outcome, word) = if let Some((class, reason)) = self.halt.clone() {
            sh.events.emit(&Event::Halted {
                class,
                reason: reason.clone(),
                next: class.next_step().to_owned(),
                standing: Standing::of(&sh.plan, &self.state).describe(),
            });
            (
                RunStatus::Halted {
                    class,
                    reason: reason.clone(),
                },
                RunOutcome::Halted {
                    run: run.clone(),
                    class,
                    reason,
                },
                "halted",
            )
        } else if let Some(reason) = waiting {
            (
                RunStatus::Waiting {
                    reason: reason.clone(),
                },
                RunOutcome::Waiting {
                    run: run.clone(),
                    reason,
                },
                "waiting",
            )
        } else {
            (
                RunStatus::Finished,
                RunOutcome::Finished { run: run.clone() },
                "finished",
            )
        };
        sh.store.set_status(&run, &status)?;
        sh.events.emit(&Event::RunFinished {
            run,
            status: word.to_owned(),
            complete,
            total,
        });
        Ok(outcome)
    }
}
