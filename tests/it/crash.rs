//! Crash and resume: the controller is SIGKILLed at many random points of a rollout (the seed
//! is printed; `LOCKSTEP_CRASH_SEED` replays it). After `resume`, every run reaches the right end
//! state, no installer ran twice, and the lab's invariant checker passes.

use std::process::Stdio;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::util::{code, lab_inventory, lockstep, text, Lab};

const KILLS_PER_PLAYBOOK: usize = 10;

fn runs(lab: &Lab) -> Vec<serde_json::Value> {
    let o = lab.run(&["status", "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    serde_json::from_slice::<Vec<serde_json::Value>>(&o.stdout).unwrap()
}

#[test]
#[allow(clippy::print_stderr)] // the seed must reach the test log to replay a failure
fn sigkill_at_random_points_then_resume_completes_without_repeating_an_installer() {
    let seed: u64 = std::env::var("LOCKSTEP_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test seed: {seed} (LOCKSTEP_CRASH_SEED={seed} replays it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Simulated durations twice the default, so that kills land inside installs and reboots too.
    let lab = Lab::start(Some("time_scale: 0.001\n"));
    let inv = lab_inventory();
    let inv = inv.to_str().unwrap();
    let mut total_kills = 0;
    for pb in ["e3-fb", "e3-cluster", "e2-fb", "e2-active-passive"] {
        let before = runs(&lab).len();
        let mut kills = 0;
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            assert!(
                Instant::now() < deadline,
                "seed {seed}: {pb} did not finish"
            );
            let now = runs(&lab);
            let mut cmd = lockstep(lab.path());
            if now.len() == before {
                cmd.args([
                    "run",
                    "-i",
                    inv,
                    "-i",
                    "overlay.yml",
                    pb,
                    "--yes",
                    "--soak-scale",
                    "0",
                ])
                .args(["-e", "evs_upgrade_tool=labctl evs upgrade"]);
            } else {
                let id = now[0]["run"].as_str().unwrap().to_owned();
                cmd.args(["resume", &id, "--yes", "--soak-scale", "0"]);
            }
            if kills >= KILLS_PER_PLAYBOOK {
                let o = cmd.output().unwrap();
                assert_eq!(
                    code(&o),
                    0,
                    "seed {seed}: final resume of {pb}: {}",
                    text(&o)
                );
                break;
            }
            let mut child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(rng.gen_range(100..1000)));
            match child.try_wait().unwrap() {
                Some(status) => {
                    assert_eq!(
                        status.code(),
                        Some(0),
                        "seed {seed}: {pb} ended badly between kills"
                    );
                    break;
                }
                None => {
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap();
                    kills += 1;
                }
            }
        }
        total_kills += kills;
        let latest = &runs(&lab)[0];
        assert_eq!(latest["state"], "finished", "seed {seed}: {latest}");
    }
    assert!(
        total_kills >= 30,
        "seed {seed}: only {total_kills} kills landed mid-run"
    );
    lab.assert_invariants();
    lab.assert_each_installer_once(&format!("seed {seed}"));
}
