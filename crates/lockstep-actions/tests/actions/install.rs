//! Install: exit-code judgement, never installing twice, G5, G6, reboots, version check.

use lockstep_actions::render::{self as r, NS_CIMV2};
use lockstep_actions::{execute, install_verdict, probe, InstallVerdict, Outcome, Probe};
use lockstep_core::{Action, HaltClass, Name, PackageKind, Product, RebootPolicy};

use crate::scripted::*;

const SP_PKG: &str = r"\\fs01\install$\E2K3SP2\setup\i386\update.exe";
const SP_LINE: &str = r#""\\fs01\install$\E2K3SP2\setup\i386\update.exe" /q /z"#;
const HF_PKG: &str = r"\\fs01\install$\KB831464\WindowsServer2003-KB831464-x86-ENU.exe";
const HF_LINE: &str =
    r#""\\fs01\install$\KB831464\WindowsServer2003-KB831464-x86-ENU.exe" /quiet /norestart"#;
const OLD_BOOT: &str = "20261121081131.000000+060";
const NEW_BOOT: &str = "20261121093005.000000+060";

fn sp(reboot: RebootPolicy) -> Action {
    Action::Install {
        package: Name::path(SP_PKG).unwrap(),
        args: Name::args("/q /z").unwrap(),
        kind: PackageKind::ServicePack,
        prerequisite: None,
        product: Product::Exchange2003,
        target: Some(SP2.parse().unwrap()),
        reboot,
    }
}

fn hotfix() -> Action {
    Action::Install {
        package: Name::path(HF_PKG).unwrap(),
        args: Name::args("/quiet /norestart").unwrap(),
        kind: PackageKind::Hotfix,
        prerequisite: Some("KB831464".into()),
        product: Product::Exchange2003,
        target: None,
        reboot: RebootPolicy::Always,
    }
}

#[test]
fn every_exit_code_is_judged() {
    use InstallVerdict::*;
    use RebootPolicy::*;
    let cases = [
        (0, IfRequired, Installed),
        (0, Never, Installed),
        (0, Always, RebootNow),
        (3010, IfRequired, RebootNow),
        (3010, Always, RebootNow),
        (3010, Never, RebootPending),
        (1641, IfRequired, RebootStarted),
        (1641, Always, RebootStarted),
        (1641, Never, RebootStarted),
        (1603, IfRequired, Failed),
        (1618, Always, Failed),
        (1, Never, Failed),
        (-1, IfRequired, Failed),
        (3011, IfRequired, Failed),
    ];
    for (code, policy, want) in cases {
        assert_eq!(
            install_verdict(code, policy),
            want,
            "exit {code} with {policy:?}"
        );
    }
}

/// N2 at SP1 before the installer, `after` once it ran.
fn node_before_install(after: &str) -> Scripted {
    let t = Scripted::new();
    script_build(
        &t,
        N2,
        vec![reg_build(SP1, "Enterprise"), reg_build(after, "Enterprise")],
    );
    script_processes(&t, N2, &["System", "svchost.exe", "McShield.exe"]);
    t.on_run(N2, r::SC_QUERY_CLUSSVC, vec![sc(1)]);
    t
}

#[tokio::test]
async fn install_success_records_build_before_and_after() {
    // E3-CLUSTER.4
    let t = node_before_install(SP2);
    script_os(&t, N2, vec![os(OLD_BOOT)]);
    t.on_run(N2, SP_LINE, vec![ok()]);
    let f = fleet();
    let s = step(N2, sp(RebootPolicy::IfRequired));
    let o = execute(&ctx(&t, &f, &s)).await.unwrap();
    assert_eq!(t.changes(), vec![format!("PRG-N2> {SP_LINE}")]);
    assert_eq!(
        facts(&o),
        vec![
            "PRG-N2:build.before=6.5.7226.6",
            "PRG-N2:build.after=6.5.7638.2"
        ]
    );
    assert!(message(&o).contains("Version 6.5 (Build 7638.2: Service Pack 2)"));
}

#[tokio::test]
async fn never_install_twice_execute_at_target_sends_nothing() {
    let t = Scripted::new();
    script_build(&t, N2, vec![reg_build(SP2, "Enterprise")]);
    t.on_run(N2, SP_LINE, vec![ok()]);
    let f = fleet();
    let s = step(N2, sp(RebootPolicy::IfRequired));
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::Done);
    let o = execute(&ctx(&t, &f, &s)).await.unwrap();
    assert!(message(&o).contains("already at target"), "{}", message(&o));
    assert!(t.changes().is_empty(), "sent: {:?}", t.changes());
    assert!(!t.sent().iter().any(|l| l.contains("update.exe")));
}

