//! One controller per host, whatever the run (issue 11, defect 4): two `lockstep run`s started
//! together on overlapping hosts, sharing a state store. In every race exactly one leases the
//! hosts; the other is refused before it sends anything, naming the winner, with exit 3.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::{code, lab_inventory, lockstep, text, Lab};

const RACES: usize = 20;

fn start(lab: &Lab, state: &str, playbook: &str) -> Child {
    let inv = lab_inventory();
    lockstep(lab.path())
        .env("LOCKSTEP_STATE", lab.path().join(state))
        .args(["run", "-i", inv.to_str().unwrap(), "-i", "overlay.yml"])
        .args([playbook, "--yes", "--soak-scale", "0", "--no-progress"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until one of the two exits; returns (exited index, its output).
fn first_to_exit(children: &mut [Child; 2]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        for (i, c) in children.iter_mut().enumerate() {
            if c.try_wait().unwrap().is_some() {
                return i;
            }
        }
        assert!(Instant::now() < deadline, "neither controller ended");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_run_on_overlapping_hosts_is_refused_in_every_race() {
    let lab = Lab::start(None);
    // Every response of a front-end both playbooks read is slow, so the winner is still in its
    // discovery (holding the leases, nothing changed yet) when the loser asks.
    lab.fault("PRG-FE01", "slow", Some("3000"));
    let installs_before = lab.installs().len();
    for race in 0..RACES {
        // A fresh state store per race (the killed winner's leases stay behind in the old one),
        // shared by both controllers; overlapping playbooks (both touch PRG-FE01).
        let state = format!("race-{race}.db");
        let (a, b) = if race % 2 == 0 {
            ("e3-fb", "e3-cluster")
        } else {
            ("e3-cluster", "e3-fb")
        };
        let mut children = [start(&lab, &state, a), start(&lab, &state, b)];
        let loser = first_to_exit(&mut children);
        let winner = 1 - loser;
        let winner_pid = children[winner].id();
        let still_running = children[winner].try_wait().unwrap().is_none();
        let _ = children[winner].kill();
        let _ = children[winner].wait();
        let out = children[loser].try_clone_output();
        assert!(
            still_running,
            "race {race}: both controllers ended; the loser said: {}",
            text(&out)
        );
        assert_eq!(code(&out), 3, "race {race}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("REFUSED: one controller per host")
                && err.contains(&format!("controller pid {winner_pid} ")),
            "race {race}: the refusal does not name the winner (pid {winner_pid}): {}",
            text(&out)
        );
    }
    assert_eq!(
        lab.installs().len(),
        installs_before,
        "a controller changed something while its discovery held the leases"
    );
}

/// The output of an exited child whose pipes are still open.
trait TryCloneOutput {
    fn try_clone_output(&mut self) -> std::process::Output;
}

impl TryCloneOutput for Child {
    fn try_clone_output(&mut self) -> std::process::Output {
        use std::io::Read;
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        if let Some(mut s) = self.stdout.take() {
            let _ = s.read_to_end(&mut stdout);
        }
        if let Some(mut s) = self.stderr.take() {
            let _ = s.read_to_end(&mut stderr);
        }
        let status = self.wait().unwrap();
        std::process::Output {
            status,
            stdout,
            stderr,
        }
    }
}
