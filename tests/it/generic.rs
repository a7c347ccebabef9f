//! A playbook written only with the generic language (a `command` installer judged by exit code
//! and skipped when the target holds, an `assert` of the target, waves of 1 and 50% with a soak and
//! a health probe) runs end to end on the lab over real WinRM, each installer exactly once, with
//! the lab's invariant checker passing; run again, it changes nothing.

use crate::util::{code, text, Lab};

pub(crate) const PLAYBOOK: &str = r#"name: generic-waves
title: Exchange 2003 SP2 with generic steps, in waves
shape: { units: hosts, roles: [standalone, sbs] }
hosts: [exchange2003]
target: { product: "2003", build: 6.5.7638.2, kind: service-pack }
facts:
  sp_build: { registry: 'HKLM\SOFTWARE\Microsoft\Exchange\Setup', value: ServicePackBuild }
vars:
  sp_file: E2K3SP2/setup/i386/update.exe
  sp_sha256: d7f9270b849a441c6b7420996f8d36a18e5c261365353bf76cfcb1e09caaef5b
  sp_package: 'C:\Lockstep\packages\E2K3SP2\update.exe'
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
      - id: stage
        name: Copy SP2 to {{ node }} (a WinRM session cannot read the share)
        rule: STAGE
        action: stage
        source: "{{ package_root }}/{{ sp_file }}"
        sha256: "{{ sp_sha256 }}"
        dest: "{{ sp_package }}"
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
fn the_generic_playbook_survives_sigkill_and_resume_without_repeating_an_installer() {
    use rand::SeedableRng;
    let seed = crate::util::crash_seed("generic crash test");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let lab = Lab::start(Some("time_scale: 0.001\n"));
    std::fs::write(lab.path().join("generic-waves.yml"), PLAYBOOK).unwrap();
    let args = Lab::run_args_on(&crate::util::lab_inventory(), "generic-waves.yml");
    lab.run_through_kills(&args, 8, 700, &mut rng, &format!("generic, seed {seed}"));
    lab.assert_invariants();
    lab.assert_each_installer_once(&format!("generic, seed {seed}"));
}
