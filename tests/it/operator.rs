//! What an operator sees: the progress lines (snapshot, with times, run ids and hashes
//! filtered), the JSON event stream for other tools, and `run --check`, which changes nothing.

use crate::util::{code, lab_inventory, text, Lab};

#[test]
fn progress_lines_read_like_the_procedure() {
    let lab = Lab::start(None);
    let inv = lab_inventory();
    // One host: its chain runs in order, so the lines are deterministic.
    let o = lab.run(&[
        "run",
        "-i",
        inv.to_str().unwrap(),
        "-i",
        "overlay.yml",
        "e5-nc",
        "--yes",
        "--soak-scale",
        "0",
        "--limit",
        "SEA-EX5501",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let shown: String = err
        .lines()
        .filter(|l| !l.trim_start().starts_with("INFO") && !l.contains(" INFO "))
        .map(|l| format!("{l}\n"))
        .collect();
    insta::with_settings!({filters => vec![
        (r"(?m)^ *\d+:\d\d\.\d ", "[t] "),
        (r"r\d{8}-\d{6}-[0-9a-f]{4}", "[run]"),
        (r"plan [0-9a-f]{12}", "plan [hash]"),
        (r"state in \S+", "state in [state]"),
        (r"staged `\S+/overlay\.packages/", "staged `[lab packages]/"),
    ]}, {
        insta::assert_snapshot!("progress-e5-nc-one-host", shown);
    });
}

#[test]
fn json_output_is_one_event_per_line() {
    let lab = Lab::start(None);
    let inv = lab_inventory();
    let o = lab.run(&[
        "--output",
        "json",
        "run",
        "-i",
        inv.to_str().unwrap(),
        "-i",
        "overlay.yml",
        "e5-nc",
        "--yes",
        "--soak-scale",
        "0",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert_eq!(events.first().unwrap()["event"], "run-started");
    assert_eq!(events.last().unwrap()["event"], "run-finished");
    assert_eq!(events.last().unwrap()["status"], "finished");
    let done = events
        .iter()
        .filter(|e| e["event"] == "step" && e["state"] == "done")
        .count();
    assert_eq!(
        done as u64,
        events[0]["steps"].as_u64().unwrap(),
        "every step reported done"
    );
}

#[test]
fn check_mode_discovers_and_probes_but_changes_nothing() {
    let lab = Lab::start(None);
    let inv = lab_inventory();
    let o = lab.run(&[
        "run",
        "-i",
        inv.to_str().unwrap(),
        "-i",
        "overlay.yml",
        "e3-nc",
        "--check",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("nothing is changed"), "{out}");
    assert!(
        out.contains("update.exe\" /q /z"),
        "says the exact installer line: {out}"
    );
    assert!(out.contains("check passed"), "ran the preflight: {out}");
    assert!(lab.installs().is_empty(), "nothing installed");
    let records = lab.records();
    assert!(
        records.iter().any(|r| r["event"] == "command"),
        "the probes reached the nodes (else the next assertion proves nothing)"
    );
    let changes = records
        .into_iter()
        .filter(|r| {
            matches!(
                r["event"].as_str(),
                Some("service" | "group-moved" | "reboot-started")
            )
        })
        .count();
    assert_eq!(changes, 0, "nothing changed on any node");
    let status = lab.run(&["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("no runs"),
        "no run stored"
    );
}
