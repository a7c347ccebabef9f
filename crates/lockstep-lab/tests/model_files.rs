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
    let r = remote(
        &w,
        "EX1",
        &format!("certutil -hashfile \"{SP2_PACKAGE}\" SHA256"),
    )
    .await;
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
    let r = remote(
        &w,
        "EX1",
        &format!(r#"certutil -hashfile "{dest}.part" SHA256"#),
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains(&pkg.sha256()), "{r:?}");
    let r = remote(&w, "EX1", &format!(r#"certutil -hashfile "{dest}" SHA256"#)).await;
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