#[tokio::test]
async fn never_install_twice_hotfix_already_listed() {
    let t = Scripted::new();
    t.on_wql(
        N2,
        NS_CIMV2,
        r::WQL_HOTFIXES,
        vec![hotfixes(&["KB824146", "kb831464"])],
    );
    let f = fleet();
    let s = step(N2, hotfix());
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::Done);
    let o = execute(&ctx(&t, &f, &s)).await.unwrap();
    assert!(message(&o).contains("already installed"));
    assert!(t.changes().is_empty());
}

#[tokio::test]
async fn install_probe_sees_a_running_installer() {
    let t = Scripted::new();
    script_build(&t, N2, vec![reg_build(SP1, "Enterprise")]);
    script_processes(&t, N2, &["System", "UPDATE.EXE"]);
    let f = fleet();
    let s = step(N2, sp(RebootPolicy::IfRequired));
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::InProgress);
    script_processes(&t, N2, &["System"]);
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::NotDone);
}

#[tokio::test]
async fn g6_a_running_setup_blocks_the_install() {
    let t = Scripted::new();
    script_build(&t, N2, vec![reg_build(SP1, "Enterprise")]);
    script_processes(&t, N2, &["System", "xcopy.exe"]);
    t.on_run(N2, r::SC_QUERY_CLUSSVC, vec![sc(1)]);
    t.on_run(N2, SP_LINE, vec![ok()]);
    let f = fleet();
    let s = step(N2, sp(RebootPolicy::IfRequired));
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::Precondition);
    assert!(
        e.message.contains("close every Setup, Update and Xcopy")
            && e.message.contains("`xcopy.exe`"),
        "{}",
        e.message
    );
    assert!(t.changes().is_empty());
}

#[tokio::test]
async fn wrong_product_line_blocks_the_install() {
    let t = Scripted::new();
    script_build(&t, N2, vec![reg_build("6.0.6249.0", "Enterprise")]);
    let f = fleet();
    let s = step(N2, sp(RebootPolicy::IfRequired));
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::Precondition);
    assert!(e.message.contains("Exchange Server 2003"), "{}", e.message);
    assert!(t.changes().is_empty());
}

#[tokio::test]
async fn g5_file_in_use_failure_is_step_failed_and_names_the_services() {
    let t = node_before_install(SP1);
    script_os(&t, N2, vec![os(OLD_BOOT)]);
    t.on_run(
        N2,
        SP_LINE,
        vec![out(1603, "Update.exe: FileInUse:: Added to Filelist: C:\\Program Files\\Exchsrvr\\bin\\store.exe\r\n")],
    );
    let f = fleet();
    let s = step(N2, sp(RebootPolicy::IfRequired));
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::StepFailed);
    assert_eq!(e.exit_code, Some(1603));
    assert!(
        e.message.contains("stop antivirus, backup"),
        "{}",
        e.message
    );
    assert!(e.output.contains("FileInUse"));
}

#[tokio::test]
async fn other_failures_do_not_blame_g5() {
    let t = node_before_install(SP1);
    script_os(&t, N2, vec![os(OLD_BOOT)]);
    t.on_run(N2, SP_LINE, vec![out(1618, "")]);
    let f = fleet();
    let s = step(N2, sp(RebootPolicy::IfRequired));
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::StepFailed);
    assert!(!e.message.contains("stop antivirus"), "{}", e.message);
    assert!(e.message.contains("1618"));
}

#[tokio::test]
async fn wrong_build_after_install_is_version_mismatch() {
    let t = node_before_install("6.5.7638.1");
    script_os(&t, N2, vec![os(OLD_BOOT)]);
    t.on_run(N2, SP_LINE, vec![ok()]);
    let f = fleet();
    let s = step(N2, sp(RebootPolicy::IfRequired));
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::VersionMismatch);
    assert!(e.message.contains("`PRG-N2`"));
    assert!(e.message.contains("Build 7638.1"), "{}", e.message);
    assert!(e
        .message
        .contains("Version 6.5 (Build 7638.2: Service Pack 2)"));
}

#[tokio::test]
async fn exit_3010_with_if_required_restarts_and_waits() {
    let t = node_before_install(SP2);
    script_os(
        &t,
        N2,
        vec![
            os(OLD_BOOT),
            os(OLD_BOOT),
            unreachable(N2),
            unreachable(N2),
            os(NEW_BOOT),
        ],
    );
    t.on_run(N2, SP_LINE, vec![out(3010, "")]);
    t.on_run(N2, r::SHUTDOWN_REBOOT, vec![ok()]);
    let f = fleet();
    let s = step(N2, sp(RebootPolicy::IfRequired));
    let o = execute(&ctx(&t, &f, &s)).await.unwrap();
    assert_eq!(
        t.changes(),
        vec![
            format!("PRG-N2> {SP_LINE}"),
            "PRG-N2> shutdown /r /t 0 /f".to_owned()
        ]
    );
    assert!(facts(&o).contains(&format!("PRG-N2:boot.time={NEW_BOOT}")));
    assert!(matches!(
        o,
        Outcome::Done {
            exit_code: Some(3010),
            ..
        }
    ));
    assert!(t.resets() >= 3);
}

