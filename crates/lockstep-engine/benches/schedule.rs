//! Scheduling overhead over a 1,000-host plan (`cargo bench -p lockstep-engine`).
//!
//! A fake runner sleeps each step's `estimate_secs` scaled to milliseconds; with no site or
//! unit limit binding, a perfect scheduler's wall time equals `Plan::critical_path_secs` (scaled).
//! Reports the wall time / critical path ratio (target <= 1.05), the raw scheduling throughput
//! with zero-duration steps, and the peak RSS of the process.
#![allow(missing_docs, clippy::print_stdout)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Instant;

use lockstep_core::{
    Fact, Gate, NullSink, Plan, RunId, RunLock, RunMeta, RunRecord, RunStatus, RunSummary,
    StateStore, StepRecord, StoreError,
};
use lockstep_engine::{Engine, EngineOptions, RunOutcome, StopSignal};
use support::{fleet_plan, FakeRunner, Log};

/// A zero-overhead store: accepts every write and keeps nothing (the SQLite store has its own
/// benchmark; this one measures the scheduler).
struct NullStore;

struct NullLock;
impl RunLock for NullLock {}

impl StateStore for NullStore {
    fn create_run(&self, _: &Plan, _: &RunMeta) -> Result<RunId, StoreError> {
        Ok(RunId("r-bench".into()))
    }
    fn load_run(&self, run: &RunId) -> Result<RunRecord, StoreError> {
        Err(StoreError::NoSuchRun(run.clone()))
    }
    fn latest_run(&self) -> Result<Option<RunId>, StoreError> {
        Ok(None)
    }
    fn list_runs(&self) -> Result<Vec<RunSummary>, StoreError> {
        Ok(Vec::new())
    }
    fn lock_run(&self, _: &RunId) -> Result<Box<dyn RunLock>, StoreError> {
        Ok(Box::new(NullLock))
    }
    fn put_step(&self, _: &RunId, _: &StepRecord) -> Result<(), StoreError> {
        Ok(())
    }
    fn put_fact(&self, _: &RunId, _: &Fact) -> Result<(), StoreError> {
        Ok(())
    }
    fn set_status(&self, _: &RunId, _: &RunStatus) -> Result<(), StoreError> {
        Ok(())
    }
    fn approve(&self, _: &RunId, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    fn replace_plan(&self, _: &RunId, _: &Plan) -> Result<(), StoreError> {
        Ok(())
    }
}

const SITES: usize = 10;
const HOSTS_PER_SITE: usize = 100;

fn plan(hosts_per_site: usize) -> Plan {
    // A canary site, then the other nine: SITES * hosts_per_site standalone hosts, 6 steps each.
    fleet_plan(
        &[
            ("canary", vec![0], Gate::None, 0),
            ("wave", (1..SITES).collect(), Gate::None, 0),
        ],
        hosts_per_site,
    )
}

async fn drive(plan: &Plan, ms_per_sec: f64) -> f64 {
    let mut runner = FakeRunner::new(Log::default());
    runner.quiet = true;
    runner.ms_per_sec = ms_per_sec;
    let engine = Engine::new(
        Arc::new(runner),
        Arc::new(NullStore),
        Arc::new(NullSink),
        EngineOptions {
            soak_scale: 0.0,
            ..EngineOptions::default()
        },
    );
    let t0 = Instant::now();
    let out = engine
        .start(plan.clone(), RunMeta::default(), StopSignal::new())
        .await
        .expect("engine error");
    let secs = t0.elapsed().as_secs_f64();
    assert!(matches!(out, RunOutcome::Finished { .. }), "{out:?}");
    secs
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that is not ours is ignored.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The same shape with one host per site first: what remains there is the timer's 1 ms
    // rounding per step hop, not the fleet's size.
    for hosts_per_site in [1, HOSTS_PER_SITE] {
        let plan = plan(hosts_per_site);
        let critical = plan.critical_path_secs();
        println!(
            "plan: {} hosts, {} steps, critical path {} s of estimate",
            SITES * hosts_per_site,
            plan.steps.len(),
            critical
        );
        let zero = rt.block_on(drive(&plan, 0.0));
        println!(
            "  zero-duration steps: {:.3} s for {} steps ({:.0} steps/s)",
            zero,
            plan.steps.len(),
            plan.steps.len() as f64 / zero
        );
        for ms_per_sec in [1.0, 2.0] {
            let ideal = critical as f64 * ms_per_sec / 1000.0;
            let mut ratios: Vec<f64> = (0..3)
                .map(|_| rt.block_on(drive(&plan, ms_per_sec)) / ideal)
                .collect();
            ratios.sort_by(f64::total_cmp);
            println!(
                "  {ms_per_sec} ms per estimated second: critical path {ideal:.3} s, wall/critical over 3 runs: best {:.4}, median {:.4}, worst {:.4} (target <= 1.05)",
                ratios[0], ratios[1], ratios[2]
            );
        }
    }
    match peak_rss_kib() {
        Some(kib) => println!("peak RSS: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak RSS: unavailable (no /proc/self/status)"),
    }
}
