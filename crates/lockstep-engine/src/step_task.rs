//! [`StepTask`]: one step's life on the node, as a task: probe (on resume), gates, checkpoint,
//! execute, facts, checkpoint. Every transition is durable before the next remote call.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lockstep_core::{
    now_ms, Event, EventSink, Fact, HaltClass, Name, Plan, PlannedStep, RunId, StateStore,
    StepRecord, StepState, StoreError,
};

use crate::error::EngineError;
use crate::options::EngineOptions;
use crate::runner::{Outcome, Probe, StepError, StepRunner};
use crate::stop::StopSignal;

/// How a step task ended, as the scheduler sees it.
#[derive(Debug)]
pub(crate) enum StepEnd {
    /// Done (or found done, or approved): dependents may start.
    Done,
    /// Waiting for the operator.
    Waiting,
    /// Failed: its unit is blocked; counts against the failure budget.
    Failed {
        /// Halt class of the failure.
        class: HaltClass,
        /// Host that failed.
        host: Name,
        /// Message.
        message: String,
    },
    /// The run must halt before this step starts (gate), the step was not touched.
    Halt {
        /// Class.
        class: HaltClass,
        /// Why.
        reason: String,
    },
    /// The store failed.
    Fatal(EngineError),
}

/// What a runner is given for a step whose `timeout_secs` is 0 (no timeout): a year.
const NO_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// How long after a step's timeout the engine gives up on a runner that has not returned.
const TIMEOUT_GRACE: Duration = Duration::from_secs(30);

/// The backends an engine drives runs with.
#[derive(Clone)]
pub(crate) struct Backends {
    pub runner: Arc<dyn StepRunner>,
    pub store: Arc<dyn StateStore>,
    pub events: Arc<dyn EventSink>,
}

/// What every step task of a drive shares.
pub(crate) struct Shared {
    pub runner: Arc<dyn StepRunner>,
    pub store: Arc<dyn StateStore>,
    pub events: Arc<dyn EventSink>,
    pub options: EngineOptions,
    pub run: RunId,
    pub plan: Arc<Plan>,
    pub t0: Instant,
    pub stop: StopSignal,
    /// The controller's leases, when the store keeps them: see [`Shared::fenced`].
    pub fence: Option<Arc<lockstep_core::Fence>>,
}

impl Shared {
    /// The shared state of one drive.
    pub fn new(
        backends: Backends,
        options: EngineOptions,
        run: RunId,
        plan: Arc<Plan>,
        stop: StopSignal,
    ) -> Shared {
        let Backends {
            runner,
            store,
            events,
        } = backends;
        Shared {
            fence: store.fence(),
            runner,
            store,
            events,
            options,
            run,
            plan,
            t0: Instant::now(),
            stop,
        }
    }

    /// Milliseconds since this drive started.
    pub fn t_ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    /// The fencing hook: `Ok` while this controller still holds its leases (run and hosts).
    /// Every checkpoint and every call of the runner passes here first, so a controller paused
    /// past its lease, or whose run another controller took over, sends nothing more.
    pub fn fenced(&self) -> Result<(), StoreError> {
        match &self.fence {
            Some(f) => f.check().map_err(|detail| StoreError::Fenced {
                run: self.run.clone(),
                detail,
            }),
            None => Ok(()),
        }
    }

    /// A failed write of a controller whose lease lapsed meanwhile (a store ends the session of
    /// a client paused inside a transaction) failed because of that: say so.
    fn why_failed(&self, e: StoreError) -> StoreError {
        match self.fenced() {
            Err(fenced) if !matches!(e, StoreError::Fenced { .. }) => fenced,
            _ => e,
        }
    }

    /// [`Shared::fenced`] as the failure of a call to `host` (the step then fails, and its
    /// checkpoint, fenced too, ends the drive).
    fn fenced_for(&self, host: &Name) -> Result<(), StepError> {
        self.fenced()
            .map_err(|e| StepError::new(HaltClass::OperatorStop, host, e.to_string()))
    }

    /// Writes a step record (durable on return), then emits its event (which takes the record's
    /// id and message, so a transition costs no more copies than it must).
    pub fn checkpoint(&self, idx: usize, record: StepRecord) -> Result<(), EngineError> {
        self.fenced()?;
        self.store
            .put_step(&self.run, &record)
            .map_err(|e| self.why_failed(e))?;
        self.emit_step(idx, record);
        Ok(())
    }

    /// [`Shared::checkpoint`] that lets the drive run other steps while the record syncs (and
    /// so share one commit with them, when the store group-commits).
    pub async fn checkpoint_async(
        &self,
        idx: usize,
        record: StepRecord,
    ) -> Result<(), EngineError> {
        self.fenced()?;
        self.store
            .put_step_async(&self.run, &record)
            .await
            .map_err(|e| self.why_failed(e))?;
        self.emit_step(idx, record);
        Ok(())
    }

