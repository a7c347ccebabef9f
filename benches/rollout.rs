//! Rollout benchmark (issue 4): HOSTS simulated Windows servers (two-node Exchange 2003 clusters,
//! one EVS each, spread over ten sites) rolled to SP2 with the shipped E3-CLUSTER procedure
//! against a separate `lockstep lab` process, over real WinRM on loopback. The controller is its
//! own process, so its memory is measured alone.
//!
//! Figures, measured as ratios in one run (the machine is shared):
//! - wall(all clusters) / wall(one cluster alone): the price of running HOSTS/2 clusters at once
//!   against the lower bound (one cluster's chain, with the same lab and the same scale);
//! - wall(all clusters) / (critical path of the plan's estimates x the lab's time scale);
//! - the controller's peak RSS (VmHWM).
//!
//! `cargo bench --bench rollout` (1,000 hosts, lab time scale 0.005), or
//! `cargo bench --bench rollout -- 200 0.0005` (hosts, time scale). At small scales the fixed
//! cost of each step (WinRM round trips, reboot polls) weighs against simulated work that lasts
//! milliseconds, and the ratio says more about loopback latency than about the engine.

#![allow(clippy::print_stdout)] // a bench binary reports on stdout

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "Bench-Only-Pa55";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_lockstep")
}

fn inventory(clusters: usize) -> String {
    let mut y = String::from(
        "all:\n  vars:\n    ansible_winrm_transport: basic\n    lockstep_allow_basic_over_http: true\n    ansible_user: bench\n    lockstep_password_env: LOCKSTEP_LAB_PASSWORD\n    exchange_version: \"2003\"\n    windows_release: \"2003\"\n    exchange_role: back-end\n    exchange_edition: enterprise\n  children:\n",
    );
    let sites = 10;
    for s in 0..sites {
        y.push_str(&format!(
            "    site{s:02}:\n      vars:\n        lockstep_site: {{ locale: en-US }}\n      children:\n"
        ));
        for c in (0..clusters).filter(|c| c % sites == s) {
            let (n1, n2) = (format!("C{c:04}-N1"), format!("C{c:04}-N2"));
            y.push_str(&format!(
                "        cl{c:04}:\n          vars:\n            lockstep_cluster:\n              name: CL{c:04}\n              mode: active-passive\n              cluster_group: {{ name: Cluster Group, owner: {n1} }}\n              virtual_servers:\n                - {{ name: EVS{c:04}, group: EVS{c:04} Group, owner: {n1}, build: 6.5.7226.6 }}\n          hosts:\n            {n1}: {{ exchange_build: 6.5.7226.6 }}\n            {n2}: {{ exchange_build: 6.5.7226.6 }}\n"
            ));
        }
    }
    y
}

/// The shipped E3-CLUSTER playbook with one stage over every site, all at once, no gates.
fn playbook(repo: &Path) -> String {
    let text = std::fs::read_to_string(repo.join("playbooks/e3-cluster.yml")).unwrap();
    let start = text.find("\nrollout:").unwrap();
    let end = text.find("\nphases:").unwrap();
    format!(
        "{}\nrollout:\n  max_parallel_sites: 10\n  max_parallel_per_site: 0\n  failure_budget: {{ max_failed_hosts: 0 }}\n{}",
        &text[..start],
        &text[end..]
    )
    .replace("hosts: [exchange2003]", "hosts: [all]")
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Runs the rollout; returns (wall seconds, peak RSS KiB of the controller).
fn rollout(dir: &Path, state: &str, limit: Option<&str>) -> (f64, u64) {
    let mut c = Command::new(bin());
    c.current_dir(dir)
        .env("LOCKSTEP_STATE", dir.join(state))
        .env("LOCKSTEP_LAB_PASSWORD", PASSWORD)
        .args([
            "-q",
            "run",
            "-i",
            "inventory.yml",
            "-i",
            "overlay.yml",
            "bench.yml",
        ])
        .args(["--yes", "--soak-scale", "0", "--max-connections", "4096"])
        .args(["-e", "evs_upgrade_tool=labctl evs upgrade"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join(format!("{state}.err"))).unwrap(),
        ));
    if let Some(l) = limit {
        c.args(["--limit", l]);
    }
    let t = Instant::now();
    let mut child = c.spawn().unwrap();
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        if let Some(k) = vm_hwm_kib(pid) {
            peak = peak.max(k);
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = t.elapsed().as_secs_f64();
    assert!(
        status.success(),
        "rollout failed: {}",
        std::fs::read_to_string(dir.join(format!("{state}.err"))).unwrap_or_default()
    );
    (wall, peak)
}

/// The plan's critical path (seconds of estimate): stages in sequence, longest chain in each.
fn critical_path(dir: &Path) -> (u64, usize) {
    let o = Command::new(bin())
        .current_dir(dir)
        .args([
            "plan",
            "-i",
            "inventory.yml",
            "bench.yml",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let steps = plan["steps"].as_array().unwrap();
    let mut finish = vec![0u64; steps.len()];
    let mut per_stage = std::collections::BTreeMap::<u64, u64>::new();
    for (i, s) in steps.iter().enumerate() {
        let start = s["after"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| finish[d.as_u64().unwrap() as usize])
            .max()
            .unwrap_or(0);
        finish[i] = start + s["estimate_secs"].as_u64().unwrap();
        let e = per_stage.entry(s["stage"].as_u64().unwrap()).or_default();
        *e = (*e).max(finish[i]);
    }
    (per_stage.values().sum(), steps.len())
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let hosts: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let scale: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0.005);
    let clusters = hosts / 2;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.yml"), inventory(clusters)).unwrap();
    std::fs::write(dir.path().join("bench.yml"), playbook(repo)).unwrap();
    let (critical, steps) = critical_path(dir.path());

    let mut lab = Command::new(bin())
        .current_dir(dir.path())
        .env("LOCKSTEP_LAB_PASSWORD", PASSWORD)
        .args([
            "-q",
            "lab",
            "-i",
            "inventory.yml",
            "--overlay",
            "overlay.yml",
        ])
        .args(["--time-scale", &scale.to_string()])
        .stdout(Stdio::from(
            std::fs::File::create(dir.path().join("lab.out")).unwrap(),
        ))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = Instant::now();
    while std::fs::read_to_string(dir.path().join("lab.out"))
        .map(|s| s.lines().count() < hosts)
        .unwrap_or(true)
    {
        assert!(
            up.elapsed() < Duration::from_secs(120),
            "lab did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let (one, _) = rollout(dir.path(), "one.db", Some("CL0000"));
    let (all, peak_kib) = rollout(dir.path(), "all.db", None);
    let _ = lab.kill();
    let _ = lab.wait();

    let bound = critical as f64 * scale;
    println!("rollout bench: {hosts} hosts ({clusters} two-node clusters, 10 sites), {steps} steps, lab time scale {scale}");
    println!("  one cluster alone (lower bound, measured)   {one:8.2} s");
    println!("  all clusters at once                        {all:8.2} s");
    println!(
        "  wall / lower bound                          {:8.3}",
        all / one
    );
    println!(
        "  wall / (critical path {critical} s x scale = {bound:.2} s)  {:8.3}",
        all / bound
    );
    println!(
        "  controller peak RSS                         {:8.1} MiB",
        peak_kib as f64 / 1024.0
    );
}
