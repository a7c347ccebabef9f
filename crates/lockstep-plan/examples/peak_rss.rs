//! Plans the benchmark's input once (10,000 hosts, 2,000 five-node E3 clusters, 50 sites) and
//! reports wall time and peak resident memory (`VmHWM` of /proc/self/status), with the RSS
//! before planning for comparison. Targets: under 1 s, under 200 MB.
//!
//! `cargo run --release -p lockstep-plan --example peak_rss`
//!
//! Last run (2026-12-06, after playbooks declare their shape and invariants and plans carry
//! them; release, load average 2.6 on 2 cores): 114,000 steps, plan 0.51 s wall / 0.50 s CPU
//! (best of 3), peak RSS 134.7 MB (12.3 MB before); a separate `check_rules` pass 0.14 s, peak
//! 237 MB. Both targets are met.
#![allow(clippy::print_stdout)]

#[path = "../tests/fixtures/mod.rs"]
mod fixtures;

use std::time::Instant;

fn status(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l[key.len()..].trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// CPU seconds (user + system) this process has used, from /proc/self/stat (100 ticks/s):
/// the figure that does not depend on how busy the machine is.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of the file (utime, stime) are 11 and 12 after the `)`.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let fleet = fixtures::big_e3_fleet(50, 40, 5);
    let pb = fixtures::e3_cluster(&fleet);
    let before = status("VmRSS:");
    let opts = lockstep_plan::PlanOptions::default();
    let (t, c) = (Instant::now(), cpu_secs());
    let plan = lockstep_plan::plan(&fleet, &pb, &opts).unwrap();
    let (mut best_wall, mut best_cpu) = (t.elapsed().as_secs_f64(), cpu_secs() - c);
    // Peak memory of one planning (the input plus one plan), before any re-run.
    let peak = status("VmHWM:");
    for _ in 0..2 {
        let (t, c) = (Instant::now(), cpu_secs());
        drop(lockstep_plan::plan(&fleet, &pb, &opts).unwrap());
        best_wall = best_wall.min(t.elapsed().as_secs_f64());
        best_cpu = best_cpu.min(cpu_secs() - c);
    }
    println!(
        "hosts {} clusters {} sites {} -> steps {} stages {}",
        fleet.hosts.len(),
        fleet.clusters.len(),
        fleet.sites.len(),
        plan.steps.len(),
        plan.stages.len()
    );
    println!("plan time, best of 3: wall {best_wall:.3} s, CPU {best_cpu:.2} s");
    println!("RSS before planning {before}; peak (VmHWM) after planning {peak}");
    println!("hash {}", plan.hash);
    let (t, c) = (Instant::now(), cpu_secs());
    let violations = lockstep_plan::check_rules(&plan, &fleet);
    println!(
        "check_rules: {} violations, wall {:.3} s, CPU {:.2} s; peak (VmHWM) now {}",
        violations.len(),
        t.elapsed().as_secs_f64(),
        cpu_secs() - c,
        status("VmHWM:")
    );
}