    fn emit_step(&self, idx: usize, record: StepRecord) {
        let step = &self.plan.steps[idx];
        tracing::debug!(step = %step.id, host = %step.host, state = record.state.as_str(), "checkpoint");
        self.events.emit(&Event::Step {
            index: idx,
            id: record.step,
            host: step.host.clone(),
            state: record.state,
            rule: step.rule.clone(),
            message: record.message,
            t_ms: self.t_ms(),
        });
    }

    /// Runs a read-only call, retrying `NodeUnreachable` failures `options.retries` times.
    pub(crate) async fn read_only<T, F, Fut>(
        &self,
        host: &Name,
        mut call: F,
    ) -> Result<T, StepError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StepError>>,
    {
        let mut attempt = 0;
        loop {
            self.fenced_for(host)?;
            match call().await {
                Err(e)
                    if e.class == HaltClass::NodeUnreachable && attempt < self.options.retries =>
                {
                    attempt += 1;
                    tracing::debug!(host = %e.host, attempt, "read-only call failed, retrying: {}", e.message);
                    tokio::time::sleep(self.options.retry_backoff).await;
                }
                other => return other,
            }
        }
    }
}

/// The first wait before re-probing a step found in progress on resume.
const FIRST_PROBE_WAIT: Duration = Duration::from_millis(250);

/// The wait after the `n`-th probe (from 1) that found a step in progress: 250 ms, doubling,
/// capped at `ceiling` (the step was probed at once; most in-flight steps end within seconds).
pub(crate) fn probe_backoff(n: u32, ceiling: Duration) -> Duration {
    let factor = 1u32
        .checked_shl(n.saturating_sub(1).min(31))
        .unwrap_or(u32::MAX);
    FIRST_PROBE_WAIT.saturating_mul(factor).min(ceiling)
}

/// Keeps the last `limit` bytes of `s` (cut at a character boundary).
pub(crate) fn keep_tail(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_owned();
    }
    let mut start = s.len() - limit;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_owned()
}

/// One step to run.
pub(crate) struct StepTask {
    /// Drive state.
    pub shared: Arc<Shared>,
    /// Step index.
    pub idx: usize,
    /// Attempts recorded so far.
    pub attempts: u32,
    /// The step was left running or failed by an earlier drive: probe it first.
    pub needs_probe: bool,
}

impl StepTask {
    fn record(&self, state: StepState) -> StepRecord {
        let mut r = StepRecord::pending(&self.shared.plan.steps[self.idx].id);
        r.state = state;
        r.attempts = self.attempts;
        r
    }

    fn fatal(e: EngineError) -> StepEnd {
        StepEnd::Fatal(e)
    }

    /// Runs the step to one of its ends.
    pub async fn run(mut self) -> StepEnd {
        let sh = Arc::clone(&self.shared);
        let step = &sh.plan.steps[self.idx];
        if self.needs_probe {
            match self.probe_on_resume(step).await {
                Ok(None) => {}
                Ok(Some(end)) => return end,
                Err(e) => return self.fail(step, e, None),
            }
        }
        self.attempts += 1;
        let started = now_ms();
        let mut running = self.record(StepState::Running);
        running.started_ms = Some(started);
        if let Err(e) = sh.checkpoint_async(self.idx, running).await {
            return Self::fatal(e);
        }
        let result = self.execute(step).await;
        match result {
            Ok(Outcome::Done {
                output,
                exit_code,
                facts,
                message,
            }) => {
                for f in facts {
                    let fact = Fact {
                        host: f.host,
                        key: f.key,
                        value: f.value,
                        at_ms: now_ms(),
                    };
                    if let Err(e) = sh.store.put_fact_async(&sh.run, &fact).await {
                        return Self::fatal(e.into());
                    }
                    sh.events.emit(&Event::Fact {
                        host: fact.host,
                        key: fact.key,
                        value: fact.value,
                    });
                }
                let mut done = self.record(StepState::Done);
                done.started_ms = Some(started);
                done.finished_ms = Some(now_ms());
                done.exit_code = exit_code;
                done.output = keep_tail(&output, sh.options.output_limit);
                done.message = message;
                match sh.checkpoint_async(self.idx, done).await {
                    Ok(()) => StepEnd::Done,
                    Err(e) => Self::fatal(e),
                }
            }
            Ok(Outcome::Waiting { instructions }) => {
                let mut rec = self.record(StepState::Waiting);
                rec.started_ms = Some(started);
                if sh.options.auto_approve && !step.action.needs_named_approval() {
                    if let Err(e) = sh.store.approve(&sh.run, &step.id) {
                        return Self::fatal(e.into());
                    }
                    rec.state = StepState::Done;
                    rec.finished_ms = Some(now_ms());
                    rec.message = format!("auto-approved: {instructions}");
                    return match sh.checkpoint_async(self.idx, rec).await {
                        Ok(()) => StepEnd::Done,
                        Err(e) => Self::fatal(e),
                    };
                }
                rec.message = instructions;
                match sh.checkpoint_async(self.idx, rec).await {
                    Ok(()) => StepEnd::Waiting,
                    Err(e) => Self::fatal(e),
                }
            }
            Err(e) => self.fail(step, e, Some(started)),
        }
    }

