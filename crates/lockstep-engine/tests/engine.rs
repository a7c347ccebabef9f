//! Scheduler tests of the engine against in-memory fakes (the real store, transport and actions
//! are tested in their own crates). Rule ids of KB 328839 are cited where a test enforces one.

mod support;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use lockstep_core::{
    Event, FailureBudget, Gate, HaltClass, Role, RunMeta, RunStatus, StateStore, StepState,
};
use lockstep_engine::{
    Engine, EngineError, EngineOptions, Probe, RunOutcome, StepRunner, StopSignal,
};
use rand::{Rng, SeedableRng};
use support::*;

struct Rig {
    log: Log,
    store: Arc<MemStore>,
    runner: Arc<FakeRunner>,
    events: Events,
    engine: Engine,
}

fn opts() -> EngineOptions {
    EngineOptions {
        soak_scale: 0.0,
        retries: 0,
        retry_backoff: Duration::from_millis(1),
        probe_interval: Duration::from_millis(1),
        probe_attempts: 5,
        ..EngineOptions::default()
    }
}

fn rig_with(options: EngineOptions, ms_per_sec: f64) -> Rig {
    let log = Log::default();
    let store = Arc::new(MemStore::new(log.clone()));
    let mut runner = FakeRunner::new(log.clone());
    runner.ms_per_sec = ms_per_sec;
    let runner = Arc::new(runner);
    let events = Events::default();
    let engine = Engine::new(
        runner.clone(),
        store.clone(),
        Arc::new(events.clone()),
        options,
    );
    Rig {
        log,
        store,
        runner,
        events,
        engine,
    }
}

fn rig() -> Rig {
    rig_with(opts(), 0.0)
}

async fn start(r: &Rig, plan: &lockstep_core::Plan) -> RunOutcome {
    r.engine
        .start(plan.clone(), RunMeta::default(), StopSignal::new())
        .await
        .unwrap()
}

fn assert_all_done_once(r: &Rig, plan: &lockstep_core::Plan, run: &lockstep_core::RunId) {
    let rec = r.store.record(run);
    for (s, rec) in plan.steps.iter().zip(&rec.steps) {
        assert_eq!(rec.state, StepState::Done, "step `{}`", s.id);
        assert_eq!(r.runner.effects(&s.id), 1, "step `{}` applied once", s.id);
    }
    assert_eq!(rec.status, RunStatus::Finished);
}

/// Position of the first log line equal to `line`.
fn pos(log: &[String], line: &str) -> usize {
    log.iter()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("`{line}` not in log"))
}

fn fe_then_be_plan() -> lockstep_core::Plan {
    fleet_plan(
        &[
            ("canary", vec![0], Gate::None, 1),
            ("wave", vec![1, 2, 3], Gate::None, 2),
        ],
        2,
    )
}

#[tokio::test]
async fn dependencies_and_stage_barriers_are_respected() {
    let r = rig();
    let plan = two_stage_plan();
    let out = start(&r, &plan).await;
    let RunOutcome::Finished { run } = out else {
        panic!("{out:?}")
    };
    assert_all_done_once(&r, &plan, &run);
    let log = r.log.lines();
    let last_stage0_done = plan
        .steps
        .iter()
        .filter(|s| s.stage == 0)
        .map(|s| pos(&log, &format!("put {} done", s.id)))
        .max()
        .unwrap();
    for s in &plan.steps {
        let exec = pos(&log, &format!("exec {}", s.id));
        for &d in &s.after {
            let dep_done = pos(&log, &format!("put {} done", plan.steps[d].id));
            assert!(
                dep_done < exec,
                "`{}` ran before `{}` was done",
                s.id,
                plan.steps[d].id
            );
        }
        if s.stage == 1 {
            assert!(
                exec > last_stage0_done,
                "`{}` ran before stage 0 ended",
                s.id
            );
        }
    }
    let kinds: Vec<&str> = r
        .events
        .all()
        .iter()
        .filter_map(|e| match e {
            Event::RunStarted { .. } => Some("run-started"),
            Event::StageStarted { .. } => Some("stage-started"),
            Event::RunFinished { .. } => Some("run-finished"),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "run-started",
            "stage-started",
            "stage-started",
            "run-finished"
        ]
    );
}

#[tokio::test]
async fn checkpoints_are_written_before_the_next_remote_call() {
    let r = rig();
    let plan = two_stage_plan();
    r.runner.script(
        "S1-H0/install",
        Script::Facts(vec![("build.before", "6.5.7226.6")]),
    );
    let RunOutcome::Finished { run } = start(&r, &plan).await else {
        panic!()
    };
    let log = r.log.lines();
    for s in &plan.steps {
        let exec = pos(&log, &format!("exec {}", s.id));
        let running = pos(&log, &format!("put {} running", s.id));
        let done = pos(&log, &format!("put {} done", s.id));
        assert!(running < exec && exec < done, "order of `{}`", s.id);
    }
    let fact = pos(&log, "fact S1-H0 build.before");
    assert!(fact < pos(&log, "put S1-H0/install done"));
    let rec = r.store.record(&run);
    assert_eq!(rec.facts.len(), 1);
    assert_eq!(rec.facts[0].value, "6.5.7226.6");
    let install = rec
        .steps
        .iter()
        .find(|s| s.step == "S1-H0/install")
        .unwrap();
    assert_eq!(install.attempts, 1);
    assert!(install.started_ms.is_some() && install.finished_ms.is_some());
    assert_eq!(install.output, "ran `S1-H0/install`");
}

#[tokio::test(start_paused = true)]
async fn max_parallel_sites_and_per_site_units_are_honoured() {
    let r = rig_with(opts(), 1.0);
    let plan = fleet_plan(&[("all", (0..6).collect(), Gate::None, 2)], 3);
    let plan = {
        let mut p = plan;
        p.max_parallel_per_site = 2;
        rehash(&mut p);
        p
    };
    let RunOutcome::Finished { run } = start(&r, &plan).await else {
        panic!()
    };
    assert_all_done_once(&r, &plan, &run);
    assert_eq!(r.runner.max_sites(), 2, "sites active at once");
    assert_eq!(
        r.runner.max_units_per_site(),
        2,
        "hosts of one site at once"
    );
    // Sites are taken in stage order: s0 and s1 start first, s5 last.
    let log = r.log.lines();
    assert!(pos(&log, "exec S1-H0/preflight") < pos(&log, "exec S2-H0/preflight"));
    assert!(pos(&log, "exec S4-H0/preflight") < pos(&log, "exec S5-H0/preflight"));
}

