//! The generic playbook language: declared facts, `command`/`powershell`/`wait-until`/`assert`
//! steps, conditions and free-text rule ids, loaded from YAML with every error at its position.

use lockstep_core::{ActionSpec, Availability, FactProbe, Fleet};
use lockstep_spec::{embedded, load_inventory, load_playbook, Diagnostics, SourceFile};

const FILE: &str = "playbooks/g.yml";

/// A hotfix playbook an administrator writes: their own rule ids, probes and steps.
pub const GENERIC: &str = r#"name: g
title: Monthly hotfix
procedure: PATCH
hosts: [exchange2003]
target:
  product: "2003"
  build: 6.5.7638.2
  kind: hotfix
facts:
  ubr: { registry: 'HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion', value: UBR }
  kb: { hotfix: KB5034441 }
  kernel: { file-version: 'C:\Windows\System32\ntoskrnl.exe' }
  os_build: { wql: "SELECT BuildNumber FROM Win32_OperatingSystem", property: BuildNumber }
  spooler: { powershell: "(Get-Service Spooler).Status.ToString()" }
vars:
  msu: 'C:\stage\kb5034441.msu'
phases:
  - name: Patch
    scope: each-host
    steps:
      - id: drain
        name: Take {{ node }} out of the pool
        rule: PATCH-1
        action: powershell
        script: |
          Suspend-Thing -Name '{{ node }}'
          Get-Thing | ConvertTo-Json
        expect: "State == Paused"
        availability: takes-out
      - id: wusa
        name: Install the hotfix on {{ node }}
        rule: PATCH-2
        action: command
        command: 'wusa.exe "{{ msu }}" /quiet /norestart'
        ok_exit_codes: [0, 2359302]
        restart_exit_codes: [3010]
        unless: kb
        timeout_secs: 3600
      - id: spooler-up
        name: Wait for the spooler on {{ node }}
        rule: PATCH-3
        action: wait-until
        that: "spooler == Running"
        every: 15s
      - id: back
        name: Put {{ node }} back
        rule: PATCH-4
        action: powershell
        script: Resume-Thing
        availability: brings-back
      - id: verify
        name: "{{ node }} patched"
        rule: PATCH-5
        action: assert
        that: "kb and ubr >= 5696 and target"
"#;

fn fleet() -> Fleet {
    load_inventory(&[embedded::LAB_INVENTORY.source()]).unwrap_or_else(|d| panic!("{d}"))
}

fn errors(text: &str) -> Diagnostics {
    match load_playbook(&SourceFile::new(FILE, text), &fleet()) {
        Ok(_) => panic!("expected errors in:\n{text}"),
        Err(d) => d,
    }
}

fn has(d: &Diagnostics, line: usize, part: &str) {
    assert!(
        d.0.iter()
            .any(|x| x.line == line && x.message.contains(part)),
        "no `{part}` at line {line} in:\n{d}"
    );
}

