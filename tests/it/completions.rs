//! Shell completions (issue 11, operator's view): the script `lockstep completions SHELL` prints
//! calls the binary back, which offers the built-in playbooks, the playbook files at hand and
//! the run ids of the state file, and never creates a state file to do so.

use std::path::Path;

use crate::util::{code, lockstep, text, Lab};

/// The words fish is offered when completing `words` (the last one being typed).
fn complete(dir: &Path, words: &[&str]) -> Vec<String> {
    let o = lockstep(dir)
        .env("COMPLETE", "fish")
        .arg("--")
        .arg("lockstep")
        .args(words)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn completions_offer_playbooks_and_run_ids() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // The registration script calls `lockstep` back with the shell's variable.
    for shell in ["bash", "zsh", "fish"] {
        let o = lockstep(d).args(["completions", shell]).output().unwrap();
        assert_eq!(code(&o), 0, "{}", text(&o));
        let script = String::from_utf8_lossy(&o.stdout);
        assert!(
            script.contains("COMPLETE") && script.contains("lockstep"),
            "{shell}: {script}"
        );
    }

    // Playbooks: the built-in ones and the YAML files here and in playbooks/.
    std::fs::write(d.join("monthly.yml"), "name: monthly\n").unwrap();
    std::fs::create_dir(d.join("playbooks")).unwrap();
    std::fs::write(d.join("playbooks/cu.yaml"), "name: cu\n").unwrap();
    std::fs::write(d.join("notes.txt"), "").unwrap();
    let offered = complete(d, &["plan", ""]);
    for want in [
        "e3-cluster",
        "e5-nc",
        "cau-cluster",
        "monthly.yml",
        "playbooks/cu.yaml",
    ] {
        assert!(offered.iter().any(|o| o == want), "{want}: {offered:?}");
    }
    assert!(!offered.iter().any(|o| o.contains("notes")), "{offered:?}");
    let e3 = complete(d, &["run", "e3-"]);
    assert!(
        !e3.is_empty() && e3.iter().all(|o| o.starts_with("e3-")),
        "{e3:?}"
    );
    let facts = complete(d, &["facts", "--playbook", "e2-"]);
    assert!(facts.iter().any(|o| o == "e2-nc"), "{facts:?}");

    // No state file: no run ids, and none is created.
    assert!(complete(d, &["status", ""])
        .iter()
        .all(|o| !o.starts_with('r')));
    assert!(
        !d.join("state.db").exists(),
        "a completion created the state file"
    );

    // The run ids of the state file: two real runs on the lab.
    let lab = Lab::start(None);
    for _ in 0..2 {
        let o = lab.rollout("e5-nc", &[]);
        assert_eq!(code(&o), 0, "{}", text(&o));
    }
    let listed = lab.run(&["status", "--format", "json"]);
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    let ids: Vec<String> = runs
        .iter()
        .map(|r| r["run"].as_str().or(r["id"].as_str()).unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{runs:?}");
    let d = lab.path();
    for cmd in ["status", "resume", "approve", "report"] {
        let offered = complete(d, &[cmd, ""]);
        for id in &ids {
            assert!(offered.contains(id), "{cmd} {id}: {offered:?}");
        }
    }
}
