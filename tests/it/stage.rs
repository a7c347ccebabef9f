//! The double hop and package staging, against the lab over real WinRM.
//!
//! A process started in Lockstep's NTLM session cannot read `\\fs01\...` (the lab refuses it as
//! Windows does); the shipped playbooks' `stage` steps copy each package to the node in chunks,
//! verify its SHA-256, skip the copy when the node has it, continue a copy a killed controller
//! left halfway, and refuse a package whose hash is not the playbook's before sending anything.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::util::{code, lab_inventory, lockstep, text, windows_lab_inventory, Lab};

const HOST: &str = "PRG-APP01";
const DEST: &str = r"C:\Lockstep\packages\KB5037422\windows10.0-kb5037422-x64.msu";

/// Commands of the record on `host` whose line contains `needle`.
fn commands(lab: &Lab, host: &str, needle: &str) -> usize {
    lab.records()
        .iter()
        .filter(|r| {
            r["event"] == "command"
                && r["host"] == host
                && r["line"].as_str().is_some_and(|l| l.contains(needle))
        })
        .count()
}

/// The `echo` lines that appended a chunk of the staged hotfix.
fn appends(lab: &Lab) -> usize {
    commands(lab, HOST, &format!(r#">>"{DEST}.b64" echo "#))
}

/// `certutil -hashfile` of the staged file, through `lockstep exec`.
fn hash_on_node(lab: &Lab) -> String {
    let inv = windows_lab_inventory();
    let line = format!(r#"certutil -hashfile "{DEST}" SHA256"#);
    let o = lab.run(&[
        "exec",
        "-i",
        inv.to_str().unwrap(),
        "-i",
        "overlay.yml",
        "--limit",
        HOST,
        "--",
        &line,
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    text(&o)
}

fn sha256_of(path: &std::path::Path) -> String {
    Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn an_installer_on_a_share_is_access_denied_through_lockstep() {
    let lab = Lab::start(None);
    let o = lab.run(&[
        "exec",
        "-i",
        lab_inventory().to_str().unwrap(),
        "-i",
        "overlay.yml",
        "--limit",
        "TYO-EXC01",
        "--",
        r#""\\fs01\install$\E2K3SP2\setup\i386\update.exe" /q /z"#,
    ]);
    assert_ne!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("Access is denied"), "{}", text(&o));
    assert!(lab.installs().is_empty(), "no installer started");
}

#[test]
fn a_stage_step_copies_verifies_and_skips_when_present() {
    let inv = windows_lab_inventory();
    let lab = Lab::start_inventory(&inv, None);
    let package = lab
        .path()
        .join("overlay.packages/windows10.0-kb5037422-x64.msu");
    let sha = sha256_of(&package);
    let o = lab.rollout_on(&inv, "hotfix-waves", &["--limit", HOST]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let chunks = std::fs::metadata(&package).unwrap().len().div_ceil(4608) as usize;
    assert!(chunks > 1, "the stand-in takes several chunks");
    assert_eq!(appends(&lab), chunks, "each chunk sent once");
    assert!(
        hash_on_node(&lab).contains(&sha),
        "the node's copy has the playbook's hash"
    );
    // Installed from the local copy: the record shows wusa on the staged path, once.
    assert_eq!(commands(&lab, HOST, &format!(r#"wusa.exe "{DEST}""#)), 1);
    lab.assert_each_installer_once("stage");
    // Again: the node has the file (and the hotfix): nothing is copied or installed.
    let o = lab.rollout_on(&inv, "hotfix-waves", &["--limit", HOST]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(appends(&lab), chunks, "no chunk sent again");
    lab.assert_each_installer_once("stage, second run");
}

#[test]
fn a_wrong_sha256_halts_before_anything_is_sent() {
    let inv = windows_lab_inventory();
    let lab = Lab::start_inventory(&inv, None);
    let wrong = format!("hotfix_sha256={}", "0".repeat(64));
    let o = lab.rollout_on(&inv, "hotfix-waves", &["--limit", HOST, "-e", &wrong]);
    assert_ne!(code(&o), 0, "{}", text(&o));
    assert!(
        text(&o).contains("refused before anything was sent"),
        "{}",
        text(&o)
    );
    assert_eq!(
        commands(&lab, HOST, r"C:\Lockstep\packages"),
        0,
        "no command about the package reached the node"
    );
    assert!(lab.installs().is_empty());
}

/// A controller SIGKILLed halfway through a copy: the resumed run continues at the chunk the
/// node's `.b64` file ends with (no chunk is sent twice), the copy has the playbook's hash, and
/// the hotfix is installed exactly once.
#[test]
fn a_copy_killed_midway_resumes_where_the_file_ends() {
    let inv = windows_lab_inventory();
    // A large stand-in (1 MiB, 228 chunks) so that the kill lands mid-copy.
    let lab = Lab::start_inventory(
        &inv,
        Some(
            "packages:\n  - path: windows10.0-kb5037422-x64.msu\n    effect: { kind: windows-update, id: KB5037422 }\n    duration_secs: 300\n    exit_code: 3010\n    size: 1048576\n",
        ),
    );
    let package = lab
        .path()
        .join("overlay.packages/windows10.0-kb5037422-x64.msu");
    let sha = sha256_of(&package);
    let chunks = 1_048_576usize.div_ceil(4608);
    let extra = format!("hotfix_sha256={sha}");
    let mut args = Lab::run_args_on(&inv, "hotfix-waves");
    args.extend(["--limit".into(), HOST.into(), "-e".into(), extra]);
    let mut child = lockstep(lab.path())
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while appends(&lab) < 20 {
        assert!(Instant::now() < deadline, "the copy did not start");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let sent = appends(&lab);
    assert!(sent < chunks, "killed mid-copy ({sent} of {chunks})");
    let run = lab.runs()[0]["run"].as_str().unwrap().to_owned();
    let o = lab.run(&["resume", &run, "--yes", "--soak-scale", "0"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(
        appends(&lab),
        chunks,
        "the resume sent only what was missing"
    );
    assert!(hash_on_node(&lab).contains(&sha));
    lab.assert_each_installer_once("stage after a kill");
}