#[tokio::test(start_paused = true)]
async fn unlimited_plan_takes_exactly_the_critical_path_in_virtual_time() {
    let r = rig_with(opts(), 1.0);
    let plan = fleet_plan(
        &[
            ("canary", vec![0], Gate::None, 0),
            ("wave", (1..5).collect(), Gate::None, 0),
        ],
        10,
    );
    let t0 = tokio::time::Instant::now();
    let RunOutcome::Finished { .. } = start(&r, &plan).await else {
        panic!()
    };
    let elapsed = t0.elapsed().as_millis() as u64;
    // The fake sleeps 1 ms per estimated second; the paused clock makes this exact.
    let critical = plan.critical_path_secs();
    assert!(
        elapsed >= critical && elapsed <= critical + critical / 100,
        "virtual makespan {elapsed} ms vs critical path {critical}"
    );
    assert_eq!(r.runner.max_steps(), 40, "every host of the wave at once");
}

#[tokio::test]
async fn approval_gate_waits_then_approve_and_resume_continue() {
    let r = rig();
    let plan = fleet_plan(
        &[
            ("canary", vec![0], Gate::None, 1),
            ("wave", vec![1], Gate::Approval, 1),
        ],
        1,
    );
    let out = start(&r, &plan).await;
    let RunOutcome::Waiting { run, reason } = out else {
        panic!("{out:?}")
    };
    assert!(reason.contains("gate:wave"), "{reason}");
    assert!(matches!(
        r.store.record(&run).status,
        RunStatus::Waiting { .. }
    ));
    assert_eq!(r.store.state_of(&run, "S0-H0/assert"), StepState::Done);
    assert_eq!(r.runner.calls_of("S1-H0/preflight"), 0);
    assert!(r
        .events
        .all()
        .iter()
        .any(|e| matches!(e, Event::GateWaiting { stage: 1, .. })));
    // Resuming without approval waits again and runs nothing.
    let again = r
        .engine
        .resume(&run, Some(plan.clone()), false, StopSignal::new())
        .await
        .unwrap();
    assert!(matches!(again, RunOutcome::Waiting { .. }));
    assert_eq!(r.runner.calls_of("S1-H0/preflight"), 0);
    assert_eq!(r.engine.approve(&run, None).unwrap(), ["gate:wave"]);
    let out = r
        .engine
        .resume(&run, Some(plan.clone()), false, StopSignal::new())
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Finished { run: run.clone() });
    assert_all_done_once(&r, &plan, &run);
}

#[tokio::test]
async fn auto_approve_passes_gates_and_records_the_approval() {
    let r = rig_with(
        EngineOptions {
            auto_approve: true,
            ..opts()
        },
        0.0,
    );
    let plan = fleet_plan(
        &[
            ("canary", vec![0], Gate::None, 1),
            ("wave", vec![1], Gate::Approval, 1),
        ],
        1,
    );
    let RunOutcome::Finished { run } = start(&r, &plan).await else {
        panic!()
    };
    assert_eq!(approved(&r.store.record(&run)), ["gate:wave"]);
}

#[tokio::test(start_paused = true)]
async fn soak_gate_sleeps_its_scaled_time() {
    let r = rig_with(
        EngineOptions {
            soak_scale: 0.5,
            ..opts()
        },
        0.0,
    );
    let plan = fleet_plan(
        &[
            ("canary", vec![0], Gate::None, 1),
            ("wave", vec![1], Gate::Soak { secs: 3600 }, 1),
        ],
        1,
    );
    let t0 = tokio::time::Instant::now();
    let RunOutcome::Finished { .. } = start(&r, &plan).await else {
        panic!()
    };
    assert!(t0.elapsed() >= Duration::from_secs(1800));
    assert!(r.events.all().iter().any(
        |e| matches!(e, Event::GateWaiting { stage: 1, reason } if reason.contains("soak 1 h before"))
    ));
}

#[tokio::test]
async fn each_failure_class_halts_with_budget_zero() {
    for class in [
        HaltClass::StepFailed,
        HaltClass::VersionMismatch,
        HaltClass::Precondition,
        HaltClass::NodeUnreachable,
        HaltClass::InventoryMismatch,
    ] {
        let r = rig();
        let plan = fleet_plan(&[("all", vec![0, 1], Gate::None, 2)], 2);
        r.runner.script("S0-H1/install", Script::Fail(class));
        let out = start(&r, &plan).await;
        let RunOutcome::Halted {
            run,
            class: got,
            reason,
        } = out
        else {
            panic!("{out:?}")
        };
        assert_eq!(got, class);
        assert!(reason.contains("S0-H1/install"), "{reason}");
        let rec = r.store.record(&run);
        assert!(matches!(rec.status, RunStatus::Halted { class: c, .. } if c == class));
        let failed = rec
            .steps
            .iter()
            .find(|s| s.step == "S0-H1/install")
            .unwrap();
        assert_eq!(failed.state, StepState::Failed);
        assert_eq!(failed.exit_code, Some(1603));
        assert!(failed.output.contains("exit 1603"));
        // Safe point: nothing left running, the failed host's chain never went on.
        assert!(rec.steps.iter().all(|s| s.state != StepState::Running));
        assert_eq!(r.runner.calls_of("S0-H1/reboot"), 0);
        assert!(r.events.all().iter().any(|e| matches!(
            e,
            Event::Halted { class: c, next, .. } if *c == class && next == class.next_step()
        )));
    }
}

