//! The operator's terminal, driven for real: `lockstep run` in a `tmux` pane (a real
//! pseudo-terminal) shows live progress bars while it runs and a lasting summary after; and the
//! per-run log file beside the state holds the run's step lines and never the password.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{bin, code, lab_inventory, text, Lab, LAB_PASSWORD};

/// A private tmux server (its socket in the test's folder), killed when dropped.
struct Tmux {
    socket: std::path::PathBuf,
}

impl Tmux {
    fn new(dir: &Path) -> Tmux {
        Tmux {
            socket: dir.join("tmux.sock"),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket).args(["-f", "/dev/null"]);
        c
    }

    fn capture(&self) -> String {
        let o = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "ux"])
            .output()
            .expect("tmux capture-pane runs");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

/// A bar drawn by the live display: `[===>----]` between brackets, then `N/M`.
fn has_bar(line: &str) -> bool {
    line.match_indices('[').any(|(i, _)| {
        let rest = &line[i + 1..];
        let Some(end) = rest.find(']') else {
            return false;
        };
        let inside = &rest[..end];
        inside.len() >= 10
            && inside.chars().all(|c| matches!(c, '=' | '>' | '-'))
            && rest[end + 1..]
                .trim_start()
                .starts_with(|c: char| c.is_ascii_digit())
    })
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs `lockstep run ... e3-nc --yes --soak-scale 0` in a tmux pane against `lab`, polling the
/// screen (bounded); returns the first screen that showed bars (overall and a busy group) and
/// the last screen, once the shell printed the exit code.
fn run_in_a_terminal(lab: &Lab) -> (Option<String>, String) {
    let tmux_ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        tmux_ok,
        "this test needs tmux (Debian package `tmux`; `.ci/run` installs it)"
    );
    let inv = lab_inventory();
    let script = format!(
        "cd {dir}\nexport LOCKSTEP_STATE={state} LOCKSTEP_LAB_PASSWORD={pw} NO_COLOR=1\nunset RUST_LOG\n\
         {bin} run -i {inv} -i overlay.yml e3-nc --yes --soak-scale 0\necho LOCKSTEP-EXIT=$?\nexec sleep 600\n",
        dir = shell_quote(&lab.path().display().to_string()),
        state = shell_quote(&lab.path().join("state.db").display().to_string()),
        pw = shell_quote(LAB_PASSWORD),
        bin = shell_quote(bin()),
        inv = shell_quote(&inv.display().to_string()),
    );
    std::fs::write(lab.path().join("run.sh"), script).unwrap();
    let tmux = Tmux::new(lab.path());
    let started = tmux
        .cmd()
        .args([
            "new-session",
            "-d",
            "-s",
            "ux",
            "-x",
            "160",
            "-y",
            "50",
            "sh",
        ])
        .arg(lab.path().join("run.sh"))
        .status()
        .expect("tmux starts");
    assert!(started.success(), "tmux new-session failed");

    let deadline = Instant::now() + Duration::from_secs(180);
    let mut with_bars: Option<String> = None;
    let last = loop {
        let screen = tmux.capture();
        if with_bars.is_none()
            && screen.contains("ETA ~")
            && screen
                .lines()
                .any(|l| has_bar(l) && l.contains(": ") && !l.contains("ETA"))
        {
            with_bars = Some(screen.clone());
        }
        if screen.contains("LOCKSTEP-EXIT=") {
            break screen;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not end within 180 s; screen:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!last.contains(LAB_PASSWORD), "no password on screen");
    (with_bars, last)
}

#[test]
fn a_terminal_shows_live_bars_then_a_lasting_summary() {
    // Slower simulated durations, so that the run lasts a few seconds.
    let lab = Lab::start(Some("time_scale: 0.003\n"));
    let (with_bars, last) = run_in_a_terminal(&lab);
    assert!(last.contains("LOCKSTEP-EXIT=0"), "run failed:\n{last}");
    let running =
        with_bars.unwrap_or_else(|| panic!("no progress bars seen; last screen:\n{last}"));
    // The overall line: playbook, elapsed, bar, steps, plan-based estimate.
    assert!(
        running.lines().any(|l| l.contains("e3-nc")
            && has_bar(l)
            && l.contains("steps")
            && l.contains("ETA ~")),
        "overall bar:\n{running}"
    );
    // A site/cluster line names a busy node and its current step (`HOST: step`).
    assert!(
        running
            .lines()
            .any(|l| has_bar(l) && l.contains(": ") && !l.contains("ETA")),
        "a group bar with a busy node:\n{running}"
    );
    // After: the bars are gone, what matters stays.
    assert!(
        !last.lines().any(has_bar),
        "bars cleared at the end:\n{last}"
    );
    assert!(last.contains("== stage"), "stage lines stay:\n{last}");
    assert!(
        last.lines()
            .any(|l| l.contains("finished:") && l.contains("steps complete in")),
        "final summary:\n{last}"
    );
}

#[test]
fn a_halt_stays_on_the_terminal_after_the_bars_clear() {
    let lab = Lab::start(Some("time_scale: 0.003\n"));
    // G6/E3-NC: a failing installer stops the run in a safe state.
    lab.fault("TYO-EXC01", "installer-fails", Some("1603"));
    let (_, last) = run_in_a_terminal(&lab);
    assert!(last.contains("LOCKSTEP-EXIT=3"), "halted:\n{last}");
    assert!(
        !last.lines().any(has_bar),
        "bars cleared at the end:\n{last}"
    );
    assert!(
        last.lines()
            .any(|l| l.contains("failed") && l.contains("TYO-EXC01/install-sp")),
        "the failed step stays:\n{last}"
    );
    assert!(last.contains("HALTED (step-failed)"), "{last}");
    assert!(last.contains("next:"), "what to do next stays:\n{last}");
}

fn logs_in(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir.join("logs"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn each_run_writes_its_log_beside_the_state_without_the_password() {
    let lab = Lab::start(None);
    let o = lab.rollout("e5-nc", &["--output", "json", "--limit", "SEA-EX5501"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let run = events[0]["run"].as_str().unwrap().to_owned();
    let logs = logs_in(lab.path());
    let expected = lab.path().join("logs").join(format!("{run}.log"));
    assert_eq!(logs, vec![expected.clone()], "one log, named by the run");
    let log = std::fs::read_to_string(&expected).unwrap();
    let steps: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["event"] == "step")
        .map(|e| (e["id"].as_str().unwrap(), e["state"].as_str().unwrap()))
        .collect();
    assert!(!steps.is_empty());
    for (id, state) in &steps {
        assert!(
            log.lines().any(|l| l.contains(id) && l.contains(state)),
            "log lacks step `{id}` {state}:\n{log}"
        );
    }
    assert!(log.contains(&format!("run={run}")), "{log}");
    assert!(!log.contains(LAB_PASSWORD), "the password reached the log");
    // `status RUN` says where the log is.
    let s = lab.run(&["status", &run]);
    assert!(
        String::from_utf8_lossy(&s.stdout).contains(&expected.display().to_string()),
        "{}",
        text(&s)
    );

    // With --log-format json, the log lines are JSON objects.
    let lab = Lab::start(None);
    let o = lab.rollout("e5-nc", &["--log-format", "json", "--limit", "SEA-EX5501"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let logs = logs_in(lab.path());
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = std::fs::read_to_string(&logs[0]).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["target"] == "lockstep_run" && l["fields"]["state"] == "done"),
        "{log}"
    );
    assert!(!log.contains(LAB_PASSWORD), "the password reached the log");
}
