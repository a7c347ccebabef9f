//! Automatic takeover on a shared PostgreSQL store (issue 12): two controllers, one driving a
//! run, one (`lockstep controller`) standing by. SIGKILL the driver at random points (the seed
//! is printed; `LOCKSTEP_TAKEOVER_SEED` replays it): the standby takes the run over once the
//! lease lapses and finishes it, with the lab's invariants intact and no installer twice.
//! SIGSTOP the driver past its lease instead: once it wakes it sends no further command (the
//! lab's record proves it) and exits saying it lost the lease.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::pg::Pg;
use crate::util::{code, lab_inventory, lockstep, text, Lab};

const TRIALS: usize = 20;
/// Playbooks that finish on a fresh lab (the cluster ones halt at E3-FB/E2-FB until the
/// front-ends are upgraded).
const PLAYBOOKS: [&str; 2] = ["e3-fb", "e2-fb"];

/// `lockstep` in the lab's folder on the shared store, with 3-second leases (short, yet renewed
/// in time on two busy cores).
fn on_pg(lab: &Lab, url: &str) -> Command {
    let mut c = lockstep(lab.path());
    c.env("LOCKSTEP_STATE", url).env("LOCKSTEP_LEASE_SECS", "3");
    c
}

fn start_run(lab: &Lab, url: &str, playbook: &str) -> Child {
    let inv = lab_inventory();
    on_pg(lab, url)
        .args([
            "run",
            "-i",
            inv.to_str().unwrap(),
            "-i",
            "overlay.yml",
            playbook,
        ])
        .args(["--yes", "--soak-scale", "0", "--no-progress"])
        .args(["-e", "evs_upgrade_tool=labctl evs upgrade"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn start_standby(lab: &Lab, url: &str) -> Child {
    on_pg(lab, url)
        .args([
            "controller",
            "--once",
            "--yes",
            "--soak-scale",
            "0",
            "--no-progress",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn runs(lab: &Lab, url: &str) -> Vec<serde_json::Value> {
    let o = on_pg(lab, url)
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Waits until the store holds a run; false if `driver` ended first.
fn wait_for_run(lab: &Lab, url: &str, driver: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if !runs(lab, url).is_empty() {
            return true;
        }
        if driver.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(Instant::now() < deadline, "no run was created");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_output(mut child: Child, secs: u64, what: &str) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("{what} did not end within {secs} s: {}", text(&o));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} failed");
}

fn commands(lab: &Lab) -> usize {
    lab.records()
        .iter()
        .filter(|r| r["event"] == "command")
        .count()
}

#[test]
#[allow(clippy::print_stderr)] // the seed must reach the test log to replay a failure
fn sigkill_the_driving_controller_and_the_standby_finishes_the_run() {
    let seed: u64 = std::env::var("LOCKSTEP_TAKEOVER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("takeover test seed: {seed} (LOCKSTEP_TAKEOVER_SEED={seed} replays it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let pg = Pg::start();
    let mut landed = 0;
    for trial in 0..TRIALS {
        let playbook = PLAYBOOKS[trial % PLAYBOOKS.len()];
        let what = format!("seed {seed}, trial {trial} ({playbook})");
        let lab = Lab::start(Some("time_scale: 0.001\n"));
        let url = pg.url(&format!("takeover{trial}"));
        let standby = start_standby(&lab, &url);
        let mut driver = start_run(&lab, &url, playbook);
        let created = wait_for_run(&lab, &url, &mut driver);
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..1500)));
        let killed = created && driver.try_wait().unwrap().is_none();
        if killed {
            driver.kill().unwrap(); // SIGKILL
            landed += 1;
        }
        let driver_out = driver.wait_with_output().unwrap();
        if !killed {
            assert_eq!(code(&driver_out), 0, "{what}: {}", text(&driver_out));
            let mut standby = standby;
            let _ = standby.kill();
            let _ = standby.wait();
            continue;
        }
        let t_kill = Instant::now();
        let out = wait_output(standby, 240, &what);
        assert_eq!(code(&out), 0, "{what}: the standby: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("taking over run"), "{what}: {}", text(&out));
        eprintln!(
            "{what}: killed, taken over and finished {:.1} s later",
            t_kill.elapsed().as_secs_f64()
        );
        let latest = &runs(&lab, &url)[0];
        assert_eq!(latest["state"], "finished", "{what}: {latest}");
        lab.assert_invariants();
        lab.assert_each_installer_once(&what);
    }
    assert!(
        landed >= TRIALS * 3 / 4,
        "seed {seed}: only {landed} of {TRIALS} kills landed mid-run"
    );
}

#[test]
fn a_controller_paused_past_its_lease_sends_nothing_once_it_wakes() {
    let pg = Pg::start();
    let url = pg.url("paused");
    let lab = Lab::start(Some("time_scale: 0.001\n"));
    let mut driver = start_run(&lab, &url, "e3-fb");
    assert!(
        wait_for_run(&lab, &url, &mut driver),
        "the run never started"
    );
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        driver.try_wait().unwrap().is_none(),
        "the run ended before it could be paused"
    );
    signal(&driver, "-STOP");
    // The standby takes over once the lease lapsed and finishes the run.
    let out = wait_output(start_standby(&lab, &url), 240, "the standby");
    assert_eq!(code(&out), 0, "the standby: {}", text(&out));
    assert_eq!(runs(&lab, &url)[0]["state"], "finished");
    let before = commands(&lab);
    signal(&driver, "-CONT");
    let woke = wait_output(driver, 120, "the paused controller");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        commands(&lab),
        before,
        "the paused controller sent commands after it woke: {}",
        text(&woke)
    );
    assert_ne!(code(&woke), 0, "{}", text(&woke));
    let err = String::from_utf8_lossy(&woke.stderr);
    assert!(
        err.contains("lost the lease") || err.contains("no longer holds its lease"),
        "no clear message: {}",
        text(&woke)
    );
    lab.assert_invariants();
    lab.assert_each_installer_once("paused controller");
}
