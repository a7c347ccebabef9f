//! Checkpoints as a rollout writes them: HOSTS hosts at once, each running STEPS steps in a row
//! (a `running` then a `done` record per step, each awaited before the "remote work" goes on,
//! as the engine does), with WORK_MS of simulated remote work per step.
//!
//! Reports, in one run (ratios; the machine is shared):
//! - SQLite `synchronous=FULL` against `NORMAL` at 200 hosts: the price of syncing every
//!   checkpoint once group commit shares the syncs (goal: within 1.3x);
//! - PostgreSQL checkpoint throughput (steps/s) at 200 and 1,000 concurrent hosts, on a
//!   throwaway local server (Debian's `postgresql` binaries, as in the tests).
//!
//! `cargo bench -p lockstep-store --bench group_commit [-- WORK_MS]`
//!
//! On a quiet 2-core machine (2026-12-06, two runs one after the other, 20 ms of work per step):
//! SQLite FULL / NORMAL at 200 hosts 0.90 and 1.07 (goal 1.3x); PostgreSQL 3914 and 3561 steps/s
//! at 200 hosts, 4039 and 3414 at 1,000. Under load (five builds on the same 2 cores) the SQLite
//! ratio wandered between 1.36 and 2.2: measure it quiet.
//!
//! PostgreSQL, measured 2026-12-06 on 2 cores shared with other builds (load ~13), the binary
//! before and after alternated twice in one session, 20 ms of work per step:
//!
//! | steps/s    | before (~6 round trips per write, unprepared) | after | ratio |
//! |------------|-----------------------------------------------|-------|-------|
//! | 200 hosts  | 281, 247                                      | 2212, 2431 | 7.9x, 9.8x |
//! | 1000 hosts | 281, 261                                      | 2482, 2244 | 8.8x, 8.6x |
//!
//! After: a checkpoint is one prepared statement (fence `FOR SHARE`, record, timeline line); the
//! step records of one group commit go as ONE array statement, other writes pipelined with it, so
//! a commit costs BEGIN, one round trip and COMMIT whatever its size. At 1,000 hosts the server's
//! CPU per row (on this shared machine) is what is left.

#![allow(clippy::print_stdout)] // a bench binary reports on stdout

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lockstep_core::{RunMeta, StateStore, StepRecord, StepState};
use lockstep_store::{Durability, PgStore, SqliteStore};

const STEPS: usize = 7;

fn rec(step: &str, state: StepState) -> StepRecord {
    StepRecord {
        step: step.to_owned(),
        state,
        attempts: 1,
        started_ms: Some(1_700_000_000_000),
        finished_ms: None,
        exit_code: None,
        output: "Setup is copying files...\r\n".repeat(40),
        message: String::new(),
    }
}

/// Seconds the rollout's checkpoints take at `hosts` hosts.
fn rollout(store: Arc<dyn StateStore>, hosts: usize, work: Duration) -> f64 {
    let ids: Vec<String> = (0..hosts * STEPS).map(|i| format!("s{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let run = store
        .create_run(&common::plan("bench", &refs), &RunMeta::default())
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for h in 0..hosts {
            let store = Arc::clone(&store);
            let run = run.clone();
            tasks.push(tokio::spawn(async move {
                for s in 0..STEPS {
                    let id = format!("s{}", h * STEPS + s);
                    store
                        .put_step_async(&run, &rec(&id, StepState::Running))
                        .await
                        .unwrap();
                    tokio::time::sleep(work).await;
                    store
                        .put_step_async(&run, &rec(&id, StepState::Done))
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    t.elapsed().as_secs_f64()
}

fn main() {
    let work_ms: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    let work = Duration::from_millis(work_ms);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let floor = STEPS as f64 * work.as_secs_f64();
    println!("group commit bench: {STEPS} steps per host, {work_ms} ms of remote work per step (floor {floor:.2} s)");

    let mut sqlite = Vec::new();
    for (label, d) in [("normal", Durability::Normal), ("full", Durability::Full)] {
        let store: Arc<dyn StateStore> =
            Arc::new(SqliteStore::open_with(&dir.path().join(format!("{label}.db")), d).unwrap());
        let secs = rollout(store, 200, work);
        println!(
            "  sqlite {label:<6} 200 hosts: {secs:6.2} s, {:8.0} checkpoints/s",
            (200 * STEPS * 2) as f64 / secs
        );
        sqlite.push(secs);
    }
    println!(
        "  sqlite full / normal at 200 hosts: {:.3}",
        sqlite[1] / sqlite[0]
    );

    let pg = common::pg::Pg::start();
    for hosts in [200, 1000] {
        let url = pg.url(&format!("bench{hosts}"));
        let store: Arc<dyn StateStore> =
            Arc::new(PgStore::connect(&url, Duration::from_secs(30)).unwrap());
        let secs = rollout(store, hosts, work);
        println!(
            "  postgres {hosts:>5} hosts: {secs:6.2} s, {:8.0} steps/s ({:.0} checkpoints/s)",
            (hosts * STEPS) as f64 / secs,
            (hosts * STEPS * 2) as f64 / secs
        );
    }
}
