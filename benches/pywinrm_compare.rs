//! Lockstep's WinRM transport against a plain pywinrm script (issue 12): the same read-only
//! commands on every host of a `lockstep lab` process (standalone Exchange 2003 servers), at
//! most CONCURRENCY hosts at once on both sides, each host's commands one after another, both
//! sides with their default settings against a default Windows listener (HTTP, NTLM with
//! message encryption; the lab refuses unencrypted bodies, as Windows does):
//! - Lockstep: `WinrmTransport` with default `Limits` (but `total` = CONCURRENCY), one NTLM
//!   handshake per connection and a pooled shell per host (two HTTP requests per command);
//! - pywinrm: the script everyone writes, `winrm.Session(url, auth, transport='ntlm')` and
//!   `run_cmd` per command in a `ThreadPoolExecutor(CONCURRENCY)` (`transport='ntlm'` is the
//!   only pywinrm transport a default Windows accepts over HTTP; its default `plaintext` is
//!   refused). `run_cmd` opens a shell, runs, receives, cleans up and deletes the shell: five
//!   requests per command.
//!
//! Both sides must get the same exit code and output for every command, else the bench fails.
//! Reports, in one run (ratios; the machine is shared): wall time of each side (median of
//! ROUNDS), the ratio pywinrm / Lockstep, and the CPU seconds spent by each client and by the
//! lab while serving it (what dominates).
//!
//! `cargo bench --bench pywinrm_compare [-- HOSTS CONCURRENCY ROUNDS]` (defaults 200 200 3).
//! Needs a Python with pywinrm: `$LOCKSTEP_PYTHON`, else `/tmp/lockstep-winrm-venv/bin/python`
//! (`python3 -m venv /tmp/lockstep-winrm-venv && /tmp/lockstep-winrm-venv/bin/pip install
//! 'pywinrm>=0.5'`).
//!
//! Measured 2026-12-06 on 2 cores shared with other builds (load ~12), median of 3:
//!
//! | 200 hosts x 6 commands, 200 at once | wall    | client CPU | lab CPU |
//! |-------------------------------------|---------|------------|---------|
//! | Lockstep `WinrmTransport`           | 0.62 s  | 0.21 s     | 0.20 s  |
//! | pywinrm 0.5 script                  | 33.59 s | 22.31 s    | 1.28 s  |
//!
//! Ratio 54.4x (50 hosts x 6, 50 at once: 54.3x). pywinrm's own CPU dominates (22 s for 1,200
//! commands: NTLM sealing, XML and `requests` in Python threads under one GIL), then its request
//! count: five sealed requests per command (a shell opened and deleted each time) plus an NTLM
//! handshake per session, against Lockstep's two on a pooled shell, which is why the lab also
//! works 6x longer for it.

#![allow(clippy::print_stdout)] // a bench binary reports on stdout

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use lockstep_core::{Name, Transport};
use lockstep_winrm::{Limits, NodeTarget, Secret, WinrmTransport};

const PASSWORD: &str = "Bench-Only-Pa55";
const USER: &str = "bench";

/// What a pre-flight check of a rollout reads on each node (all answered by the lab's model).
const COMMANDS: &[&str] = &[
    r#"reg query "HKLM\SOFTWARE\Microsoft\Exchange\Setup""#,
    r#"reg query "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion""#,
    r#"reg query "HKLM\SYSTEM\CurrentControlSet\Control\Nls\CodePage""#,
    r#"reg query "HKLM\SYSTEM\CurrentControlSet\Control\Session Manager""#,
    "sc query MSExchangeIS",
    "sc query MSExchangeSA",
];

const SCRIPT: &str = r#"
import json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
import winrm
endpoints, user, conc, commands = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
password = os.environ['LOCKSTEP_LAB_PASSWORD']
urls = json.load(open(endpoints))

def host(name):
    s = winrm.Session(urls[name], auth=(user, password), transport='ntlm')
    out = []
    for c in commands:
        r = s.run_cmd(c)
        out.append([r.status_code, r.std_out.decode('utf-8', 'replace')])
    return name, out

t = time.monotonic()
with ThreadPoolExecutor(max_workers=conc) as ex:
    results = dict(ex.map(host, sorted(urls)))
secs = time.monotonic() - t
print(json.dumps({'secs': secs, 'results': results}))
"#;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_lockstep")
}

fn python() -> String {
    if let Ok(p) = std::env::var("LOCKSTEP_PYTHON") {
        if !p.is_empty() {
            return p;
        }
    }
    let venv = "/tmp/lockstep-winrm-venv/bin/python";
    assert!(
        Path::new(venv).exists(),
        "no Python with pywinrm: set LOCKSTEP_PYTHON or run `python3 -m venv /tmp/lockstep-winrm-venv && /tmp/lockstep-winrm-venv/bin/pip install 'pywinrm>=0.5'`"
    );
    venv.to_owned()
}

fn inventory(hosts: usize) -> String {
    // No transport named: Lockstep's default (NTLM, sealed over HTTP).
    let mut y = format!(
        "all:\n  vars:\n    ansible_user: {USER}\n    lockstep_password_env: LOCKSTEP_LAB_PASSWORD\n    exchange_version: \"2003\"\n    windows_release: \"2003\"\n    exchange_role: standalone\n    exchange_edition: standard\n  children:\n    site00:\n      vars:\n        lockstep_site: {{ locale: en-US }}\n      hosts:\n",
    );
    for h in 0..hosts {
        y.push_str(&format!(
            "        H{h:04}: {{ exchange_build: 6.5.7226.6 }}\n"
        ));
    }
    y
}

