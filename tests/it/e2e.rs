//! Every shipped playbook end to end on `inventory/lab.yml`, over real WinRM, with the lab's
//! invariant checker passing; operator approvals; the demo; reports.

use crate::util::{code, run, text, Lab};

/// Front-ends before back-ends for each product (E3-FB, E2-FB), then clusters and the rest.
const ORDER: [&str; 9] = [
    "e3-fb",
    "e3-cluster",
    "e3-nc",
    "e2-fb",
    "e2-active-passive",
    "e2-active-active",
    "e2-nc",
    "e5-cluster",
    "e5-nc",
];

#[test]
fn every_shipped_playbook_rolls_the_whole_lab_fleet_to_target() {
    let lab = Lab::start(None);
    for pb in ORDER {
        let o = lab.rollout(pb, &["-e", "evs_upgrade_tool=labctl evs upgrade"]);
        assert_eq!(code(&o), 0, "{pb}: {}", text(&o));
    }
    lab.assert_invariants();
    // No installer ran twice on a node (and every planned one ran).
    let installs = lab.installs();
    assert!(installs.len() > 40, "{installs:?}");
    for ((host, pkg), n) in &installs {
        assert_eq!(*n, 1, "installer `{pkg}` started {n} times on `{host}`");
    }
    let status = lab.run(&["status"]);
    let listing = String::from_utf8_lossy(&status.stdout);
    assert_eq!(
        listing.lines().filter(|l| l.contains("finished")).count(),
        9,
        "{listing}"
    );

    // Reports of the last run: Markdown for a ticket, one self-contained HTML file.
    let md = lab.run(&["report", "--format", "md"]);
    assert_eq!(code(&md), 0, "{}", text(&md));
    assert!(
        String::from_utf8_lossy(&md.stdout).contains("E5-"),
        "rule ids in the report"
    );
    let html = lab.run(&["report", "-o", "report.html"]);
    assert_eq!(code(&html), 0, "{}", text(&html));
    let page = std::fs::read_to_string(lab.path().join("report.html")).unwrap();
    assert!(page.contains("<svg"), "a timeline");
    for external in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(
            !page.contains(external),
            "loads nothing from outside: {external}"
        );
    }
}

#[test]
fn operator_steps_wait_for_approval_then_resume_continues() {
    let lab = Lab::start(None);
    let inv = crate::util::lab_inventory();
    let first = lab.run(&[
        "run",
        "-i",
        inv.to_str().unwrap(),
        "-i",
        "overlay.yml",
        "e3-nc",
        "--soak-scale",
        "0",
    ]);
    // G1: the backups are an operator confirmation.
    assert_eq!(code(&first), 4, "{}", text(&first));
    let mut waits = 1;
    let mut last = first;
    for _ in 0..40 {
        if code(&last) == 0 {
            break;
        }
        assert_eq!(code(&last), 4, "only waits on the way: {}", text(&last));
        let a = lab.run(&["approve"]);
        assert_eq!(code(&a), 0, "{}", text(&a));
        assert!(
            String::from_utf8_lossy(&a.stdout).contains("approved"),
            "{}",
            text(&a)
        );
        last = lab.run(&["resume", "--soak-scale", "0"]);
        waits += 1;
    }
    assert_eq!(
        code(&last),
        0,
        "the run ends after the approvals: {}",
        text(&last)
    );
    assert!(waits > 1);
    lab.assert_invariants();
}

#[test]
fn the_demo_rehearses_on_the_built_in_lab() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["demo", "--playbooks", "e3-nc,e5-cluster"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("0 violation"), "{out}");
    assert!(dir.path().join(".lockstep/demo-record.jsonl").exists());
}

#[test]
fn ctrl_c_stops_at_a_safe_point_and_resume_completes() {
    // Slower simulated durations, so that the interrupt lands mid-run.
    let lab = Lab::start(Some("time_scale: 0.003\n"));
    let inv = crate::util::lab_inventory();
    let child = crate::util::lockstep(lab.path())
        .args([
            "run",
            "-i",
            inv.to_str().unwrap(),
            "-i",
            "overlay.yml",
            "e3-nc",
            "--yes",
        ])
        .args(["--soak-scale", "0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the run is stored and under way (discovery happens before).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let o = lab.run(&["status", "--format", "json"]);
        let runs: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if !runs.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(700));
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "halted, resumable: {err}");
    assert!(err.contains("operator-stop"), "{err}");
    let r = lab.run(&["resume", "--yes", "--soak-scale", "0"]);
    assert_eq!(code(&r), 0, "{}", text(&r));
    lab.assert_invariants();
    lab.assert_each_installer_once("ctrl-c");
}

/// `lab verify --playbook` checks the invariants that playbook declares, citing its rule ids: a
/// back-end Exchange 2003 SP2 installer run by hand while the front-ends are at SP1 breaks
/// `tier-order` (E3-FB) on the real lab's record; `e5-cluster`, which does not declare it, passes;
/// a playbook declaring `tier-order: SITE-FB` fails citing SITE-FB; without a playbook every
/// invariant is checked (the KB's E3-FB). A bad playbook is bad input (exit 2, file and line).
#[test]
fn lab_verify_checks_the_invariants_the_playbook_declares() {
    // Run from the share, as an operator by hand would: the point is the order, not staging.
    let lab = Lab::start(Some("double_hop: allow\n"));
    let inv = crate::util::lab_inventory();
    let inv = inv.to_str().unwrap();
    let o = lab.run(&[
        "exec",
        "-i",
        inv,
        "-i",
        "overlay.yml",
        "--limit",
        "AMS-BE01",
        "--yes",
        "--",
        r#""\\fs01\install$\E2K3SP2\setup\i386\update.exe" /q"#,
    ]);
    assert!(
        lab.records()
            .iter()
            .any(|r| r["event"] == "install-started" && r["host"] == "AMS-BE01"),
        "the installer started: {}",
        text(&o)
    );
    let verify = |extra: &[&str]| {
        let mut args = vec!["lab", "verify", "record.jsonl"];
        args.extend_from_slice(extra);
        let o = lab.run(&args);
        (
            code(&o),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            text(&o),
        )
    };
    let (c, out, t) = verify(&["--playbook", "e5-cluster", "-i", inv]);
    assert_eq!(c, 0, "{t}");
    assert!(
        out.contains("0 violation(s) of the invariants `e5-cluster` declares"),
        "{t}"
    );
    let site = std::fs::read_to_string(crate::util::repo("playbooks/e3-fb.yml"))
        .unwrap()
        .replace("tier-order: E3-FB", "tier-order: SITE-FB");
    assert!(site.contains("SITE-FB"));
    std::fs::write(lab.path().join("site-fb.yml"), site).unwrap();
    let (c, out, t) = verify(&["--playbook", "site-fb.yml", "-i", inv]);
    assert_eq!(c, 1, "{t}");
    assert!(
        out.contains("[SITE-FB: tier-order]") && out.contains("AMS-BE01"),
        "{t}"
    );
    assert!(!out.contains("E3-FB"), "{t}");
    let (c, out, t) = verify(&[]);
    assert_eq!(c, 1, "{t}");
    assert!(out.contains("[E3-FB: tier-order]"), "{t}");
    std::fs::write(
        lab.path().join("bad.yml"),
        "name: bad\ninvariants: [tier-order, no-such-invariant]\nhosts: [all]\n",
    )
    .unwrap();
    let (c, _, t) = verify(&["--playbook", "bad.yml", "-i", inv]);
    assert_eq!(c, 2, "{t}");
    assert!(
        t.contains("bad.yml:2") && t.contains("no-such-invariant"),
        "{t}"
    );
}