#[tokio::test]
async fn failure_budget_tolerates_then_halts() {
    // Budget 2, two hosts fail: the rest of the fleet completes; the run ends halted, listing them.
    let r = rig();
    let plan = {
        let mut p = fleet_plan(&[("all", vec![0, 1, 2], Gate::None, 3)], 2);
        p.failure_budget.max_failed_hosts = 2;
        rehash(&mut p);
        p
    };
    r.runner
        .script("S0-H0/install", Script::Fail(HaltClass::StepFailed));
    r.runner
        .script("S2-H1/install", Script::Fail(HaltClass::StepFailed));
    let out = start(&r, &plan).await;
    let RunOutcome::Halted { run, class, reason } = out else {
        panic!("{out:?}")
    };
    assert_eq!(class, HaltClass::StepFailed);
    assert!(
        reason.contains("`S0-H0`") && reason.contains("`S2-H1`"),
        "{reason}"
    );
    for s in &plan.steps {
        let state = r.store.state_of(&run, &s.id);
        let failed_host = ["S0-H0", "S2-H1"].contains(&s.host.as_str());
        let kind = s.id.split('/').nth(1).unwrap();
        match (failed_host, kind) {
            (false, _) => assert_eq!(state, StepState::Done, "{}", s.id),
            (true, "preflight" | "stop") => assert_eq!(state, StepState::Done, "{}", s.id),
            (true, "install") => assert_eq!(state, StepState::Failed, "{}", s.id),
            (true, _) => {
                assert_eq!(state, StepState::Pending, "{} is blocked", s.id);
                assert_eq!(r.runner.calls_of(&s.id), 0, "{} is blocked", s.id);
                let rec = r.store.record(&run);
                let rec = rec.steps.iter().find(|x| x.step == s.id).unwrap();
                assert!(
                    rec.message.starts_with("blocked: step `")
                        && rec.message.contains("/install` failed"),
                    "{}",
                    rec.message
                );
            }
        }
    }
    // Budget 1, two hosts fail: BudgetExceeded.
    let r = rig();
    let plan = {
        let mut p = fleet_plan(&[("all", vec![0, 1], Gate::None, 1)], 2);
        p.failure_budget.max_failed_hosts = 1;
        rehash(&mut p);
        p
    };
    r.runner
        .script("S0-H0/install", Script::Fail(HaltClass::StepFailed));
    r.runner
        .script("S1-H1/install", Script::Fail(HaltClass::StepFailed));
    let out = start(&r, &plan).await;
    let RunOutcome::Halted { class, reason, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(class, HaltClass::BudgetExceeded, "{reason}");
}

/// A canary stage (site 0) with budget `stage_budget` and a rest stage, overall budget 5, and
/// both canary hosts failing their install: the plan and how the run ends.
async fn two_canary_failures(r: &Rig, stage_budget: u32) -> (lockstep_core::Plan, RunOutcome) {
    let mut plan = fleet_plan(
        &[
            ("canary", vec![0], Gate::None, 1),
            ("rest", vec![1], Gate::None, 1),
        ],
        3,
    );
    plan.failure_budget.max_failed_hosts = 5;
    plan.stages[0].failure_budget = Some(FailureBudget {
        max_failed_hosts: stage_budget,
    });
    rehash(&mut plan);
    for id in ["S0-H0/install", "S0-H1/install"] {
        r.runner.script(id, Script::Fail(HaltClass::StepFailed));
    }
    let out = start(r, &plan).await;
    (plan, out)
}

#[tokio::test]
async fn a_stage_budget_halts_inside_the_overall_budget() {
    // Overall budget 5; the canary stage allows 1 failed host: two fail there, the run halts
    // with BudgetExceeded naming the stage, and the next stage never starts.
    let r = rig();
    let (plan, out) = two_canary_failures(&r, 1).await;
    let RunOutcome::Halted { class, reason, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(class, HaltClass::BudgetExceeded, "{reason}");
    assert!(
        reason.contains("stage `canary`") && reason.contains("budget of 1"),
        "{reason}"
    );
    for s in plan.steps.iter().filter(|s| s.stage == 1) {
        assert_eq!(r.runner.calls_of(&s.id), 0, "{} ran after the halt", s.id);
    }

    // The same failures with a stage budget of 2: the whole fleet runs on, and the run ends
    // halted only for the two failed hosts (within both budgets).
    let r = rig();
    let (plan, out) = two_canary_failures(&r, 2).await;
    let RunOutcome::Halted { class, reason, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(class, HaltClass::StepFailed, "{reason}");
    for s in plan.steps.iter().filter(|s| s.stage == 1) {
        assert_eq!(
            r.runner.calls_of(&s.id),
            1,
            "{} runs within the budgets",
            s.id
        );
    }
}

#[tokio::test]
async fn failed_step_is_reprobed_and_retried_on_resume() {
    let r = rig();
    let plan = fleet_plan(&[("all", vec![0], Gate::None, 1)], 2);
    r.runner
        .script("S0-H0/install", Script::Fail(HaltClass::StepFailed));
    let RunOutcome::Halted { run, .. } = start(&r, &plan).await else {
        panic!()
    };
    let out = r
        .engine
        .resume(&run, Some(plan.clone()), false, StopSignal::new())
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Finished { run: run.clone() });
    assert_eq!(r.runner.probes_of("S0-H0/install"), 1);
    assert_eq!(r.runner.calls_of("S0-H0/install"), 2);
    assert_eq!(r.runner.effects("S0-H0/install"), 1);
    let rec = r.store.record(&run);
    let install = rec
        .steps
        .iter()
        .find(|s| s.step == "S0-H0/install")
        .unwrap();
    assert_eq!(install.attempts, 2);
}

fn two_stage_plan() -> lockstep_core::Plan {
    let mut b = PlanBuilder::new()
        .stage("front-ends", &["s0"], Gate::None, 1)
        .stage("back-ends", &["s1"], Gate::None, 1);
    b.chain(0, "s0", Unit::Host, "S0-H0", Role::FrontEnd, CHAIN);
    b.chain(1, "s1", Unit::Host, "S1-H0", Role::BackEnd, CHAIN);
    b.build()
}

#[tokio::test]
async fn a_stage_whose_live_check_fails_halts_before_any_of_its_steps() {
    // Issue 11, defect 1: the engine holds no rule (the tier order now lives in the actions), but
    // a live check the runner makes before a stage halts the run with nothing of the stage
    // started, and is made again on resume.
    let r = rig();
    let plan = fe_then_be_plan();
    r.runner
        .halt_before_stage(1, Some("E3-FB: a front-end is below the target"));
    let out = start(&r, &plan).await;
    let RunOutcome::Halted { run, class, reason } = out else {
        panic!("{out:?}")
    };
    assert_eq!(class, HaltClass::VersionMismatch);
    assert!(reason.contains("E3-FB"), "{reason}");
    assert_eq!(r.runner.before_stage_calls(), vec![0, 1]);
    for step in plan.steps.iter().filter(|s| s.stage == 1) {
        assert_eq!(r.runner.calls_of(&step.id), 0, "{}", step.id);
        assert_eq!(r.store.state_of(&run, &step.id), StepState::Pending);
    }
    assert!(plan
        .steps
        .iter()
        .filter(|s| s.stage == 0)
        .all(|s| r.store.state_of(&run, &s.id) == StepState::Done));
    r.runner.halt_before_stage(1, None);
    let out = r
        .engine
        .resume(&run, Some(plan.clone()), false, StopSignal::new())
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Finished { run: run.clone() });
    assert_eq!(r.runner.before_stage_calls(), vec![0, 1, 1]);
    assert_all_done_once(&r, &plan, &run);
}

#[tokio::test]
async fn operator_step_waits_while_independent_work_continues() {
    let r = rig();
    let mut b = PlanBuilder::new().stage("all", &["s0", "s1"], Gate::None, 2);
    b.chain(
        0,
        "s0",
        Unit::Host,
        "S0-H0",
        Role::Standalone,
        &[("confirm", 1), ("install", 10), ("assert", 1)],
    );
    b.chain(0, "s1", Unit::Host, "S1-H0", Role::Standalone, CHAIN);
    let plan = b.build();
    r.runner.script("S0-H0/confirm", Script::Wait);
    let out = start(&r, &plan).await;
    let RunOutcome::Waiting { run, reason } = out else {
        panic!("{out:?}")
    };
    assert!(reason.contains("S0-H0/confirm"), "{reason}");
    assert_eq!(r.store.state_of(&run, "S0-H0/confirm"), StepState::Waiting);
    assert_eq!(r.store.state_of(&run, "S1-H0/assert"), StepState::Done);
    assert_eq!(r.runner.calls_of("S0-H0/install"), 0);
    assert_eq!(r.engine.approve(&run, None).unwrap(), ["S0-H0/confirm"]);
    let out = r
        .engine
        .resume(&run, None, false, StopSignal::new())
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Finished { run: run.clone() });
    assert_eq!(
        r.runner.calls_of("S0-H0/confirm"),
        1,
        "approved, not re-run"
    );
    assert!(matches!(
        r.engine.approve(&run, None),
        Err(EngineError::NothingToApprove { .. })
    ));
    assert!(matches!(
        r.engine.approve(&run, Some("gate:nope")),
        Err(EngineError::UnknownApproval { .. })
    ));
}

