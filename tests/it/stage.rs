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
    let line = format!(r#"certutil -hashfile "{DEST}" SHA256"#);
    let o = exec_with(lab, &windows_lab_inventory(), HOST, &line);
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

/// `lockstep exec -i lab.yml -i overlay.yml --limit HOST -- LINE` (the built-in lab inventory).
fn exec_on(lab: &Lab, host: &str, line: &str) -> std::process::Output {
    exec_with(lab, &lab_inventory(), host, line)
}

/// `lockstep exec -i INVENTORY -i overlay.yml --limit HOST -- LINE`.
fn exec_with(lab: &Lab, inv: &std::path::Path, host: &str, line: &str) -> std::process::Output {
    lab.run(&[
        "exec",
        "-i",
        inv.to_str().unwrap(),
        "-i",
        "overlay.yml",
        "--limit",
        host,
        "--",
        line,
    ])
}

/// The KB playbooks' own releases, in the built-in lab: Server 2003 (`TYO-EXC01`, e3-nc) stages
/// with `certutil -decode` and checks SHA-1 (`certutil -hashfile` without an algorithm, which
/// is all 2003's certutil takes); Windows 2000 (`SEA-EX2K01`, e2-nc) has no certutil and stages
/// with the cscript decoder over tagged lines. In both, a `.b64` left by another package (a
/// line of the right length that resume trusts) is caught before anything is moved into place:
/// the run halts, the bad copy is deleted, and `lockstep resume` copies anew and installs the
/// service pack once, from the local copy the lab recognises by its SHA-256 (right bytes).
#[test]
fn old_releases_stage_with_their_own_tools_and_catch_a_foreign_copy() {
    let lab = Lab::start(None);
    let cases = [
        (
            "e3-nc",
            "TYO-EXC01",
            r"C:\Lockstep\packages\E2K3SP2\update.exe",
            "E2K3SP2/setup/i386/update.exe",
            // A full line of base64 that is not this package's.
            "A".repeat(6144),
        ),
        (
            "e2-nc",
            "SEA-EX2K01",
            r"C:\Lockstep\packages\E2KSP3\update.exe",
            "E2KSP3/setup/i386/update.exe",
            // Line 0 as the decoder's format has it, tagged with another package's SHA-256.
            format!("{} 0 {}", "0".repeat(16), "A".repeat(6144)),
        ),
    ];
    for (playbook, host, dest, source, stale) in &cases {
        let package = lab.path().join("overlay.packages").join(source);
        let len = std::fs::metadata(&package).unwrap().len();
        assert!(
            len > 4608,
            "{source}: more than one chunk, so the stale line is resumed"
        );
        let dir = dest.rsplit_once('\\').unwrap().0;
        let o = exec_on(&lab, host, &format!(r#"mkdir "{dir}""#));
        assert_eq!(code(&o), 0, "{}", text(&o));
        let o = exec_on(&lab, host, &format!(r#">>"{dest}.b64" echo {stale}"#));
        assert_eq!(code(&o), 0, "{}", text(&o));
        let o = lab.rollout(playbook, &["--limit", host]);
        assert_ne!(
            code(&o),
            0,
            "{playbook}: the foreign copy halts: {}",
            text(&o)
        );
        assert!(
            !lab.installs().keys().any(|(h, _)| h == host),
            "{playbook}: nothing installed"
        );
        let want = if *host == "TYO-EXC01" {
            "has SHA-1"
        } else {
            "is not this package's"
        };
        assert!(text(&o).contains(want), "{playbook}: {}", text(&o));
        let o = exec_on(
            &lab,
            host,
            &format!(r#"for %F in ("{dest}.b64") do @echo %~zF"#),
        );
        assert_eq!(code(&o), 0, "{}", text(&o));
        assert!(
            !text(&o).contains(&(stale.len() + 2).to_string()),
            "{playbook}: the bad copy was deleted: {}",
            text(&o)
        );
        let o = lab.run(&["resume", "--yes", "--soak-scale", "0"]);
        assert_eq!(code(&o), 0, "{playbook}: resume: {}", text(&o));
        assert_eq!(
            commands(&lab, host, &format!(r#""{dest}" "#)),
            1,
            "{playbook}: the service pack ran once, from the staged copy"
        );
    }
    lab.assert_each_installer_once("old releases");
    // Server 2003: certutil without an algorithm; never SHA256, never cscript.
    let hashfile = commands(&lab, "TYO-EXC01", r#"certutil -hashfile "C:\Lockstep"#);
    assert!(hashfile > 0);
    assert_eq!(commands(&lab, "TYO-EXC01", " SHA256"), 0);
    assert_eq!(commands(&lab, "TYO-EXC01", "cscript"), 0);
    // Windows 2000: no certutil at all; the decoder and its receipt.
    assert_eq!(commands(&lab, "SEA-EX2K01", "certutil -"), 0);
    assert!(commands(&lab, "SEA-EX2K01", "cscript //nologo //B") > 0);
    let o = exec_on(
        &lab,
        "SEA-EX2K01",
        r#"type "C:\Lockstep\packages\E2KSP3\update.exe.sha256""#,
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(
        text(&o).contains("26a2c2351bf236ca5236b24bb740663a9f72277b160724f4d7418c5b8c9fcd46"),
        "the receipt names the playbook's SHA-256: {}",
        text(&o)
    );
    // Again: both nodes have their package (SHA-1 on 2003, the receipt on 2000): nothing is
    // copied or installed.
    let appends = |host: &str| commands(&lab, host, ".b64\" echo ");
    let before = (appends("TYO-EXC01"), appends("SEA-EX2K01"));
    for (playbook, host, ..) in &cases {
        let o = lab.rollout(playbook, &["--limit", host]);
        assert_eq!(code(&o), 0, "{playbook} again: {}", text(&o));
    }
    assert_eq!(
        (appends("TYO-EXC01"), appends("SEA-EX2K01")),
        before,
        "no chunk sent again"
    );
    lab.assert_each_installer_once("old releases, second run");
}