#[test]
fn a_generic_playbook_loads_with_its_facts_and_steps() {
    let pb =
        load_playbook(&SourceFile::new(FILE, GENERIC), &fleet()).unwrap_or_else(|d| panic!("{d}"));
    let kinds: Vec<&str> = pb.facts.iter().map(|f| f.probe.kind()).collect();
    assert_eq!(
        kinds,
        ["registry", "hotfix", "file-version", "wql", "powershell"]
    );
    assert!(
        matches!(&pb.facts[3].probe, FactProbe::Wql { namespace, .. } if namespace == "root/cimv2")
    );
    let steps = &pb.phases[0].steps;
    assert_eq!(steps[0].rule, "PATCH-1", "free-text rule ids");
    match &steps[0].action {
        ActionSpec::Powershell { script, judge } => {
            assert!(script.contains("Suspend-Thing"));
            assert_eq!(judge.expect.as_deref(), Some("State == Paused"));
            assert_eq!(judge.availability, Availability::TakesOut);
            assert_eq!(judge.ok_exit_codes, [0]);
        }
        other => panic!("{other:?}"),
    }
    match &steps[1].action {
        ActionSpec::Command { judge, .. } => {
            assert_eq!(judge.ok_exit_codes, [0, 2359302]);
            assert_eq!(judge.restart_exit_codes, [3010]);
            assert_eq!(judge.unless.as_deref(), Some("kb"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&steps[2].action, ActionSpec::WaitUntil { every: Some(e), .. } if e == "15s"));
    assert!(matches!(
        &steps[4].action,
        ActionSpec::Assert { that: Some(_) }
    ));
}

#[test]
fn conditions_read_only_declared_facts() {
    let d = errors(&GENERIC.replace("that: \"kb and ubr", "that: \"kbb and ubr"));
    has(&d, 55, "fact `kbb` is not declared under `facts:`");
    let d = errors(&GENERIC.replace("unless: kb", "unless: \"kb >\""));
    has(&d, 37, "needs a value");
}

#[test]
fn probes_that_could_inject_are_refused() {
    let d = errors(&GENERIC.replace(
        r"'HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion'",
        r#"'HKLM\x" & calc & "'"#,
    ));
    has(&d, 10, "fact `ubr`: registry key");
    let d = errors(&GENERIC.replace("hotfix: KB5034441", "hotfix: \"KB1' OR 1=1\""));
    has(&d, 11, "must be KB followed by digits");
    let d = errors(&GENERIC.replace("kb: { hotfix: KB5034441 }", "kb: { hotfix: KB1, wql: x }"));
    has(&d, 11, "exactly one probe kind");
}

#[test]
fn generic_fields_are_checked_like_any_other() {
    let d = errors(&GENERIC.replace("every: 15s", "every: soon"));
    has(&d, 44, "`every` must be a duration");
    let d = errors(&GENERIC.replace("ok_exit_codes: [0, 2359302]", "ok_exit_code: [0]"));
    has(&d, 35, "unknown field `ok_exit_code` for action `command`");
    let d = errors(&GENERIC.replace("availability: takes-out", "availability: sometimes"));
    assert!(d.to_string().contains("sometimes"), "{d}");
    let d = errors(&GENERIC.replace("rule: PATCH-3", "rule: E3-NC.9"));
    has(&d, 41, "rule `E3-NC.9` is unknown");
}

#[test]
fn a_generic_playbook_plans_with_target_expanded_facts_attached_and_declared_windows() {
    use lockstep_core::{Action, Condition, HaltClass};
    let fleet = fleet();
    let pb =
        load_playbook(&SourceFile::new(FILE, GENERIC), &fleet).unwrap_or_else(|d| panic!("{d}"));
    let plan = lockstep_plan::plan(&fleet, &pb, &lockstep_plan::PlanOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let host = plan.steps[0].host.clone();
    let mine: Vec<_> = plan.steps.iter().filter(|s| s.host == host).collect();
    let ids: Vec<&str> = mine.iter().map(|s| s.spec.as_str()).collect();
    assert_eq!(ids, ["drain", "wusa", "spooler-up", "back", "verify"]);
    // The declared window: from the drain to the step that brings the node back.
    let oos: Vec<bool> = mine.iter().map(|s| s.out_of_service).collect();
    assert_eq!(oos, [true, true, true, true, false]);
    match &mine[1].action {
        Action::Command { command, judge } => {
            assert_eq!(
                command,
                r#"wusa.exe "C:\stage\kb5034441.msu" /quiet /norestart"#
            );
            assert_eq!(judge.unless, Some(Condition::parse("kb").unwrap()));
            let names: Vec<&str> = judge.facts.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(
                names,
                ["kb"],
                "only the facts `unless` reads travel with the step"
            );
        }
        other => panic!("{other:?}"),
    }
    match &mine[4].action {
        Action::Assert { that, class, facts } => {
            assert_eq!(
                that.to_string(),
                "kb and ubr >= 5696 and exchange_build >= 6.5.7638.2",
                "`target` is the playbook's target"
            );
            assert_eq!(*class, HaltClass::VersionMismatch);
            let kinds: Vec<&str> = facts.iter().map(|f| f.probe.kind()).collect();
            assert_eq!(kinds, ["exchange-build", "hotfix", "registry"]);
        }
        other => panic!("{other:?}"),
    }
    match &mine[0].action {
        Action::Powershell { script, judge } => {
            assert!(
                script.contains(&format!("Suspend-Thing -Name '{host}'")),
                "{script}"
            );
            assert_eq!(
                judge.expect,
                Some(Condition::parse("State == Paused").unwrap())
            );
        }
        other => panic!("{other:?}"),
    }
    // Generic steps' estimates and timeouts come from their descriptors (+ a restart).
    assert_eq!(mine[1].estimate_secs, 60 + 300);
    assert_eq!(mine[1].timeout_secs, 3600);
    assert_eq!(mine[2].timeout_secs, 1800);
}

#[test]
fn serial_waves_with_a_soak_and_a_health_probe_between_them() {
    use lockstep_core::{Action, Batch, Gate};
    let fleet = fleet();
    let text = GENERIC.replace(
        "vars:\n",
        "rollout:\n  serial: [1, 10%, 50%]\n  wave_gate: { soak: 10m }\n  wave_health: \"kb and spooler == Running\"\nvars:\n",
    );
    let pb = load_playbook(&SourceFile::new(FILE, &text), &fleet).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        pb.rollout.serial,
        [Batch::Count(1), Batch::Percent(10), Batch::Percent(50)]
    );
    let plan = lockstep_plan::plan(&fleet, &pb, &lockstep_plan::PlanOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let hosts_of = |stage: usize| -> Vec<String> {
        let mut v: Vec<String> = plan
            .steps
            .iter()
            .filter(|s| s.stage == stage)
            .map(|s| s.host.to_string())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let total: usize = plan
        .stages
        .iter()
        .enumerate()
        .filter(|(_, s)| s.name.starts_with("wave-"))
        .map(|(i, _)| hosts_of(i).len())
        .sum();
    let sizes = Batch::sizes(&pb.rollout.serial, total);
    assert!(
        sizes.len() >= 2,
        "the lab has enough servers for two waves: {sizes:?}"
    );
    let mut expected_names = vec!["wave-1".to_owned()];
    for k in 2..=sizes.len() {
        expected_names.push(format!("health-before-wave-{k}"));
        expected_names.push(format!("wave-{k}"));
    }
    let names: Vec<&str> = plan.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, expected_names);
    let mut k = 0;
    for (i, st) in plan.stages.iter().enumerate() {
        if st.name.starts_with("wave-") {
            assert_eq!(hosts_of(i).len(), sizes[k], "{}", st.name);
            // The soak sits on the health stage; the wave itself starts right after the checks.
            assert_eq!(st.gate, Gate::None, "{}", st.name);
            k += 1;
        } else {
            assert_eq!(st.gate, Gate::Soak { secs: 600 });
            // Every host of the previous wave is checked, read-only, with the declared facts.
            assert_eq!(hosts_of(i), hosts_of(i - 1), "{}", st.name);
            for s in plan.steps.iter().filter(|s| s.stage == i) {
                match &s.action {
                    Action::Assert { that, facts, .. } => {
                        assert_eq!(that.to_string(), "kb and spooler == Running");
                        assert_eq!(facts.len(), 2);
                    }
                    other => panic!("{other:?}"),
                }
                assert!(!s.action.is_change() && !s.out_of_service);
            }
        }
    }
}

#[test]
fn serial_is_checked() {
    let with = |r: &str| GENERIC.replace("vars:\n", &format!("rollout:\n{r}vars:\n"));
    let d = errors(&with("  serial: [0, 150%]\n"));
    assert_eq!(
        d.0.iter()
            .filter(|x| x.message.contains("is not a count of at least 1"))
            .count(),
        2,
        "{d}"
    );
    let d = errors(&with("  wave_health: kb\n"));
    assert!(
        d.to_string().contains("`wave_health` needs `serial`"),
        "{d}"
    );
    let d = errors(&with("  serial: 2\n  wave_health: \"nope\"\n"));
    assert!(d.to_string().contains("fact `nope` is not declared"), "{d}");
    let d = errors(&with(
        "  serial: 2\n  stages: [{ name: a, sites: [\"*\"] }]\n",
    ));
    assert!(d.to_string().contains("cannot be combined"), "{d}");
}

/// A playbook for plain Windows hosts has no Exchange target: what compares with one is refused
/// at its line, and it plans onto the hosts that run no Exchange only.
#[test]
fn a_playbook_without_target_is_for_plain_windows_hosts() {
    let no_target = GENERIC.replace(
        "target:\n  product: \"2003\"\n  build: 6.5.7638.2\n  kind: hotfix\n",
        "",
    );
    let d = errors(&no_target);
    // `assert` reads `target` (line 51 once the four target lines are gone).
    has(&d, 51, "fact `target` is not declared");
    let d = errors(&no_target.replace(
        "        action: assert\n        that: \"kb and ubr >= 5696 and target\"\n",
        "        action: assert-version\n",
    ));
    has(
        &d,
        50,
        "action `assert-version` compares with the playbook's `target`",
    );
    let d = errors(&no_target.replace(
        "hosts: [exchange2003]\n",
        "hosts: [exchange2003]\nexchange: true\n",
    ));
    has(&d, 5, "`exchange: true` needs a `target`");

    // Without `target` and its reading, the playbook loads and takes no Exchange server.
    let ok = no_target
        .replace(" and target\"", "\"")
        .replace("hosts: [exchange2003]", "hosts: [all]");
    let fleet = fleet();
    let pb = load_playbook(&SourceFile::new(FILE, &ok), &fleet).unwrap_or_else(|d| panic!("{d}"));
    assert!(pb.target.is_none() && !pb.exchange);
    match lockstep_plan::plan(&fleet, &pb, &lockstep_plan::PlanOptions::default()) {
        // The lab's Exchange inventory has no plain Windows host: nothing to plan.
        Err(e) => assert!(e.to_string().contains("selects nothing to plan"), "{e}"),
        Ok(p) => panic!("planned onto Exchange servers: {:?}", p.steps.first()),
    }
}