#[tokio::test]
async fn auto_approve_completes_operator_steps() {
    let r = rig_with(
        EngineOptions {
            auto_approve: true,
            ..opts()
        },
        0.0,
    );
    let mut b = PlanBuilder::new().stage("all", &["s0"], Gate::None, 1);
    b.chain(
        0,
        "s0",
        Unit::Host,
        "S0-H0",
        Role::Standalone,
        &[("confirm", 1), ("install", 1)],
    );
    let plan = b.build();
    r.runner.script("S0-H0/confirm", Script::Wait);
    let RunOutcome::Finished { run } = start(&r, &plan).await else {
        panic!()
    };
    assert_eq!(approved(&r.store.record(&run)), ["S0-H0/confirm"]);
}

#[tokio::test]
async fn stop_signal_halts_at_a_safe_point_and_resume_completes() {
    let r = rig();
    let plan = fleet_plan(&[("all", vec![0, 1, 2], Gate::None, 2)], 3);
    let stop = StopSignal::new();
    r.runner.trip_at.store(7, Ordering::SeqCst);
    let runner = r.runner.clone();
    let trigger = stop.clone();
    let watcher = tokio::spawn(async move {
        runner.trip.notified().await;
        trigger.trigger();
    });
    let out = r
        .engine
        .start(plan.clone(), RunMeta::default(), stop)
        .await
        .unwrap();
    watcher.await.unwrap();
    let RunOutcome::Halted { run, class, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(class, HaltClass::OperatorStop);
    let rec = r.store.record(&run);
    assert!(rec.steps.iter().all(|s| s.state != StepState::Running));
    let done_before = rec.steps.iter().filter(|s| s.state.is_complete()).count();
    assert!(done_before < plan.steps.len());
    let out = r
        .engine
        .resume(&run, Some(plan.clone()), false, StopSignal::new())
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Finished { run: run.clone() });
    assert_all_done_once(&r, &plan, &run);
}

#[tokio::test]
async fn resume_after_crashes_at_random_points_runs_every_step_once() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x010c_57e9);
    let (mut found_done, mut rerun) = (0, 0);
    for point in 0..40 {
        let r = rig();
        let plan = {
            let mut p = fleet_plan(
                &[
                    ("canary", vec![0], Gate::None, 1),
                    ("wave", vec![1, 2, 3], Gate::None, 2),
                ],
                2,
            );
            p.max_parallel_per_site = 1;
            rehash(&mut p);
            p
        };
        let total = plan.steps.len();
        let mut run_id = None;
        let mut crashes = 0;
        // Crash, resume, crash again... until a drive completes.
        for attempt in 0..6 {
            let crash_at = if attempt < 3 {
                rng.gen_range(1..=total)
            } else {
                usize::MAX
            };
            let before = r.runner.calls.load(Ordering::SeqCst);
            r.runner
                .trip_at
                .store(before.saturating_add(crash_at), Ordering::SeqCst);
            let engine_store = r.store.clone();
            let drive = {
                let engine = Engine::new(
                    r.runner.clone() as Arc<dyn StepRunner>,
                    engine_store as Arc<dyn StateStore>,
                    Arc::new(r.events.clone()),
                    opts(),
                );
                let plan = plan.clone();
                let run = run_id.clone();
                tokio::spawn(async move {
                    match run {
                        None => {
                            engine
                                .start(plan, RunMeta::default(), StopSignal::new())
                                .await
                        }
                        Some(run) => {
                            engine
                                .resume(&run, Some(plan), false, StopSignal::new())
                                .await
                        }
                    }
                })
            };
            let abort = drive.abort_handle();
            tokio::select! {
                res = drive => {
                    let out = res.unwrap().unwrap();
                    assert!(matches!(out, RunOutcome::Finished { .. }), "{out:?}");
                    run_id = Some(out.run().clone());
                    break;
                }
                _ = r.runner.trip.notified() => {
                    // Let the tripping step reach a random await point, then kill the controller.
                    for _ in 0..rng.gen_range(0..8) {
                        tokio::task::yield_now().await;
                    }
                    abort.abort();
                    crashes += 1;
                    if run_id.is_none() {
                        run_id = r.store.latest_run().unwrap();
                    }
                }
            }
        }
        let run = run_id.expect("a run was created");
        assert!(crashes >= 1, "point {point}: no crash happened");
        let rec = r.store.record(&run);
        assert_eq!(rec.status, RunStatus::Finished, "point {point}");
        for s in &plan.steps {
            assert_eq!(
                r.store.state_of(&run, &s.id),
                StepState::Done,
                "point {point}"
            );
            assert_eq!(
                r.runner.effects(&s.id),
                1,
                "point {point}: step `{}` applied {} times",
                s.id,
                r.runner.effects(&s.id)
            );
            if r.runner.probes_of(&s.id) > 0 {
                if r.runner.calls_of(&s.id) == 1 {
                    found_done += 1;
                } else {
                    rerun += 1;
                }
            }
        }
    }
    // The crash points covered both sides of the remote call: steps found done by their
    // probe (not re-run) and steps cut before their effect (run again, once).
    assert!(
        found_done > 0 && rerun > 0,
        "found done {found_done}, re-run {rerun}"
    );
}

