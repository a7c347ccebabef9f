//! `lockstep exec` fan-out benchmark (issue 14): one command on HOSTS standalone lab servers,
//! all at once (`--forks HOSTS`), against the same command on the slowest of them alone. The
//! slowest host answers every WinRM request `SLOW_MS` late (the lab's `slow` fault), and the
//! command itself lasts one second (`ping -n 2 127.0.0.1`, the Windows sleep idiom).
//!
//! Figure, measured as a ratio in one run (the machine is shared): wall(all HOSTS) /
//! wall(the slowest host alone), the median of three runs each. Close to 1 means exec returns
//! in about the time of its slowest host.
//!
//! `cargo bench --bench exec` (50 hosts), or `cargo bench --bench exec -- 200`.

#![allow(clippy::print_stdout)] // a bench binary reports on stdout

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "Bench-Only-Pa55";
const SLOW_MS: u64 = 300;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_lockstep")
}

fn inventory(hosts: usize) -> String {
    let mut y = String::from(
        "all:\n  vars:\n    ansible_winrm_transport: basic\n    lockstep_allow_basic_over_http: true\n    ansible_user: bench\n    lockstep_password_env: LOCKSTEP_LAB_PASSWORD\n    exchange_version: \"2003\"\n    windows_release: \"2003\"\n    exchange_role: standalone\n    exchange_edition: standard\n  children:\n    site00:\n      vars:\n        lockstep_site: { locale: en-US }\n      hosts:\n",
    );
    for h in 0..hosts {
        y.push_str(&format!(
            "        H{h:04}: {{ exchange_build: 6.5.7226.6 }}\n"
        ));
    }
    y
}

fn lockstep(dir: &Path) -> Command {
    let mut c = Command::new(bin());
    c.current_dir(dir)
        .env("LOCKSTEP_STATE", dir.join("state.db"))
        .env("LOCKSTEP_LAB_PASSWORD", PASSWORD)
        .stdin(Stdio::null());
    c
}

/// Wall seconds of `lockstep exec -l LIMIT --forks FORKS -- ping -n 2 127.0.0.1`.
fn exec(dir: &Path, limit: &str, forks: usize) -> f64 {
    let t = Instant::now();
    let o = lockstep(dir)
        .args([
            "-q",
            "exec",
            "-i",
            "inventory.yml",
            "-i",
            "overlay.yml",
            "-l",
            limit,
        ])
        .args(["--forks", &forks.to_string(), "--format", "json"])
        .args(["--", "ping", "-n", "2", "127.0.0.1"])
        .output()
        .unwrap();
    let wall = t.elapsed().as_secs_f64();
    assert!(
        o.status.success(),
        "exec failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    wall
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let hosts: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(50);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.yml"), inventory(hosts)).unwrap();
    let mut lab = lockstep(dir.path())
        .args([
            "-q",
            "lab",
            "-i",
            "inventory.yml",
            "--overlay",
            "overlay.yml",
        ])
        .args(["--endpoints", "endpoints.json"])
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
    let slowest = format!("H{:04}", hosts - 1);
    let o = lockstep(dir.path())
        .args([
            "lab",
            "-i",
            "inventory.yml",
            "fault",
            "--endpoints",
            "endpoints.json",
            &slowest,
            "slow",
        ])
        .arg(SLOW_MS.to_string())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let fast_one = median((0..3).map(|_| exec(dir.path(), "H0000", 1)).collect());
    let slow_one = median((0..3).map(|_| exec(dir.path(), &slowest, 1)).collect());
    let all = median((0..3).map(|_| exec(dir.path(), "all", hosts)).collect());
    let _ = lab.kill();
    let _ = lab.wait();

    println!("exec fan-out: {hosts} hosts, --forks {hosts}, `ping -n 2` (1 s), slowest host +{SLOW_MS} ms per WinRM request");
    println!("  one fast host alone:     {fast_one:.2} s");
    println!("  the slowest host alone:  {slow_one:.2} s");
    println!("  all {hosts} hosts:           {all:.2} s");
    println!(
        "  ratio all / slowest alone: {:.2}  (all / one fast host: {:.2})",
        all / slow_one,
        all / fast_one
    );
}
