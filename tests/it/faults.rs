//! Each lab fault yields the right halt class, with the state intact (exit 3, `status` says
//! where), and a resumed run completes once the fault is fixed.

use crate::util::{code, text, Lab};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Rolls `first` (clean), then: fault, rollout (halts with `class`), clear, resume (completes),
/// invariants.
fn halts_then_resumes(
    first: &[&str],
    playbook: &str,
    extra: &[&str],
    faults: &[(&str, &str, Option<&str>)],
    class: &str,
) {
    let lab = Lab::start(None);
    for pb in first {
        let o = lab.rollout(pb, &[]);
        assert_eq!(code(&o), 0, "{pb}: {}", text(&o));
    }
    for (host, kind, arg) in faults {
        lab.fault(host, kind, *arg);
    }
    let o = lab.rollout(playbook, extra);
    assert_eq!(code(&o), 3, "halts: {}", text(&o));
    assert!(
        stderr(&o).contains(&format!("({class})")),
        "class {class}: {}",
        text(&o)
    );
    let status = lab.run(&["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("halted"),
        "{}",
        text(&status)
    );
    for (host, _, _) in faults {
        lab.clear(host);
    }
    let r = lab.run(&["resume", "--yes", "--soak-scale", "0"]);
    assert_eq!(code(&r), 0, "resumes to the end: {}", text(&r));
    lab.assert_invariants();
}

#[test]
fn a_failing_installer_halts_step_failed() {
    halts_then_resumes(
        &[],
        "e3-nc",
        &[],
        &[("TYO-EXC01", "installer-fails", Some("1603"))],
        "step-failed",
    );
}

#[test]
fn a_wrong_build_after_install_halts_version_mismatch() {
    halts_then_resumes(
        &[],
        "e3-nc",
        &[],
        &[(
            "TYO-EXC01",
            "wrong-version-after-install",
            Some("6.5.7226.6"),
        )],
        "version-mismatch",
    );
}

#[test]
fn a_node_that_refuses_connections_halts_node_unreachable() {
    halts_then_resumes(
        &[],
        "e3-nc",
        &["--no-discovery"],
        &[("TYO-EXC01", "refuse", None)],
        "node-unreachable",
    );
}

#[test]
fn a_cluster_service_that_will_not_start_halts_step_failed() {
    // Front-ends first (E3-FB): the engine refuses a back-end install before.
    halts_then_resumes(
        &["e3-fb"],
        "e3-cluster",
        &[
            "--limit",
            "SEACL1",
            "-e",
            "evs_upgrade_tool=labctl evs upgrade",
        ],
        &[("SEA-N2", "cluster-service-fails-to-start", None)],
        "step-failed",
    );
}

#[test]
fn a_group_that_will_not_move_halts_step_failed() {
    // Front-ends first (E3-FB): the engine refuses a back-end install before.
    halts_then_resumes(
        &["e3-fb"],
        "e3-cluster",
        &[
            "--limit",
            "SEACL1",
            "-e",
            "evs_upgrade_tool=labctl evs upgrade",
        ],
        &[
            ("SEA-N1", "group-move-fails", Some("SEAEVS1 Group")),
            ("SEA-N2", "group-move-fails", Some("SEAEVS1 Group")),
        ],
        "step-failed",
    );
}

#[test]
fn http_500_halts_node_unreachable_or_step_failed_and_resumes() {
    let lab = Lab::start(None);
    lab.fault("TYO-EXC01", "http500", None);
    let o = lab.rollout("e3-nc", &["--no-discovery"]);
    assert_eq!(code(&o), 3, "{}", text(&o));
    lab.clear("TYO-EXC01");
    let r = lab.run(&["resume", "--yes", "--soak-scale", "0"]);
    assert_eq!(code(&r), 0, "{}", text(&r));
    lab.assert_invariants();
}

#[test]
fn slow_responses_and_a_dropped_receive_do_not_lose_or_repeat_work() {
    let lab = Lab::start(None);
    lab.fault("TYO-EXC01", "slow", Some("200"));
    lab.fault("OSA-SBS01", "drop-mid-receive", None);
    let mut o = lab.rollout("e3-nc", &[]);
    // A dropped connection halts (node-unreachable): before the run if discovery met it, else
    // mid-run; running again (or resuming) finishes, the fault being one-shot.
    for _ in 0..3 {
        if code(&o) == 0 {
            break;
        }
        assert_eq!(code(&o), 3, "{}", text(&o));
        assert!(stderr(&o).contains("node-unreachable"), "{}", text(&o));
        let listed = lab.run(&["status", "--format", "json"]);
        let runs: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
        o = if runs.is_empty() {
            lab.rollout("e3-nc", &[])
        } else {
            lab.run(&["resume", "--yes", "--soak-scale", "0"])
        };
    }
    assert_eq!(code(&o), 0, "{}", text(&o));
    lab.assert_invariants();
    lab.assert_each_installer_once("slow and dropped");
}

#[test]
fn an_unreachable_node_halts_before_anything_changes() {
    let lab = Lab::start(None);
    lab.fault("TYO-EXC01", "refuse", None);
    let o = lab.rollout("e3-nc", &[]);
    assert_eq!(code(&o), 3, "{}", text(&o));
    assert!(stderr(&o).contains("TYO-EXC01"), "{}", text(&o));
    assert!(lab.installs().is_empty(), "nothing was installed");
}