#[tokio::test]
async fn resume_waits_for_a_step_in_progress_then_finds_it_done() {
    let r = rig();
    let plan = fleet_plan(&[("all", vec![0], Gate::None, 1)], 1);
    let run = r.store.create_run(&plan, &RunMeta::default()).unwrap();
    // A previous controller died while the installer ran.
    for (i, s) in plan.steps.iter().enumerate().take(3) {
        let mut rec = lockstep_core::StepRecord::pending(&s.id);
        rec.state = if i < 2 {
            StepState::Done
        } else {
            StepState::Running
        };
        r.store.put_step(&run, &rec).unwrap();
        r.runner.mark_done(&s.id);
    }
    r.runner.probe_answers(
        "S0-H0/install",
        &[Probe::InProgress, Probe::InProgress, Probe::Done],
    );
    let out = r
        .engine
        .resume(&run, Some(plan.clone()), false, StopSignal::new())
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Finished { run: run.clone() });
    assert_eq!(
        r.runner.calls_of("S0-H0/install"),
        0,
        "never installed twice"
    );
    assert_eq!(r.runner.probes_of("S0-H0/install"), 3);
    assert_eq!(
        r.runner.calls_of("S0-H0/preflight"),
        0,
        "done steps never re-run"
    );
    let rec = r.store.record(&run);
    let install = rec
        .steps
        .iter()
        .find(|s| s.step == "S0-H0/install")
        .unwrap();
    assert_eq!(install.message, "found done on resume");
    assert_eq!(r.runner.calls_of("S0-H0/reboot"), 1);

    // A step that stays in progress beyond the bound halts the run, untouched.
    let r2 = rig();
    let run2 = r2.store.create_run(&plan, &RunMeta::default()).unwrap();
    let mut rec = lockstep_core::StepRecord::pending("S0-H0/preflight");
    rec.state = StepState::Running;
    r2.store.put_step(&run2, &rec).unwrap();
    r2.runner
        .probe_answers("S0-H0/preflight", &[Probe::InProgress; 10]);
    let out = r2
        .engine
        .resume(&run2, None, false, StopSignal::new())
        .await
        .unwrap();
    let RunOutcome::Halted { class, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(class, HaltClass::Precondition);
    assert_eq!(r2.runner.calls_of("S0-H0/preflight"), 0);
}

#[tokio::test]
async fn changed_plan_is_refused_unless_replanned_and_replan_keeps_done_steps() {
    let r = rig();
    let plan = fleet_plan(
        &[
            ("canary", vec![0], Gate::None, 1),
            ("wave", vec![1], Gate::Approval, 1),
        ],
        1,
    );
    let RunOutcome::Waiting { run, .. } = start(&r, &plan).await else {
        panic!()
    };
    // The playbook changed: one more host in the wave.
    let mut new_plan = fleet_plan(
        &[
            ("canary", vec![0], Gate::None, 1),
            ("wave", vec![1], Gate::Approval, 1),
        ],
        2,
    );
    rehash(&mut new_plan);
    assert_ne!(new_plan.hash, plan.hash);
    let err = r
        .engine
        .resume(&run, Some(new_plan.clone()), false, StopSignal::new())
        .await
        .unwrap_err();
    let EngineError::PlanChanged { stored, new, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((stored, new), (&plan.hash, &new_plan.hash));
    assert!(err.to_string().contains("--replan"));
    r.engine.approve(&run, Some("gate:wave")).unwrap();
    let out = r
        .engine
        .resume(&run, Some(new_plan.clone()), true, StopSignal::new())
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Finished { run: run.clone() });
    assert_eq!(r.store.record(&run).plan.hash, new_plan.hash);
    assert_all_done_once(&r, &new_plan, &run);
}

