//! No credential appears in output, logs, the state file, the lab record or a report.

use crate::util::{code, text, Lab, LAB_PASSWORD};

#[test]
fn the_password_never_leaves_the_environment() {
    let lab = Lab::start(None);
    let inv = crate::util::lab_inventory();
    let o = lab.run(&[
        "-vv",
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
    assert!(!text(&o).contains(LAB_PASSWORD), "output and trace logs");
    let report = lab.run(&["report", "--format", "md"]);
    let html = lab.run(&["report"]);
    let status = lab.run(&["status", "--format", "json"]);
    for (what, out) in [("report", &report), ("html", &html), ("status", &status)] {
        assert_eq!(code(out), 0, "{what}: {}", text(out));
        assert!(!text(out).contains(LAB_PASSWORD), "{what}");
    }
    // Every file the run and the lab wrote (the WAL only if SQLite kept one), the run's log too.
    for must in [
        "state.db",
        "record.jsonl",
        "overlay.yml",
        "endpoints.json",
        "lab.out",
    ] {
        assert!(lab.path().join(must).exists(), "`{must}` was written");
    }
    let logs: Vec<String> = std::fs::read_dir(lab.path().join("logs"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| format!("logs/{}", e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default();
    assert!(!logs.is_empty(), "the run's log file was written");
    for f in logs.iter().map(String::as_str).chain([
        "state.db",
        "state.db-wal",
        "record.jsonl",
        "overlay.yml",
        "endpoints.json",
        "lab.out",
        "lab.err",
    ]) {
        if let Ok(bytes) = std::fs::read(lab.path().join(f)) {
            let hay = String::from_utf8_lossy(&bytes);
            assert!(!hay.contains(LAB_PASSWORD), "`{f}` holds the password");
        }
    }
}
