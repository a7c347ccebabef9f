//! Bad input: a clear error naming file, line, column and value, every error at once, exit 2,
//! nothing planned or run. And the read-only commands on good input.

use crate::util::{code, lab_inventory, repo, run, text};

fn write(dir: &std::path::Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

#[test]
fn every_shipped_playbook_checks_on_the_lab_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let inv = lab_inventory();
    let o = run(dir.path(), &["check", "-i", inv.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(
        o.stdout.is_empty(),
        "check prints nothing on success: {}",
        text(&o)
    );
}

#[test]
fn malformed_yaml_is_reported_with_its_position_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let inv = write(
        dir.path(),
        "bad.yml",
        "all:\n  hosts:\n    PRG-EX01: {ansible_host: a\n    PRG-EX02:\n",
    );
    let o = run(dir.path(), &["plan", "-i", &inv, "e3-nc"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.yml:"), "names the file: {err}");
    assert!(
        err.lines().any(|l| l.contains("bad.yml:")
            && l.split(':')
                .nth(1)
                .is_some_and(|n| n.parse::<u32>().is_ok())),
        "names the line: {err}"
    );
    assert!(o.stdout.is_empty(), "nothing planned: {}", text(&o));
    assert!(!dir.path().join("state.db").exists(), "no state written");
}

#[test]
fn hostile_names_and_inline_passwords_are_all_refused_together() {
    let dir = tempfile::tempdir().unwrap();
    let inv = write(
        dir.path(),
        "hostile.yml",
        r#"all:
  vars:
    lockstep_password_env: LOCKSTEP_PASSWORD
  children:
    prague:
      vars:
        lockstep_site: { locale: cs-CZ }
        exchange_version: "2003"
      hosts:
        PRG-EX01:
          exchange_role: standalone
          ansible_password: Sup3rS3cret-Inline
        "PRG&calc":
          exchange_role: standalone
    evil:
      hosts:
        PRG-EX01:
      vars:
        lockstep_cluster:
          name: EVILCL
          mode: active-passive
          cluster_group: { name: "Cluster Group", owner: PRG-EX01 }
          virtual_servers:
            - { name: EVS1, group: 'EVS1" & del c:\*', owner: PRG-EX01 }
"#,
    );
    let o = run(dir.path(), &["plan", "-i", &inv, "e3-nc"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("PRG&calc"), "names the hostile host: {err}");
    assert!(err.contains("del c:"), "names the hostile group: {err}");
    assert!(
        err.to_lowercase().contains("password"),
        "refuses the inline password: {err}"
    );
    assert!(
        !err.contains("Sup3rS3cret-Inline"),
        "never echoes a password: {err}"
    );
    let lines = err.lines().filter(|l| l.contains("hostile.yml:")).count();
    assert!(
        lines >= 3,
        "every error at once, each with its position: {err}"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn a_stage_naming_an_unknown_site_is_refused_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let text_pb = std::fs::read_to_string(repo("playbooks/e3-nc.yml"))
        .unwrap()
        .replace(
            "{ name: canary, sites: 1 }",
            "{ name: canary, sites: [atlantis] }",
        );
    let pb = write(dir.path(), "e3-nc-bad.yml", &text_pb);
    let inv = lab_inventory();
    let o = run(dir.path(), &["check", "-i", inv.to_str().unwrap(), &pb]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("e3-nc-bad.yml:") && err.contains("atlantis"),
        "{err}"
    );
}

#[test]
fn an_unknown_playbook_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["plan", "no-such-procedure"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("e3-cluster"),
        "lists the built-in ones"
    );
}

#[test]
fn plans_are_deterministic_and_machine_readable() {
    let dir = tempfile::tempdir().unwrap();
    let a = run(dir.path(), &["plan", "e3-cluster", "--format", "json"]);
    let b = run(dir.path(), &["plan", "e3-cluster", "--format", "json"]);
    assert_eq!(code(&a), 0, "{}", text(&a));
    assert_eq!(a.stdout, b.stdout, "same inputs, same plan");
    let plan: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(plan["hash"].as_str().unwrap().len(), 64);
    let steps = plan["steps"].as_array().unwrap();
    assert!(steps
        .iter()
        .all(|s| s["rule"].as_str().is_some_and(|r| !r.is_empty())));
}

#[test]
fn completions_and_man_page_come_from_the_clap_definitions() {
    let dir = tempfile::tempdir().unwrap();
    // The completion script calls the binary back, which completes from the clap definitions.
    let c = run(dir.path(), &["completions", "bash"]);
    assert_eq!(code(&c), 0);
    assert!(String::from_utf8_lossy(&c.stdout).contains("COMPLETE=\"bash\""));
    let words = crate::util::lockstep(dir.path())
        .env("COMPLETE", "fish")
        .args(["--", "lockstep", "re"])
        .output()
        .unwrap();
    let words = String::from_utf8_lossy(&words.stdout);
    assert!(
        words.lines().any(|l| l.starts_with("resume"))
            && words.lines().any(|l| l.starts_with("report")),
        "{words}"
    );
    let m = run(dir.path(), &["man"]);
    assert_eq!(code(&m), 0);
    assert!(
        String::from_utf8_lossy(&m.stdout).starts_with(".ie")
            || String::from_utf8_lossy(&m.stdout).contains(".TH")
    );
}

/// The settings stage refuses what clap's types let through (a negative or infinite factor, a
/// malformed `--vault-id`), all at once, before any state, lab or host is touched.
#[test]
fn bad_factors_are_refused_together_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        dir.path(),
        &[
            "--vault-id",
            "@nothing",
            "run",
            "e3-cluster",
            "--soak-scale=-1",
        ],
    );
    assert_eq!(code(&o), 2, "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("`--soak-scale -1`"), "{err}");
    assert!(err.contains("`--vault-id @nothing`"), "all at once: {err}");
    assert!(!dir.path().join("state.db").exists(), "no state written");
    for args in [
        &["demo", "--time-scale=0"][..],
        &["lab", "--time-scale=inf"][..],
        &["resume", "--soak-scale=NaN"][..],
    ] {
        let o = run(dir.path(), args);
        assert_eq!(code(&o), 2, "{args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("-scale"),
            "{args:?}: {}",
            text(&o)
        );
    }
}
