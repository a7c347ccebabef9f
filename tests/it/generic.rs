//! A playbook written only with the generic language (a `command` installer judged by exit code
//! and skipped when the target holds, an `assert` of the target, waves of 1 and 50% with a soak and
//! a health probe) runs end to end on the lab over real WinRM, each installer exactly once, with
//! the lab's invariant checker passing; run again, it changes nothing.

use crate::util::{code, text, Lab};

pub(crate) const PLAYBOOK: &str = r#"name: generic-waves
title: Exchange 2003 SP2 with generic steps, in waves
procedure: E3-NC
hosts: [exchange2003]
target: { product: "2003", build: 6.5.7638.2, kind: service-pack }
facts:
  sp_build: { registry: 'HKLM\SOFTWARE\Microsoft\Exchange\Setup', value: ServicePackBuild }
vars:
  sp_package: '\\fs01\install$\E2K3SP2\setup\i386\update.exe'
rollout:
  serial: [1, 50%]
  wave_gate: { soak: 1s }
  wave_health: "target and sp_build >= 7638"
phases:
  - name: Patch
    scope: each-host
    roles: [standalone, sbs]
    steps:
      - id: stop-nonessential
        name: Stop antivirus, backup and monitoring on {{ node }}
        rule: G5
        action: stop-services
        services: [McShield, BackupExecAgentAccelerator, SNMP]
      - id: install
        name: Install SP2 on {{ node }}
        rule: PATCH-1
        action: command
        command: '"{{ sp_package }}" /q /z'
        restart_exit_codes: [3010]
        unless: target
        timeout_secs: 3600
      - id: start-nonessential
        name: Start them again on {{ node }}
        rule: G5
        action: start-services
        services: [McShield, BackupExecAgentAccelerator, SNMP]
      - id: verify
        name: "{{ node }} at the target"
        rule: PATCH-2
        action: assert
"#;

#[test]
fn a_generic_playbook_in_waves_runs_on_the_lab_exactly_once() {
    let lab = Lab::start(None);
    std::fs::write(lab.path().join("generic-waves.yml"), PLAYBOOK).unwrap();
    let o = lab.rollout("generic-waves.yml", &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = text(&o);
    for stage in ["wave-1", "health-before-wave-2", "wave-2"] {
        assert!(out.contains(&format!("== stage {stage}")), "{stage}: {out}");
    }
    lab.assert_invariants();
    lab.assert_each_installer_once("generic waves");
    let first = lab.installs().len();
    // Every host is at the target now: a second run skips every installer (unless: target).
    let again = lab.rollout("generic-waves.yml", &[]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert!(text(&again).contains("already holds"), "{}", text(&again));
    assert_eq!(lab.installs().len(), first);
    lab.assert_each_installer_once("generic waves, run twice");
}

#[test]
#[allow(clippy::print_stderr)] // the seed must reach the test log to replay a failure
fn the_generic_playbook_survives_sigkill_and_resume_without_repeating_an_installer() {
    use rand::{Rng, SeedableRng};
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let seed: u64 = std::env::var("LOCKSTEP_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("generic crash test seed: {seed} (LOCKSTEP_CRASH_SEED={seed} replays it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let lab = Lab::start(Some("time_scale: 0.001\n"));
    std::fs::write(lab.path().join("generic-waves.yml"), PLAYBOOK).unwrap();
    let inv = crate::util::lab_inventory();
    let inv = inv.to_str().unwrap();
    let status = |lab: &Lab| -> Vec<serde_json::Value> {
        let o = lab.run(&["status", "--format", "json"]);
        assert_eq!(code(&o), 0, "{}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut kills = 0;
    loop {
        assert!(Instant::now() < deadline, "seed {seed}: did not finish");
        let runs = status(&lab);
        let mut cmd = crate::util::lockstep(lab.path());
        if runs.is_empty() {
            cmd.args(["run", "-i", inv, "-i", "overlay.yml", "generic-waves.yml"]);
        } else {
            cmd.args(["resume", runs[0]["run"].as_str().unwrap()]);
        }
        cmd.args(["--yes", "--soak-scale", "0"]);
        if kills >= 8 {
            let o = cmd.output().unwrap();
            assert_eq!(code(&o), 0, "seed {seed}: final resume: {}", text(&o));
            break;
        }
        let log = lab.path().join(format!("attempt-{kills}.log"));
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..700)));
        match child.try_wait().unwrap() {
            Some(s) => {
                assert_eq!(
                    s.code(),
                    Some(0),
                    "seed {seed}: ended badly between kills: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
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
    assert_eq!(status(&lab)[0]["state"], "finished", "seed {seed}");
    lab.assert_invariants();
    lab.assert_each_installer_once(&format!("generic, seed {seed}"));
}
