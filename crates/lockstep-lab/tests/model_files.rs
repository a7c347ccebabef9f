//! The node's files (what `stage` writes) and the double hop, driven through
//! `Backend::start_in_session` as the WinRM server starts processes.

mod model_support;

use std::collections::BTreeMap;

use base64::Engine as _;
use lockstep_core::{Fleet, FrontEndScope, Locale, Name, Product, Role, Site, WindowsRelease};
use lockstep_lab::model::{DoubleHop, LabConfig, World};
use lockstep_lab::record::RecordEvent;
use model_support::*;

const MSU: &str = r"\\fs01\updates\2024-03\windows10.0-kb5035849-x64.msu";

/// A WinRM (NTLM) session: no delegable credentials.
async fn remote(w: &World, host: &str, line: &str) -> Run {
    run_in(w, host, line, false).await
}

/// One standalone Exchange 2003 server `EX1` at SP1 and one Server 2019 `W1` without Exchange.
fn fleet() -> Fleet {
    let ex = host("EX1", "site1", Role::Standalone, Product::Exchange2003, SP1);
    let mut w1 = host("W1", "site1", Role::Standalone, Product::Exchange2003, SP1);
    w1.exchange = None;
    w1.windows = Some(WindowsRelease::Windows2019);
    Fleet {
        organisation: "Lab".to_owned(),
        sites: vec![Site {
            name: Name::ident("site1").unwrap(),
            locale: Locale::EN_US,
            description: None,
            rollout_order: None,
        }],
        hosts: vec![ex, w1],
        clusters: vec![],
        pools: vec![],
        groups: BTreeMap::new(),
        front_end_scope: FrontEndScope::Organisation,
    }
}

fn installs(w: &World) -> usize {
    w.recorder()
        .records()
        .into_iter()
        .filter(|r| matches!(r.event, RecordEvent::InstallStarted { .. }))
        .count()
}

async fn ready_for_sp(w: &World) {
    ok(w, "EX1", "net stop \"McShield\"").await;
}

#[tokio::test]
async fn an_installer_on_a_share_is_access_denied_in_a_winrm_session() {
    let w = world(&fleet(), fast());
    ready_for_sp(&w).await;
    let r = remote(&w, "EX1", &format!("\"{SP2_PACKAGE}\" /q /z")).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("Access is denied"), "{r:?}");
    let r = remote(&w, "W1", &format!("wusa.exe \"{MSU}\" /quiet /norestart")).await;
    assert_eq!(r.code, 0x8007_0005_u32 as i32, "wusa: E_ACCESSDENIED {r:?}");
    let r = remote(&w, "EX1", &format!("copy /y \"{SP2_PACKAGE}\" C:\\")).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("Access is denied"), "{r:?}");
    // (Server 2003's certutil: no algorithm argument.)
    let r = remote(&w, "EX1", &format!("certutil -hashfile \"{SP2_PACKAGE}\"")).await;
    assert_eq!(r.code, 0x8007_0005_u32 as i32, "{r:?}");
    assert_eq!(installs(&w), 0, "no installer started");
    let snap = w.snapshot();
    assert_eq!(snap.host("EX1").unwrap().build, SP1);
    assert!(snap.host("W1").unwrap().hotfixes.is_empty());
    // A session with delegable credentials (Kerberos delegation, CredSSP) reaches the share.
    let r = run_in(&w, "EX1", &format!("\"{SP2_PACKAGE}\" /q /z"), true).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(w.snapshot().host("EX1").unwrap().build, SP2);
}

#[tokio::test]
async fn double_hop_allow_rehearses_an_old_setup() {
    let w = world(
        &fleet(),
        LabConfig {
            double_hop: DoubleHop::Allow,
            ..fast()
        },
    );
    ready_for_sp(&w).await;
    let r = remote(&w, "EX1", &format!("\"{SP2_PACKAGE}\" /q /z")).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(w.snapshot().host("EX1").unwrap().build, SP2);
    let r = remote(&w, "W1", &format!("wusa.exe \"{MSU}\" /quiet /norestart")).await;
    assert_eq!(r.code, 3010, "{r:?}");
}

