//! The inventory corpus (`tests/inventories/`: Ansible's documentation examples and test
//! inventories written again, and Windows estates) read by the real `ansible-inventory --list`
//! (ansible-core from PyPI) and by `lockstep inventory --list`: the same hosts, the same groups
//! with the same hosts and children, the same variables for every host.
//!
//! `.ci/run` installs ansible-core in a venv and sets `LOCKSTEP_ANSIBLE_BIN` to its `bin/`.
//! Without it the test looks on `PATH`; when neither has it, it fails under `CI=true` and is
//! skipped (with a note) on a developer machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{repo, run, text};

/// The path of an Ansible command line tool (`ansible-inventory`, `ansible-vault`), or `None`
/// outside CI when ansible-core is not installed.
#[allow(clippy::print_stderr)] // the skip must be visible in the test log
pub fn ansible_tool(tool: &str) -> Option<PathBuf> {
    let from_env = std::env::var_os("LOCKSTEP_ANSIBLE_BIN").map(|d| PathBuf::from(d).join(tool));
    let found = from_env.filter(|p| p.is_file()).or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(tool))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`{tool}` not found: CI must install ansible-core (.ci/run sets LOCKSTEP_ANSIBLE_BIN)"
        );
        #[allow(clippy::print_stderr)] // a note for a developer without Ansible, never in CI
        {
            eprintln!(
                "note: `{tool}` not found (set LOCKSTEP_ANSIBLE_BIN); Ansible oracle skipped"
            );
        }
    }
    found
}

/// An Ansible command isolated from the machine's configuration.
pub fn ansible_command(tool: &Path, home: &Path) -> Command {
    let mut c = Command::new(tool);
    c.current_dir(home)
        .env("ANSIBLE_HOME", home)
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
        .env("ANSIBLE_CONFIG", home.join("none.cfg"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "1")
        .env_remove("ANSIBLE_VAULT_PASSWORD_FILE");
    c
}

/// Groups (direct hosts in order, children as a set) and non-empty host variables.
fn normalise(v: &Value) -> Value {
    let mut groups = BTreeMap::new();
    let mut hostvars = BTreeMap::new();
    for (k, g) in v.as_object().expect("an object") {
        if k == "_meta" {
            for (h, vars) in g["hostvars"].as_object().expect("hostvars") {
                if vars.as_object().is_some_and(|m| !m.is_empty()) {
                    hostvars.insert(h.clone(), vars.clone());
                }
            }
            continue;
        }
        let mut children: Vec<String> = g["children"]
            .as_array()
            .map(|a| a.iter().map(|c| c.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        children.sort();
        groups.insert(
            k.clone(),
            serde_json::json!({"hosts": g.get("hosts").cloned().unwrap_or(Value::Null), "children": children}),
        );
    }
    serde_json::json!({"groups": groups, "hostvars": hostvars})
}

/// The `--playbook-dir` of a corpus entry: the line of its `playbook_dir.txt`, if it has one.
fn playbook_dir(entry: &Path) -> Option<PathBuf> {
    let t = std::fs::read_to_string(entry.join("playbook_dir.txt")).ok()?;
    Some(entry.join(t.trim()))
}

/// The `-i` arguments of a corpus entry: the lines of its `sources.txt`, else the entry itself.
fn sources(entry: &Path) -> Vec<PathBuf> {
    match std::fs::read_to_string(entry.join("sources.txt")) {
        Ok(t) => t
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| entry.join(l.trim()))
            .collect(),
        Err(_) => vec![entry.to_path_buf()],
    }
}

#[test]
fn the_corpus_reads_as_ansible_inventory_reads_it() {
    let Some(tool) = ansible_tool("ansible-inventory") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("tmp")).unwrap();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(repo("tests/inventories"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    assert!(
        entries.len() >= 20,
        "the corpus has {} entries",
        entries.len()
    );
    let mut failures = Vec::new();
    for entry in &entries {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        let srcs = sources(entry);
        let mut a = ansible_command(&tool, home.path());
        a.arg("--list");
        let mut l_args: Vec<String> = vec!["inventory".into(), "--list".into()];
        for s in &srcs {
            a.arg("-i").arg(s);
            l_args.push("-i".into());
            l_args.push(s.display().to_string());
        }
        if let Some(d) = playbook_dir(entry) {
            a.arg("--playbook-dir").arg(&d);
            l_args.push("--playbook-dir".into());
            l_args.push(d.display().to_string());
        }
        let ours = run(
            home.path(),
            &l_args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let theirs = a.output().expect("ansible-inventory runs");
        assert!(
            theirs.status.success(),
            "{name}: ansible-inventory failed: {}",
            String::from_utf8_lossy(&theirs.stderr)
        );
        if !ours.status.success() {
            failures.push(format!("{name}: lockstep failed\n{}", text(&ours)));
            continue;
        }
        let theirs: Value = serde_json::from_slice(&theirs.stdout).expect("ansible JSON");
        let ours: Value = serde_json::from_slice(&ours.stdout).expect("lockstep JSON");
        let (t, o) = (normalise(&theirs), normalise(&ours));
        assert!(
            !t["hostvars"].as_object().unwrap().is_empty()
                || !t["groups"].as_object().unwrap().is_empty(),
            "{name}: Ansible read nothing: the entry proves nothing"
        );
        if t != o {
            failures.push(format!(
                "{name}: differs\n--- ansible-inventory\n{}\n--- lockstep\n{}",
                serde_json::to_string_pretty(&t).unwrap(),
                serde_json::to_string_pretty(&o).unwrap()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus inventories differ:\n{}",
        failures.len(),
        entries.len(),
        failures.join("\n\n")
    );
}