#[tokio::test]
async fn a_locked_run_is_not_driven_twice() {
    let r = rig();
    let plan = fleet_plan(&[("all", vec![0], Gate::None, 1)], 1);
    let run = r.store.create_run(&plan, &RunMeta::default()).unwrap();
    let _held = r.store.lock_run(&run).unwrap();
    let err = r
        .engine
        .resume(&run, None, false, StopSignal::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("another controller"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_step_over_its_timeout_fails() {
    let r = rig();
    let mut b = PlanBuilder::new().stage("all", &["s0"], Gate::None, 1);
    b.chain(
        0,
        "s0",
        Unit::Host,
        "S0-H0",
        Role::Standalone,
        &[("install", 1)],
    );
    b.plan.steps[0].timeout_secs = 60;
    let plan = b.build();
    r.runner
        .script("S0-H0/install", Script::Sleep(Duration::from_secs(120)));
    let out = start(&r, &plan).await;
    let RunOutcome::Halted { class, reason, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(class, HaltClass::StepFailed);
    assert!(reason.contains("within 60 s"), "{reason}");
}

#[tokio::test]
async fn step_events_carry_every_transition() {
    let r = rig();
    let plan = fleet_plan(&[("all", vec![0], Gate::None, 1)], 1);
    start(&r, &plan).await;
    let mut seen: HashMap<String, Vec<StepState>> = HashMap::new();
    for e in r.events.all() {
        if let Event::Step { id, state, .. } = e {
            seen.entry(id).or_default().push(state);
        }
    }
    for s in &plan.steps {
        assert_eq!(seen[&s.id], [StepState::Running, StepState::Done]);
    }
}

/// A random plan: stages of sites of host and two-node cluster units, random chain lengths and
/// estimates, a few extra edges inside a site; the same site limit for every stage.
fn random_plan(rng: &mut rand::rngs::StdRng) -> (lockstep_core::Plan, u32, u32) {
    let max_sites = rng.gen_range(0..=3);
    let per_site = rng.gen_range(0..=2);
    let n_stages = rng.gen_range(1..=3);
    let mut b = PlanBuilder::new().per_site(per_site);
    let mut layout = Vec::new();
    for k in 0..n_stages {
        let sites: Vec<String> = (0..rng.gen_range(1..=4))
            .map(|j| format!("s{k}{j}"))
            .collect();
        let refs: Vec<&str> = sites.iter().map(String::as_str).collect();
        b = b.stage(&format!("stage{k}"), &refs, Gate::None, max_sites);
        layout.push(sites);
    }
    for (k, sites) in layout.iter().enumerate() {
        for (j, site) in sites.iter().enumerate() {
            let site_start = b.plan.steps.len();
            for u in 0..rng.gen_range(1..=3) {
                let len = rng.gen_range(1..=CHAIN.len());
                let kinds: Vec<(&str, u64)> = CHAIN[..len]
                    .iter()
                    .map(|(kind, _)| (*kind, rng.gen_range(1..=20)))
                    .collect();
                if rng.gen_bool(0.4) {
                    let cluster = format!("C{k}-{j}-{u}");
                    let n1 = b.chain(
                        k,
                        site,
                        Unit::Cluster(&cluster),
                        &format!("S{k}-{j}-U{u}-N1"),
                        Role::BackEnd,
                        &kinds,
                    );
                    let n2 = b.chain(
                        k,
                        site,
                        Unit::Cluster(&cluster),
                        &format!("S{k}-{j}-U{u}-N2"),
                        Role::BackEnd,
                        &kinds,
                    );
                    // One node at a time (E3-C1).
                    b.plan.steps[n2[0]].after.push(*n1.last().unwrap());
                } else {
                    b.chain(
                        k,
                        site,
                        Unit::Host,
                        &format!("S{k}-{j}-U{u}"),
                        Role::Standalone,
                        &kinds,
                    );
                }
            }
            let site_end = b.plan.steps.len();
            for i in site_start + 1..site_end {
                if rng.gen_bool(0.1) {
                    let d = rng.gen_range(site_start..i);
                    if !b.plan.steps[i].after.contains(&d) {
                        b.plan.steps[i].after.push(d);
                    }
                }
            }
        }
    }
    (b.build(), max_sites, per_site)
}

#[tokio::test(start_paused = true)]
async fn random_plans_respect_order_limits_and_the_critical_path() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_0001);
    for case in 0..64 {
        let (plan, max_sites, per_site) = random_plan(&mut rng);
        let r = rig_with(opts(), 1.0);
        let t0 = tokio::time::Instant::now();
        let out = start(&r, &plan).await;
        let elapsed = t0.elapsed().as_millis() as u64;
        let RunOutcome::Finished { run } = out else {
            panic!("case {case}: {out:?}")
        };
        assert_all_done_once(&r, &plan, &run);
        let log = r.log.lines();
        for s in &plan.steps {
            let exec = pos(&log, &format!("exec {}", s.id));
            for &d in &s.after {
                assert!(
                    pos(&log, &format!("put {} done", plan.steps[d].id)) < exec,
                    "case {case}: `{}` before its dependency",
                    s.id
                );
            }
        }
        if max_sites > 0 {
            assert!(
                r.runner.max_sites() <= max_sites as usize,
                "case {case}: sites"
            );
        }
        if per_site > 0 {
            assert!(
                r.runner.max_units_per_site() <= per_site as usize,
                "case {case}: units per site"
            );
        }
        let critical = plan.critical_path_secs();
        assert!(elapsed >= critical, "case {case}: faster than possible?");
        if max_sites == 0 && per_site == 0 {
            assert!(
                elapsed <= critical + critical / 100 + 1,
                "case {case}: makespan {elapsed} ms vs critical path {critical}"
            );
        }
    }
}

#[tokio::test]
async fn only_steps_that_change_nothing_are_retried() {
    let r = rig_with(
        EngineOptions {
            retries: 1,
            ..opts()
        },
        0.0,
    );
    let mut plan = fleet_plan(&[("all", vec![0], Gate::None, 1)], 2);
    plan.failure_budget.max_failed_hosts = 1;
    rehash(&mut plan);
    // A version check that lost the node once is read again...
    r.runner
        .script("S0-H0/assert", Script::Fail(HaltClass::NodeUnreachable));
    // ...an install that lost the node is never sent again by the engine.
    r.runner
        .script("S0-H1/install", Script::Fail(HaltClass::NodeUnreachable));
    let out = start(&r, &plan).await;
    let RunOutcome::Halted { run, class, reason } = out else {
        panic!("{out:?}")
    };
    assert_eq!(class, HaltClass::NodeUnreachable);
    assert!(reason.contains("S0-H1/install"), "{reason}");
    assert_eq!(r.runner.calls_of("S0-H0/assert"), 2);
    assert_eq!(r.store.state_of(&run, "S0-H0/assert"), StepState::Done);
    assert_eq!(r.runner.calls_of("S0-H1/install"), 1);
}

#[tokio::test(start_paused = true)]
async fn stop_during_a_soak_halts_without_starting_the_stage() {
    let r = rig_with(
        EngineOptions {
            soak_scale: 1.0,
            ..opts()
        },
        0.0,
    );
    let plan = fleet_plan(
        &[
            ("canary", vec![0], Gate::None, 1),
            ("wave", vec![1], Gate::Soak { secs: 86_400 }, 1),
        ],
        1,
    );
    let stop = StopSignal::new();
    let trigger = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        trigger.trigger();
    });
    let out = r
        .engine
        .start(plan.clone(), RunMeta::default(), stop)
        .await
        .unwrap();
    let RunOutcome::Halted { run, class, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(class, HaltClass::OperatorStop);
    assert_eq!(r.store.state_of(&run, "S0-H0/assert"), StepState::Done);
    assert_eq!(r.runner.calls_of("S1-H0/preflight"), 0);
}

#[tokio::test]
async fn approving_one_step_by_id() {
    let r = rig();
    let mut b = PlanBuilder::new().stage("all", &["s0", "s1"], Gate::None, 2);
    b.chain(
        0,
        "s0",
        Unit::Host,
        "S0-H0",
        Role::Standalone,
        &[("confirm", 1), ("install", 1)],
    );
    b.chain(
        0,
        "s1",
        Unit::Host,
        "S1-H0",
        Role::Standalone,
        &[("confirm", 1), ("install", 1)],
    );
    let plan = b.build();
    r.runner.script("S0-H0/confirm", Script::Wait);
    r.runner.script("S1-H0/confirm", Script::Wait);
    let RunOutcome::Waiting { run, .. } = start(&r, &plan).await else {
        panic!()
    };
    assert_eq!(
        r.engine.approve(&run, Some("S1-H0/confirm")).unwrap(),
        ["S1-H0/confirm"]
    );
    let out = r
        .engine
        .resume(&run, None, false, StopSignal::new())
        .await
        .unwrap();
    let RunOutcome::Waiting { reason, .. } = out else {
        panic!("{out:?}")
    };
    assert!(
        reason.contains("S0-H0/confirm") && !reason.contains("S1-H0"),
        "{reason}"
    );
    assert_eq!(r.store.state_of(&run, "S1-H0/install"), StepState::Done);
    assert_eq!(r.store.state_of(&run, "S0-H0/install"), StepState::Pending);
}

/// A store whose `put_step` fails once, at the n-th call (a full disk, a lost network store).
struct FlakyStore {
    inner: MemStore,
    calls: std::sync::atomic::AtomicUsize,
    fail_at: usize,
}

impl StateStore for FlakyStore {
    fn create_run(
        &self,
        plan: &lockstep_core::Plan,
        meta: &RunMeta,
    ) -> Result<lockstep_core::RunId, lockstep_core::StoreError> {
        self.inner.create_run(plan, meta)
    }
    fn load_run(
        &self,
        run: &lockstep_core::RunId,
    ) -> Result<lockstep_core::RunRecord, lockstep_core::StoreError> {
        self.inner.load_run(run)
    }
    fn latest_run(&self) -> Result<Option<lockstep_core::RunId>, lockstep_core::StoreError> {
        self.inner.latest_run()
    }
    fn list_runs(&self) -> Result<Vec<lockstep_core::RunSummary>, lockstep_core::StoreError> {
        self.inner.list_runs()
    }
    fn lock_run(
        &self,
        run: &lockstep_core::RunId,
    ) -> Result<Box<dyn lockstep_core::RunLock>, lockstep_core::StoreError> {
        self.inner.lock_run(run)
    }
    fn put_step(
        &self,
        run: &lockstep_core::RunId,
        record: &lockstep_core::StepRecord,
    ) -> Result<(), lockstep_core::StoreError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at {
            return Err(lockstep_core::StoreError::Backend {
                path: "state.db".into(),
                detail: "disk full".into(),
            });
        }
        self.inner.put_step(run, record)
    }
    fn put_fact(
        &self,
        run: &lockstep_core::RunId,
        fact: &lockstep_core::Fact,
    ) -> Result<(), lockstep_core::StoreError> {
        self.inner.put_fact(run, fact)
    }
    fn set_status(
        &self,
        run: &lockstep_core::RunId,
        status: &RunStatus,
    ) -> Result<(), lockstep_core::StoreError> {
        self.inner.set_status(run, status)
    }
    fn approve(
        &self,
        run: &lockstep_core::RunId,
        what: &str,
    ) -> Result<(), lockstep_core::StoreError> {
        self.inner.approve(run, what)
    }
    fn replace_plan(
        &self,
        run: &lockstep_core::RunId,
        plan: &lockstep_core::Plan,
    ) -> Result<(), lockstep_core::StoreError> {
        self.inner.replace_plan(run, plan)
    }
}