/// The sum of two clock-tick fields of a `/proc/.../stat` file (counted after the command
/// name), in seconds; 0 when it cannot be read.
fn stat_secs(path: &str, a: usize, b: usize) -> f64 {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let Some(i) = s.rfind(')') else { return 0.0 };
    let fields: Vec<&str> = s[i + 2..].split_whitespace().collect();
    let tick = |n: usize| {
        fields
            .get(n)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(a) + tick(b)) / 100.0
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_secs(pid: &str) -> f64 {
    stat_secs(&format!("/proc/{pid}/stat"), 11, 12)
}

/// CPU seconds of this process's finished children (the Python runs).
fn children_cpu() -> f64 {
    stat_secs("/proc/self/stat", 13, 14)
}

type Results = BTreeMap<String, Vec<(i32, String)>>;

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in endpoint `{url}`"))
}

/// Lockstep's transport: every host's commands in a row, CONCURRENCY hosts at once.
fn lockstep(endpoints: &BTreeMap<String, String>, conc: usize) -> (f64, Results) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let t = Instant::now();
        let targets = endpoints
            .iter()
            .map(|(h, url)| {
                let mut t = NodeTarget::new(
                    Name::host(h).unwrap(),
                    "127.0.0.1",
                    USER,
                    Secret::new(PASSWORD),
                );
                t.port = port_of(url);
                t
            })
            .collect();
        let limits = Limits {
            total: conc,
            ..Limits::default()
        };
        let tr = Arc::new(WinrmTransport::new(targets, limits).unwrap());
        let results: Results = futures::stream::iter(endpoints.keys().cloned())
            .map(|h| {
                let tr = Arc::clone(&tr);
                async move {
                    let name = Name::host(&h).unwrap();
                    let mut out = Vec::new();
                    for c in COMMANDS {
                        let o = tr
                            .run(&name, c, Duration::from_secs(120))
                            .await
                            .unwrap_or_else(|e| panic!("{h}: `{c}`: {e}"));
                        out.push((o.exit_code, o.stdout));
                    }
                    (h, out)
                }
            })
            .buffer_unordered(conc)
            .collect()
            .await;
        tr.close().await;
        (t.elapsed().as_secs_f64(), results)
    })
}

/// The pywinrm script, in its own process.
fn pywinrm(python: &str, dir: &Path, conc: usize) -> (f64, Results) {
    let o = Command::new(python)
        .args(["-c", SCRIPT])
        .arg(dir.join("endpoints.json"))
        .arg(USER)
        .arg(conc.to_string())
        .arg(serde_json::to_string(COMMANDS).unwrap())
        .env("LOCKSTEP_LAB_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the pywinrm script failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let results = serde_json::from_value(v["results"].clone()).unwrap();
    (v["secs"].as_f64().unwrap(), results)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let hosts = args.first().copied().unwrap_or(200);
    let conc = args.get(1).copied().unwrap_or(hosts);
    let rounds = args.get(2).copied().unwrap_or(3).max(1);
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.yml"), inventory(hosts)).unwrap();
    let mut lab = Command::new(bin())
        .current_dir(dir.path())
        .env("LOCKSTEP_LAB_PASSWORD", PASSWORD)
        .args(["-q", "lab", "-i", "inventory.yml"])
        .args(["--endpoints", "endpoints.json"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            std::fs::File::create(dir.path().join("lab.out")).unwrap(),
        ))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lab_pid = lab.id().to_string();
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
    let endpoints: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("endpoints.json")).unwrap())
            .unwrap();

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut our_cpu, mut their_cpu, mut lab_ours, mut lab_theirs) = (0.0, 0.0, 0.0, 0.0);
    for _ in 0..rounds {
        let (cpu0, lab0) = (cpu_secs("self"), cpu_secs(&lab_pid));
        let (secs, a) = lockstep(&endpoints, conc);
        our_cpu += cpu_secs("self") - cpu0;
        lab_ours += cpu_secs(&lab_pid) - lab0;
        ours.push(secs);

        let (cpu0, lab0) = (children_cpu(), cpu_secs(&lab_pid));
        let (secs, b) = pywinrm(&python, dir.path(), conc);
        their_cpu += children_cpu() - cpu0;
        lab_theirs += cpu_secs(&lab_pid) - lab0;
        theirs.push(secs);

        // The same work on both sides: every exit code and every output line.
        assert_eq!(a.len(), hosts, "Lockstep did not reach every host");
        for (host, outs) in &a {
            let other = &b[host];
            for ((c, (code, out)), (code2, out2)) in COMMANDS.iter().zip(outs).zip(other) {
                assert_eq!(code, code2, "{host}: `{c}`: exit codes differ");
                assert_eq!(
                    out.trim_end(),
                    out2.trim_end(),
                    "{host}: `{c}`: outputs differ"
                );
            }
        }
    }
    let _ = lab.kill();
    let _ = lab.wait();
    let n = rounds as f64;
    let (ours, theirs) = (median(ours), median(theirs));
    let commands = hosts * COMMANDS.len();
    println!(
        "pywinrm comparison: {hosts} hosts x {} commands, {conc} hosts at once, NTLM sealed over HTTP, median of {rounds}",
        COMMANDS.len()
    );
    println!(
        "  lockstep (WinrmTransport): {ours:7.2} s  {:8.0} commands/s  client CPU {:6.2} s, lab CPU {:6.2} s",
        commands as f64 / ours,
        our_cpu / n,
        lab_ours / n
    );
    println!(
        "  pywinrm script:            {theirs:7.2} s  {:8.0} commands/s  client CPU {:6.2} s, lab CPU {:6.2} s",
        commands as f64 / theirs,
        their_cpu / n,
        lab_theirs / n
    );
    println!("  ratio pywinrm / lockstep: {:.1}x", theirs / ours);
}
