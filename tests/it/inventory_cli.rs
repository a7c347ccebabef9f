//! `-e` and `--limit` as `ansible-playbook` takes them, and the rule that an inventory cannot
//! change what a playbook runs (issue 10: a host variable named `sp_package` used to replace the
//! playbook's installer).

use crate::util::{lab_inventory, run, text};

#[test]
fn inventory_variables_cannot_change_the_playbooks_commands_but_e_can() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(
        p.join("evil.yml"),
        "all:\n  hosts:\n    PRG-N1:\n      sp_package: '\\\\attacker\\share\\evil.exe'\n      sp_args: /q /z /EVIL-ARG\n",
    )
    .unwrap();
    let lab = lab_inventory().display().to_string();
    let o = run(
        p,
        &[
            "plan",
            "-i",
            &lab,
            "-i",
            "evil.yml",
            "e3-cluster",
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(
        plan.contains("update.exe"),
        "the playbook's installer is planned: {plan}"
    );
    assert!(
        !plan.contains("evil.exe") && !plan.contains("EVIL-ARG"),
        "{plan}"
    );

    // `-e` in its three forms overrides the playbook, later ones winning.
    std::fs::write(
        p.join("vars.yml"),
        "sp_args: /q /from-file\niis_hotfix_args: /from-file\n",
    )
    .unwrap();
    let o = run(
        p,
        &[
            "plan",
            "-i",
            &lab,
            "e3-cluster",
            "--format",
            "json",
            "-e",
            "@vars.yml",
            "-e",
            r#"{"sp_args": "/q /from-json"}"#,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(
        plan.contains("/q /from-json") && !plan.contains("/q /from-file"),
        "{plan}"
    );
    assert!(plan.contains("/from-file"), "{plan}");

    // Malformed `-e`: every one reported, exit 2.
    let o = run(
        p,
        &[
            "plan",
            "-i",
            &lab,
            "e3-cluster",
            "-e",
            "@missing.yml",
            "-e",
            "{not: [closed",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("missing.yml") && err.contains("given inline"),
        "{}",
        text(&o)
    );
}

#[test]
fn limit_takes_regular_expressions_and_retry_files() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let lab = lab_inventory().display().to_string();
    let hosts = |args: &[&str]| -> String {
        let mut a = vec!["plan", "-i", &lab, "e3-cluster", "--format", "json"];
        a.extend_from_slice(args);
        let o = run(p, &a);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let all = hosts(&[]);
    assert!(all.contains("PRG-N1"), "{all}");
    let re = hosts(&["--limit", "~^PRG-N[0-9]$"]);
    assert_ne!(all, re, "the regular expression selected everything");
    assert!(re.contains("PRG-N1") && re.contains("PRG-N2"), "{re}");
    assert!(
        !re.contains("SEA-") && !re.contains("AMS-") && !re.contains("PRG-FE"),
        "{re}"
    );
    std::fs::write(p.join("retry.txt"), "PRG-N1\nPRG-N2\n").unwrap();
    assert_eq!(hosts(&["--limit", "@retry.txt"]), re);

    let o = run(
        p,
        &["plan", "-i", &lab, "e3-cluster", "--limit", "~(unclosed"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a regular expression"),
        "{}",
        text(&o)
    );
}

/// `group_vars/` beside a playbook file are read by `plan`, `check` and `run` as
/// `ansible-playbook` reads them (issue 10: they were read only with `inventory --playbook-dir`);
/// their precedence is proven against `ansible-inventory --playbook-dir` by the oracle corpus
/// (`tests/inventories/24-playbook-dir-vars`).
#[test]
fn group_vars_beside_the_playbook_file_are_read() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(
        p.join("hosts.yml"),
        "all:\n  vars: {ansible_user: svc, lockstep_password_env: PW, package_root: /srv/media}\n  children:\n    \
         exchange2003:\n      children:\n        \
         seattle: {vars: {lockstep_site: {locale: en-US}}, hosts: {SEA-EX1: }}\n        \
         prague: {vars: {lockstep_site: {locale: cs-CZ}}, hosts: {PRG-EX1: }}\n        \
         milan: {vars: {lockstep_site: {locale: it-IT}}, hosts: {MIL-EX1: }}\n",
    )
    .unwrap();
    let book = std::fs::read_to_string(crate::util::repo("playbooks/e3-nc.yml")).unwrap();
    for dir in ["with", "without"] {
        std::fs::create_dir_all(p.join(dir)).unwrap();
        std::fs::write(p.join(dir).join("e3-nc.yml"), &book).unwrap();
    }
    // Only the playbook's group_vars make these hosts Exchange 2003 servers.
    std::fs::create_dir_all(p.join("with/group_vars")).unwrap();
    std::fs::write(
        p.join("with/group_vars/exchange2003.yml"),
        "exchange_version: \"2003\"\n",
    )
    .unwrap();
    let o = run(p, &["plan", "-i", "hosts.yml", "with/e3-nc.yml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(
        plan.contains("SEA-EX1") && plan.contains("MIL-EX1"),
        "{plan}"
    );
    let o = run(p, &["check", "-i", "hosts.yml", "with/e3-nc.yml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The same playbook elsewhere: no Exchange host, nothing to plan.
    let o = run(p, &["check", "-i", "hosts.yml", "without/e3-nc.yml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("selects nothing to plan"), "{}", text(&o));
}