#[tokio::test]
async fn a_store_failure_stops_the_drive_and_the_run_stays_resumable() {
    for fail_at in [1, 2, 7, 20] {
        let r = rig();
        let plan = fleet_plan(&[("all", vec![0, 1], Gate::None, 2)], 2);
        let flaky = Arc::new(FlakyStore {
            inner: (*r.store).clone(),
            calls: Default::default(),
            fail_at,
        });
        let engine = Engine::new(r.runner.clone(), flaky, Arc::new(r.events.clone()), opts());
        let err = engine
            .start(plan.clone(), RunMeta::default(), StopSignal::new())
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::Store(_)), "{err:?}");
        assert!(err.to_string().contains("disk full"), "{err}");
        // Nothing ran after the failed write; the lock was released; resume completes.
        let run = r.store.latest_run().unwrap().unwrap();
        let out = r
            .engine
            .resume(&run, Some(plan.clone()), false, StopSignal::new())
            .await
            .unwrap();
        assert_eq!(
            out,
            RunOutcome::Finished { run: run.clone() },
            "fail_at {fail_at}"
        );
        assert_all_done_once(&r, &plan, &run);
    }
}

#[tokio::test]
async fn a_panicking_runner_is_an_engine_error_and_the_run_resumes() {
    let r = rig();
    let plan = fleet_plan(&[("all", vec![0], Gate::None, 1)], 2);
    r.runner.script("S0-H1/reboot", Script::Panic);
    let err = r
        .engine
        .start(plan.clone(), RunMeta::default(), StopSignal::new())
        .await
        .unwrap_err();
    let EngineError::StepPanicked { step, detail, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(step, "S0-H1/reboot");
    assert!(detail.contains("runner bug"), "{detail}");
    let run = r.store.latest_run().unwrap().unwrap();
    assert_eq!(r.store.state_of(&run, "S0-H1/reboot"), StepState::Running);
    let out = r
        .engine
        .resume(&run, None, false, StopSignal::new())
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Finished { run: run.clone() });
    assert_all_done_once(&r, &plan, &run);
}

#[tokio::test]
async fn stored_output_keeps_its_tail_within_the_limit() {
    let r = rig_with(
        EngineOptions {
            output_limit: 9,
            ..opts()
        },
        0.0,
    );
    let plan = fleet_plan(&[("all", vec![0], Gate::None, 1)], 1);
    r.runner
        .script("S0-H0/install", Script::Fail(HaltClass::StepFailed));
    let RunOutcome::Halted { run, .. } = start(&r, &plan).await else {
        panic!()
    };
    let rec = r.store.record(&run);
    let get = |id: &str| {
        rec.steps
            .iter()
            .find(|s| s.step == id)
            .unwrap()
            .output
            .clone()
    };
    // The installer's last line is what a person needs: the exit code.
    assert_eq!(get("S0-H0/install"), "exit 1603");
    assert_eq!(get("S0-H0/stop"), "-H0/stop`"); // "ran `S0-H0/stop`", last 9 bytes
}