    /// Resume: `Ok(None)` means "run it", `Ok(Some(end))` means the step ended here.
    async fn probe_on_resume(&self, step: &PlannedStep) -> Result<Option<StepEnd>, StepError> {
        let sh = &self.shared;
        let mut in_progress = 0u32;
        loop {
            match sh.read_only(&step.host, || sh.runner.probe(step)).await? {
                Probe::Done => {
                    let mut rec = self.record(StepState::Done);
                    rec.finished_ms = Some(now_ms());
                    rec.message = "found done on resume".to_owned();
                    return Ok(Some(match sh.checkpoint_async(self.idx, rec).await {
                        Ok(()) => StepEnd::Done,
                        Err(e) => StepEnd::Fatal(e),
                    }));
                }
                Probe::NotDone => return Ok(None),
                Probe::InProgress => {
                    in_progress = in_progress.saturating_add(1);
                    if in_progress > sh.options.probe_attempts {
                        return Ok(Some(StepEnd::Halt {
                            class: HaltClass::Precondition,
                            reason: format!(
                                "step `{}` is still in progress on host `{}` after {} probes; let it finish",
                                step.id, step.host, in_progress
                            ),
                        }));
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(probe_backoff(in_progress, sh.options.probe_interval)) => {}
                        _ = sh.stop.triggered() => {
                            return Ok(Some(StepEnd::Halt {
                                class: HaltClass::OperatorStop,
                                reason: format!(
                                    "stopped by the operator while step `{}` was still in progress on host `{}`",
                                    step.id, step.host
                                ),
                            }));
                        }
                    }
                }
            }
        }
    }

    /// Runs the action within the step's timeout. Only actions that change nothing are retried.
    async fn execute(&self, step: &PlannedStep) -> Result<Outcome, StepError> {
        let sh = &self.shared;
        let timeout = if step.timeout_secs == 0 {
            None
        } else {
            Some(Duration::from_secs(step.timeout_secs))
        };
        let call = || async {
            match timeout {
                // The runner gets the step's timeout (the transport terminates the command at
                // it and reports what it saw); the engine's own deadline, a grace later, only
                // catches a runner that does not return.
                Some(t) => {
                    match tokio::time::timeout(
                        t.saturating_add(t.min(TIMEOUT_GRACE)),
                        sh.runner.execute(step, t),
                    )
                    .await
                    {
                        Ok(r) => r,
                        Err(_) => Err(StepError::new(
                            HaltClass::StepFailed,
                            &step.host,
                            format!(
                                "step `{}` did not finish within {} s on host `{}`",
                                step.id, step.timeout_secs, step.host
                            ),
                        )),
                    }
                }
                None => sh.runner.execute(step, NO_TIMEOUT).await,
            }
        };
        if step.action.is_change() {
            sh.fenced_for(&step.host)?;
            call().await
        } else {
            sh.read_only(&step.host, call).await
        }
    }

    fn fail(&self, step: &PlannedStep, e: StepError, started: Option<u64>) -> StepEnd {
        let sh = &self.shared;
        let mut rec = self.record(StepState::Failed);
        rec.started_ms = started;
        rec.finished_ms = Some(now_ms());
        rec.exit_code = e.exit_code;
        rec.output = keep_tail(&e.output, sh.options.output_limit);
        rec.message = e.message.clone();
        if let Err(err) = sh.checkpoint(self.idx, rec) {
            return StepEnd::Fatal(err);
        }
        tracing::warn!(step = %step.id, host = %e.host, class = %e.class, "step failed: {}", e.message);
        StepEnd::Failed {
            class: e.class,
            host: step.host.clone(),
            message: format!(
                "step `{}` on host `{}` failed: {}",
                step.id, step.host, e.message
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{keep_tail, probe_backoff};
    use std::time::Duration;

    #[test]
    fn an_in_flight_step_is_reprobed_on_a_backoff_not_a_fixed_interval() {
        // Defect 9 of issue 11: resumes waited a fixed 30 s before the second probe.
        let ceiling = Duration::from_secs(30);
        assert_eq!(probe_backoff(1, ceiling), Duration::from_millis(250));
        assert_eq!(probe_backoff(2, ceiling), Duration::from_millis(500));
        assert_eq!(probe_backoff(3, ceiling), Duration::from_secs(1));
        assert_eq!(probe_backoff(10, ceiling), ceiling);
        // At the bounds: no overflow, the ceiling holds.
        assert_eq!(probe_backoff(u32::MAX, ceiling), ceiling);
        assert_eq!(probe_backoff(0, ceiling), Duration::from_millis(250));
        assert!(probe_backoff(u32::MAX, Duration::MAX) > Duration::from_secs(24 * 3600));
    }

    #[test]
    fn keep_tail_keeps_the_last_bytes_at_a_char_boundary() {
        assert_eq!(keep_tail("abc", 5), "abc");
        assert_eq!(keep_tail("abcdef", 3), "def");
        // "é" is two bytes: a cut inside it moves forward to the next character.
        assert_eq!(keep_tail("aéb", 2), "b");
        assert_eq!(keep_tail("aéb", 3), "éb");
        assert_eq!(keep_tail("xyz", 0), "");
    }
}
