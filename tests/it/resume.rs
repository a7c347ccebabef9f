//! Resume's guards: a second controller cannot drive a run that is being driven, and a plan
//! that changed since the run started is refused unless re-planning is asked for.

use std::time::{Duration, Instant};

use crate::util::{code, text, Lab};

fn latest_run(lab: &Lab) -> Option<String> {
    let o = lab.run(&["status", "--format", "json"]);
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).ok()?;
    runs.first()?["run"].as_str().map(str::to_owned)
}

#[test]
fn a_second_controller_cannot_drive_a_run_being_driven() {
    let lab = Lab::start(Some("time_scale: 0.003\n"));
    let child = lab.spawn_rollout("e3-nc");
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        if let Some(id) = latest_run(&lab) {
            break id;
        }
        assert!(Instant::now() < deadline, "the run never appeared");
        std::thread::sleep(Duration::from_millis(50));
    };
    let second = lab.run(&["resume", &id, "--yes", "--soak-scale", "0"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "the first controller finishes");
    // Refused by the host leases the first controller holds (exit 3, nothing sent).
    assert_eq!(code(&second), 3, "{}", text(&second));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("another controller"),
        "{}",
        text(&second)
    );
    lab.assert_invariants();
}

#[test]
fn an_inventory_edit_cannot_change_a_playbook_variable_on_resume() {
    let lab = Lab::start(None);
    lab.fault("TYO-EXC01", "installer-fails", Some("1603"));
    let first = lab.rollout("e3-nc", &[]);
    assert_eq!(code(&first), 3, "{}", text(&first));
    // An inventory edit naming a playbook variable (issue 10): the playbook's `antivirus_service`
    // wins, so the plan is unchanged and resume continues without `--replan`. (A plan changed
    // by the playbook is still refused: `resume` compares plan hashes.)
    let overlay = lab.path().join("overlay.yml");
    let text_ov = std::fs::read_to_string(&overlay).unwrap();
    let edited = text_ov.replacen(
        "    TYO-EXC01:\n",
        "    TYO-EXC01:\n      antivirus_service: SophosAV\n",
        1,
    );
    assert_ne!(text_ov, edited);
    std::fs::write(&overlay, edited).unwrap();
    lab.clear("TYO-EXC01");
    let replanned = lab.run(&["resume", "--yes", "--soak-scale", "0"]);
    assert_eq!(code(&replanned), 0, "{}", text(&replanned));
    assert!(
        !text(&replanned).contains("SophosAV"),
        "{}",
        text(&replanned)
    );
    lab.assert_invariants();
    // Finished steps were kept: no installer ran twice on a host that had finished.
    let installs = lab.installs();
    assert!(
        installs.keys().any(|(h, _)| h == "TYO-EXC01"),
        "the failed host was installed: {installs:?}"
    );
    for ((host, pkg), n) in installs {
        let expected = if host == "TYO-EXC01" { 2 } else { 1 }; // failed once, then installed
        assert_eq!(n, expected, "installer `{pkg}` on `{host}`");
    }
}