/// The `stage` step's command lines, as `lockstep-actions` sends them, leave the package's bytes
/// on the node; the installer run from there is the package, recognised by its SHA-256.
#[tokio::test]
async fn a_staged_copy_is_the_package_by_its_sha256() {
    let cfg = fast();
    let pkg = cfg
        .packages
        .iter()
        .find(|p| p.path.eq_ignore_ascii_case(SP2_PACKAGE))
        .unwrap()
        .clone();
    let w = world(&fleet(), cfg);
    ready_for_sp(&w).await;
    let dest = r"C:\Lockstep\packages\E2K3SP2\update.exe";
    let size = format!(r#"for %F in ("{dest}.b64") do @echo %~zF"#);
    assert_eq!(ok(&w, "EX1", &size).await.stdout.trim(), "", "no file yet");
    let r = remote(&w, "EX1", &format!(r#">>"{dest}.b64" echo QUJD"#)).await;
    assert_eq!(r.code, 1, "no directory yet: {r:?}");
    assert_eq!(
        remote(&w, "EX1", r#"mkdir "C:\Lockstep\packages\E2K3SP2""#)
            .await
            .code,
        0
    );
    assert_eq!(
        remote(&w, "EX1", r#"mkdir "C:\Lockstep\packages\E2K3SP2""#)
            .await
            .code,
        1,
        "exists"
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(pkg.contents());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(6144)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let mut len = 0;
    for l in &lines {
        let r = remote(&w, "EX1", &format!(r#">>"{dest}.b64" echo {l}"#)).await;
        assert_eq!(r.code, 0, "{r:?}");
        len += l.len() + 2;
        assert_eq!(
            remote(&w, "EX1", &size).await.stdout.trim(),
            len.to_string(),
            "CR LF after each line"
        );
    }
    let r = remote(
        &w,
        "EX1",
        &format!(r#"certutil -f -decode "{dest}.b64" "{dest}.part""#),
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    let r = remote(&w, "EX1", &format!(r#"certutil -hashfile "{dest}.part""#)).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        lockstep_actions::stage::sha1_in(&r.stdout),
        Some(sha1_hex(&pkg.contents())),
        "Server 2003: SHA-1 {r:?}"
    );
    let r = remote(&w, "EX1", &format!(r#"certutil -hashfile "{dest}""#)).await;
    assert_eq!(r.code, 0x8007_0002_u32 as i32, "not in place yet: {r:?}");
    let r = remote(&w, "EX1", &format!(r#"move /y "{dest}.part" "{dest}""#)).await;
    assert_eq!(r.code, 0, "{r:?}");
    let r = remote(
        &w,
        "EX1",
        &format!(r#"del /f /q "{dest}.b64" "{dest}.part""#),
    )
    .await;
    assert_eq!(r.code, 0, "del exits 0 even for a missing file: {r:?}");
    let snap = w.snapshot();
    let files = &snap.host("EX1").unwrap().files;
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[dest].sha256, pkg.sha256());
    assert_eq!(files[dest].length, pkg.contents().len() as u64);
    // Installed from the local copy in a WinRM session: no share, no double hop.
    let r = remote(&w, "EX1", &format!("\"{dest}\" /q /z")).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(w.snapshot().host("EX1").unwrap().build, SP2);
    assert_eq!(installs(&w), 1);
}

#[tokio::test]
async fn a_local_file_with_other_bytes_is_no_package() {
    let w = world(&fleet(), fast());
    ready_for_sp(&w).await;
    remote(&w, "EX1", r#"mkdir "C:\x""#).await;
    remote(&w, "EX1", r#">"C:\x\update.exe" echo not the service pack"#).await;
    let r = remote(&w, "EX1", r#""C:\x\update.exe" /q"#).await;
    assert_ne!(r.code, 0, "{r:?}");
    let r = remote(&w, "EX1", r#""C:\nowhere\update.exe" /q"#).await;
    assert_ne!(r.code, 0, "{r:?}");
    assert_eq!(installs(&w), 0);
    assert_eq!(w.snapshot().host("EX1").unwrap().build, SP1);
    let r = remote(&w, "EX1", &format!("echo {}", "A".repeat(8200))).await;
    assert_eq!(r.code, 1, "cmd's 8,191-character limit");
}

fn sha1_hex(bytes: &[u8]) -> String {
    use sha1::Digest as _;
    sha1::Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `EX1` (Server 2003), `W1` (2019), `W2K` (Windows 2000) and `NT4` (NT 4.0), no Exchange on
/// the last two.
fn releases_fleet() -> Fleet {
    let mut f = fleet();
    for (name, r) in [
        ("W2K", WindowsRelease::Windows2000),
        ("NT4", WindowsRelease::Nt4),
    ] {
        let mut h = host(name, "site1", Role::Standalone, Product::Exchange2003, SP1);
        h.exchange = None;
        h.windows = Some(r);
        f.hosts.push(h);
    }
    f
}

/// certutil as each release has it: SHA-256 on request from Server 2008 R2 on; Server 2003
/// takes no algorithm and prints SHA-1 with its bytes spaced; Windows 2000 and NT 4.0 have no
/// certutil at all (cmd's 9009).
#[tokio::test]
async fn each_release_hashes_as_its_certutil_does() {
    let w = world(&releases_fleet(), fast());
    let text = b"lockstep\r\n";
    for host in ["EX1", "W1", "W2K", "NT4"] {
        ok(&w, host, r#"mkdir "C:\x""#).await;
        ok(&w, host, r#">"C:\x\f.txt" echo lockstep"#).await;
        assert_eq!(
            ok(&w, host, r#"type "C:\x\f.txt""#).await.stdout,
            "lockstep\r\n"
        );
    }
    let sha256 = lockstep_actions::stage::sha256_hex(text);
    let sha1 = sha1_hex(text);
    // Server 2019.
    let r = remote(&w, "W1", r#"certutil -hashfile "C:\x\f.txt" SHA256"#).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        lockstep_actions::stage::hash_in(&r.stdout),
        Some(sha256.clone())
    );
    let r = remote(&w, "W1", r#"certutil -hashfile "C:\x\f.txt""#).await;
    assert_eq!(
        lockstep_actions::stage::sha1_in(&r.stdout),
        Some(sha1.clone()),
        "{r:?}"
    );
    // Server 2003: an algorithm is a usage error; the default is SHA-1, bytes spaced.
    let r = remote(&w, "EX1", r#"certutil -hashfile "C:\x\f.txt" SHA256"#).await;
    assert_eq!(r.code, 0x8007_00a0_u32 as i32, "{r:?}");
    assert_eq!(lockstep_actions::stage::hash_in(&r.stdout), None);
    let r = remote(&w, "EX1", r#"certutil -hashfile "C:\x\f.txt""#).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        lockstep_actions::stage::sha1_in(&r.stdout),
        Some(sha1.clone())
    );
    let spaced: Vec<&str> = (0..20).map(|i| &sha1[2 * i..2 * i + 2]).collect();
    assert!(r.stdout.contains(&spaced.join(" ")), "bytes spaced: {r:?}");
    assert_eq!(lockstep_actions::stage::hash_in(&r.stdout), None);
    // certutil -decode works on 2003.
    ok(&w, "EX1", r#">"C:\x\f.b64" echo bG9ja3N0ZXAK"#).await;
    let r = remote(&w, "EX1", r#"certutil -f -decode "C:\x\f.b64" "C:\x\g""#).await;
    assert_eq!(r.code, 0, "{r:?}");
    // Windows 2000 and NT 4.0: no certutil.
    for host in ["W2K", "NT4"] {
        for line in [
            r#"certutil -hashfile "C:\x\f.txt" SHA256"#,
            r#"certutil -f -decode "C:\x\f.b64" "C:\x\g""#,
        ] {
            let r = remote(&w, host, line).await;
            assert_eq!(r.code, 9009, "{host}: {r:?}");
            assert!(
                r.stderr
                    .starts_with("'certutil' is not recognized as an internal or external command"),
                "{host}: {r:?}"
            );
        }
    }
}

/// The `stage` commands `lockstep-actions` emits for Windows 2000 / NT 4.0 (tagged lines, the
/// VBScript written with `echo`, cscript) leave the package's bytes on the node; the script
/// refuses a line of another package, a missing line, a wrong length, and the lab runs no other
/// script.
#[tokio::test]
async fn the_staging_script_decodes_on_windows_2000_and_nt4() {
    use lockstep_actions::stage::{Digests, StageLines, StageTools};
    let w = world(&releases_fleet(), fast());
    let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 256) as u8).collect();
    let d = Digests::of(&bytes);
    let dest = Name::new(
        lockstep_core::NameKind::Path,
        r"C:\Lockstep\packages\p\p.exe",
    )
    .unwrap();
    let l = StageLines::with_tools(&dest, StageTools::Script);
    let lines = l.lines(&bytes, &d);
    assert_eq!(lines.len(), 3);
    for host in ["W2K", "NT4"] {
        remote(&w, host, &l.mkdir().unwrap()).await;
        for line in &lines {
            assert_eq!(remote(&w, host, &l.append(line)).await.code, 0);
        }
        for line in l.write_script() {
            assert_eq!(remote(&w, host, &line).await.code, 0, "{line}");
        }
        let r = remote(&w, host, &l.run_script(&d, lines.len())).await;
        assert_eq!((r.code, r.stdout.trim()), (0, "10000"), "{host}: {r:?}");
        ok(&w, host, &l.install()).await;
        ok(&w, host, &l.write_receipt(&d)).await;
        let r = ok(&w, host, &l.read_receipt()).await;
        assert_eq!(
            lockstep_actions::stage::receipt_in(&r.stdout),
            Some((d.sha256.clone(), 10_000))
        );
        let snap = w.snapshot();
        let f = &snap.host(host).unwrap().files[dest.as_str()];
        assert_eq!((f.sha256.as_str(), f.length), (d.sha256.as_str(), 10_000));
    }
    let host = "W2K";
    let run = l.run_script(&d, lines.len());
    // Wrong length given: 7. Wrong line count: 5.
    let r = remote(&w, host, &run.replace(" 10000", " 9999")).await;
    assert_eq!(r.code, 7, "{r:?}");
    let r = remote(&w, host, &run.replace(" 3 10000", " 4 10000")).await;
    assert_eq!(r.code, 5, "{r:?}");
    // A `.b64` that starts with another package's line (a stale copy): 5.
    let other = Digests::of(b"another package");
    let stale = l.lines(&bytes, &other);
    ok(&w, host, &l.clean()).await;
    for line in l.write_script() {
        ok(&w, host, &line).await;
    }
    ok(&w, host, &l.append(&stale[0])).await;
    for line in &lines[1..] {
        ok(&w, host, &l.append(line)).await;
    }
    let r = remote(&w, host, &run).await;
    assert_eq!(r.code, 5, "{r:?}");
    // A missing line: 5.
    ok(&w, host, &l.clean()).await;
    for line in l.write_script() {
        ok(&w, host, &line).await;
    }
    ok(&w, host, &l.append(&lines[0])).await;
    ok(&w, host, &l.append(&lines[2])).await;
    assert_eq!(remote(&w, host, &run).await.code, 5);
    // Another script is not run.
    ok(
        &w,
        host,
        r#">"C:\Lockstep\packages\p\p.exe.vbs" echo WScript.Quit 0"#,
    )
    .await;
    let r = remote(&w, host, &run).await;
    assert_eq!(r.code, 1, "{r:?}");
}
