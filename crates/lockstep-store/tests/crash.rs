//! A controller SIGKILLed in the middle of writing checkpoints leaves a readable state file and a
//! free run lock.
//!
//! The test re-executes its own binary as the child controller (selected by an environment
//! variable), lets it write step records in a loop, kills it with SIGKILL and checks the file.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lockstep_core::{RunId, RunMeta, StateStore, StepRecord, StepState, StoreError};
use lockstep_store::SqliteStore;

const CHILD_ENV: &str = "LOCKSTEP_STORE_CRASH_CHILD";
const RUN_ENV: &str = "LOCKSTEP_STORE_CRASH_RUN";
const STEPS: [&str; 5] = ["s0", "s1", "s2", "s3", "s4"];

/// The record the child writes at its `n`th write: everything derives from `n`, so the parent
/// can check a record is whole.
fn nth_record(n: u32) -> StepRecord {
    let step = STEPS[n as usize % STEPS.len()];
    StepRecord {
        step: step.to_owned(),
        state: if n.is_multiple_of(2) {
            StepState::Done
        } else {
            StepState::Running
        },
        attempts: n,
        started_ms: Some(u64::from(n) * 10),
        finished_ms: n.is_multiple_of(2).then_some(u64::from(n) * 10 + 5),
        exit_code: n.is_multiple_of(2).then_some(n as i32),
        // A few KiB, so a write spans several pages.
        output: format!("write {n}: Kopírování souborů… ").repeat(200),
        message: format!("write {n}"),
    }
}

/// The child controller: does nothing unless started by `killed_controller_leaves_intact_state`.
#[test]
fn crash_child() {
    let (Ok(path), Ok(run)) = (std::env::var(CHILD_ENV), std::env::var(RUN_ENV)) else {
        return;
    };
    let store = SqliteStore::open(std::path::Path::new(&path)).unwrap();
    let run = RunId(run);
    // The parent probes the lock by taking it for an instant: wait for it (bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    let _guard = loop {
        match store.lock_run(&run) {
            Ok(g) => break g,
            Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("the child could not take the run: {e}"),
        }
    };
    for n in 1.. {
        store.put_step(&run, &nth_record(n)).unwrap();
    }
}

#[test]
fn killed_controller_leaves_intact_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let run = {
        let store = SqliteStore::open(&path).unwrap();
        store
            .create_run(&common::plan("h", &STEPS), &RunMeta::default())
            .unwrap()
    };

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .env(RUN_ENV, &run.0)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    // Wait (bounded) until the child holds the lock and has written a good number of records.
    let watcher = SqliteStore::open(&path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut saw_lock = false;
    loop {
        assert!(
            Instant::now() < deadline,
            "the child controller made no progress"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child controller exited early: {status}");
        }
        if !saw_lock {
            if let Err(StoreError::Locked { holder, .. }) = watcher.lock_run(&run) {
                assert!(
                    holder.contains(&format!("pid {}", child.id())),
                    "holder `{holder}` does not name the child"
                );
                saw_lock = true;
            }
        }
        let written = watcher
            .load_run(&run)
            .unwrap()
            .steps
            .iter()
            .map(|s| s.attempts)
            .max()
            .unwrap_or(0);
        if saw_lock && written >= 60 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(watcher);

    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();

    let store = SqliteStore::open(&path).unwrap();
    let rec = store.load_run(&run).unwrap();
    assert_eq!(rec.steps.len(), STEPS.len());
    let mut last = 0;
    for (i, s) in rec.steps.iter().enumerate() {
        assert_eq!(s.step, STEPS[i]);
        assert!(s.attempts > 0, "step `{}` was never written", s.step);
        assert_eq!(s, &nth_record(s.attempts), "record of `{}` is torn", s.step);
        last = last.max(s.attempts);
    }
    // The five records are the five latest writes, and the timeline has every write before them.
    let mut attempts: Vec<u32> = rec.steps.iter().map(|s| s.attempts).collect();
    attempts.sort_unstable();
    assert_eq!(attempts, (last - 4..=last).collect::<Vec<_>>());
    let timeline = store.transitions(&run).unwrap();
    assert_eq!(timeline.len() as u32, last);
    for (i, t) in timeline.iter().enumerate() {
        assert_eq!(t.message, format!("write {}", i + 1));
    }

    // The OS released the dead controller's lock.
    let guard = store.lock_run(&run);
    assert!(guard.is_ok(), "lock still held after SIGKILL");
}