#[tokio::test]
async fn exit_3010_with_never_records_a_pending_reboot() {
    let t = node_before_install(SP2);
    script_os(&t, N2, vec![os(OLD_BOOT)]);
    t.on_run(N2, SP_LINE, vec![out(3010, "")]);
    let f = fleet();
    let s = step(N2, sp(RebootPolicy::Never));
    let o = execute(&ctx(&t, &f, &s)).await.unwrap();
    assert!(facts(&o).contains(&"PRG-N2:reboot.pending=true".to_owned()));
    assert!(!t.changes().iter().any(|c| c.contains("shutdown")));
}

#[tokio::test]
async fn exit_1641_waits_for_the_restart_the_installer_started() {
    let t = node_before_install(SP2);
    script_os(&t, N2, vec![os(OLD_BOOT), unreachable(N2), os(NEW_BOOT)]);
    t.on_run(N2, SP_LINE, vec![out(1641, "")]);
    let f = fleet();
    let s = step(N2, sp(RebootPolicy::IfRequired));
    let o = execute(&ctx(&t, &f, &s)).await.unwrap();
    assert!(
        !t.changes().iter().any(|c| c.contains("shutdown")),
        "no second restart"
    );
    assert!(facts(&o).contains(&format!("PRG-N2:boot.time={NEW_BOOT}")));
}

#[tokio::test]
async fn exit_1641_and_the_node_never_returns_is_unreachable() {
    let t = node_before_install(SP2);
    script_os(&t, N2, vec![os(OLD_BOOT), unreachable(N2)]);
    t.on_run(N2, SP_LINE, vec![out(1641, "")]);
    let f = fleet();
    let s = step(N2, sp(RebootPolicy::IfRequired));
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::NodeUnreachable);
    assert!(e.message.contains("did not come back"), "{}", e.message);
}

#[tokio::test]
async fn hotfix_with_reboot_always_restarts_after_exit_0() {
    // E3-CLUSTER.1: the IIS hotfix requires a restart.
    let t = Scripted::new();
    t.on_wql(N2, NS_CIMV2, r::WQL_HOTFIXES, vec![hotfixes(&["KB824146"])]);
    script_processes(&t, N2, &["System"]);
    script_os(&t, N2, vec![os(OLD_BOOT), os(OLD_BOOT), os(NEW_BOOT)]);
    t.on_run(N2, HF_LINE, vec![ok()]);
    t.on_run(N2, r::SHUTDOWN_REBOOT, vec![ok()]);
    let f = fleet();
    let s = step(N2, hotfix());
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::NotDone);
    execute(&ctx(&t, &f, &s)).await.unwrap();
    assert_eq!(
        t.changes(),
        vec![
            format!("PRG-N2> {HF_LINE}"),
            "PRG-N2> shutdown /r /t 0 /f".to_owned()
        ]
    );
}

#[tokio::test]
async fn e3_c_no_service_pack_on_a_cluster_node_whose_cluster_service_runs() {
    let t = Scripted::new();
    script_build(&t, N2, vec![reg_build(SP1, "Enterprise")]);
    script_processes(&t, N2, &["System"]);
    t.on_run(N2, r::SC_QUERY_CLUSSVC, vec![sc(4)]);
    t.on_run(N2, SP_LINE, vec![ok()]);
    let f = fleet();
    let s = step(N2, sp(RebootPolicy::IfRequired));
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::Precondition);
    assert!(
        e.message.contains("stop it before installing"),
        "{}",
        e.message
    );
    assert!(t.changes().is_empty());
}

#[tokio::test]
async fn a_standalone_server_needs_no_cluster_service_check() {
    // E3-NC: just run it.
    let t = Scripted::new();
    script_build(
        &t,
        FE,
        vec![reg_build(SP1, "Standard"), reg_build(SP2, "Standard")],
    );
    script_processes(&t, FE, &["System"]);
    script_os(&t, FE, vec![os(OLD_BOOT)]);
    t.on_run(FE, SP_LINE, vec![ok()]);
    let f = fleet();
    let s = step(FE, sp(RebootPolicy::IfRequired));
    execute(&ctx(&t, &f, &s)).await.unwrap();
    assert!(!t.sent().iter().any(|l| l.contains("clussvc")));
}

#[tokio::test]
async fn probe_while_setup_rewrites_the_registry_is_in_progress() {
    let t = Scripted::new();
    script_build(
        &t,
        N2,
        vec![err_out(
            1,
            "ERROR: The system was unable to find the specified registry key or value.\r\n",
        )],
    );
    script_processes(&t, N2, &["System", "update.exe"]);
    let f = fleet();
    let s = step(N2, sp(RebootPolicy::IfRequired));
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::InProgress);
    // No installer and no build: Exchange is not there at all, which is an answer to halt on.
    script_processes(&t, N2, &["System"]);
    let e = probe(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::Precondition);
    assert!(e.message.contains("`PRG-N2`"));
}