#[tokio::test(start_paused = true)]
async fn no_soak_before_the_first_stage_that_has_steps() {
    // Issue 11, defect 8: `run ... -l tokyo` waited a 30-minute soak before its first step,
    // because the limit left the stages before the soaked one empty.
    let r = rig_with(
        EngineOptions {
            soak_scale: 1.0,
            ..opts()
        },
        0.0,
    );
    let plan = fleet_plan(
        &[
            ("canary", vec![], Gate::None, 1),
            ("wave", vec![0], Gate::Soak { secs: 1800 }, 1),
        ],
        1,
    );
    assert!(plan.steps.iter().all(|s| s.stage == 1));
    let t0 = tokio::time::Instant::now();
    let RunOutcome::Finished { .. } = start(&r, &plan).await else {
        panic!()
    };
    assert!(
        t0.elapsed() < Duration::from_secs(1800),
        "{:?}",
        t0.elapsed()
    );
    assert!(!r
        .events
        .all()
        .iter()
        .any(|e| matches!(e, Event::GateWaiting { .. })));
}

#[tokio::test]
async fn the_largest_timeout_a_playbook_could_give_does_not_overflow() {
    // Issue 11, defect 5: `timeout_secs: 18446744073709551615` panicked with "overflow when
    // adding durations" mid-run. Checked arithmetic at the bound: the step runs and the run ends.
    let r = rig();
    let mut plan = fleet_plan(&[("all", vec![0], Gate::Soak { secs: u64::MAX }, 1)], 1);
    for s in &mut plan.steps {
        s.timeout_secs = u64::MAX;
        s.estimate_secs = u64::MAX;
    }
    let _ = plan.critical_path_secs();
    let out = start(&r, &plan).await;
    assert!(matches!(out, RunOutcome::Finished { .. }), "{out:?}");
}

#[tokio::test]
async fn yes_does_not_approve_a_step_an_operator_must_perform() {
    // Issue 11, defect 2: `resume --yes` marked "Upgrade Exchange Virtual Server" done without
    // anything done. `--yes` answers acknowledgements only; the EVS upgrade needs its name.
    let r = rig_with(
        EngineOptions {
            auto_approve: true,
            ..opts()
        },
        0.0,
    );
    let mut b = PlanBuilder::new().stage("all", &["s0"], Gate::None, 1);
    b.chain(
        0,
        "s0",
        Unit::Host,
        "S0-H0",
        Role::Standalone,
        &[("confirm", 1), ("upgrade-evs", 1), ("assert", 1)],
    );
    let plan = b.build();
    r.runner.script("S0-H0/confirm", Script::Wait);
    r.runner.script("S0-H0/upgrade-evs", Script::Wait);
    let out = start(&r, &plan).await;
    let RunOutcome::Waiting { run, reason } = out else {
        panic!("{out:?}")
    };
    assert!(reason.contains("S0-H0/upgrade-evs"), "{reason}");
    assert!(reason.contains("--yes` does not approve it"), "{reason}");
    // The acknowledgement was auto-approved, the physical step was not.
    assert_eq!(r.store.state_of(&run, "S0-H0/confirm"), StepState::Done);
    assert_eq!(
        r.store.state_of(&run, "S0-H0/upgrade-evs"),
        StepState::Waiting
    );
    assert_eq!(r.runner.calls_of("S0-H0/assert"), 0);
    // A resume with --yes still waits; a bare approve does not approve it either.
    let out = r
        .engine
        .resume(&run, None, false, StopSignal::new())
        .await
        .unwrap();
    assert!(matches!(out, RunOutcome::Waiting { .. }), "{out:?}");
    assert!(matches!(
        r.engine.approve(&run, None),
        Err(EngineError::NothingToApprove { .. })
    ));
    assert_eq!(r.runner.calls_of("S0-H0/assert"), 0);
    // Named, it is approved and the run goes on.
    assert_eq!(
        r.engine.approve(&run, Some("S0-H0/upgrade-evs")).unwrap(),
        ["S0-H0/upgrade-evs"]
    );
    let out = r
        .engine
        .resume(&run, None, false, StopSignal::new())
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Finished { run: run.clone() });
}

#[tokio::test]
async fn a_bare_approve_passes_no_gate_while_steps_wait() {
    // Issue 11, defect 3: with the G3 steps at the end of a stage waiting, a bare `approve`
    // also approved the next stage's gate, and `resume` started it.
    let r = rig();
    let mut b = PlanBuilder::new()
        .stage("canary", &["s0"], Gate::None, 1)
        .stage("wave", &["s1"], Gate::Approval, 1);
    b.chain(
        0,
        "s0",
        Unit::Host,
        "S0-H0",
        Role::Standalone,
        &[("install", 1), ("confirm", 1)],
    );
    b.chain(1, "s1", Unit::Host, "S1-H0", Role::Standalone, CHAIN);
    let plan = b.build();
    r.runner.script("S0-H0/confirm", Script::Wait);
    let RunOutcome::Waiting { run, .. } = start(&r, &plan).await else {
        panic!()
    };
    assert_eq!(r.engine.approve(&run, None).unwrap(), ["S0-H0/confirm"]);
    // A named step that is not waiting cannot be approved ahead of time.
    assert!(matches!(
        r.engine.approve(&run, Some("S1-H0/install")),
        Err(EngineError::NotWaiting { .. })
    ));
    let out = r
        .engine
        .resume(&run, None, false, StopSignal::new())
        .await
        .unwrap();
    let RunOutcome::Waiting { reason, .. } = out else {
        panic!("{out:?}")
    };
    assert!(reason.contains("gate:wave"), "{reason}");
    assert_eq!(r.runner.calls_of("S1-H0/install"), 0);
    // Now the gate is what waits.
    assert_eq!(r.engine.approve(&run, None).unwrap(), ["gate:wave"]);
}

/// The ids a run's approvals name, in order.
fn approved(r: &lockstep_core::RunRecord) -> Vec<&str> {
    r.approvals.iter().map(|a| a.what.as_str()).collect()
}
