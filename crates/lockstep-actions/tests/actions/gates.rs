//! AssertVersion (E3-CLUSTER.18), Preflight (G5, G6, E2-ED), Confirm (G1), NLB (E3-LB).

use lockstep_actions::render::{self as r, NS_CIMV2};
use lockstep_actions::{edition_allowed, execute, probe, Outcome, Probe};
use lockstep_core::{Action, Edition, HaltClass, PreflightCheck, Product};

use crate::scripted::*;

#[tokio::test]
async fn assert_version_equal_records_build_after() {
    let t = Scripted::new();
    script_build(&t, N1, vec![reg_build(SP2, "Enterprise")]);
    let f = fleet();
    let s = step(
        N1,
        Action::AssertVersion {
            product: Product::Exchange2003,
            expected: SP2.parse().unwrap(),
        },
    );
    let o = execute(&ctx(&t, &f, &s)).await.unwrap();
    assert_eq!(facts(&o), vec!["PRG-N1:build.after=6.5.7638.2"]);
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::Done);
}

#[tokio::test]
async fn assert_version_mismatch_names_host_found_and_expected() {
    let t = Scripted::new();
    script_build(&t, N1, vec![reg_build(SP1, "Enterprise")]);
    let f = fleet();
    let s = step(
        N1,
        Action::AssertVersion {
            product: Product::Exchange2003,
            expected: SP2.parse().unwrap(),
        },
    );
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::VersionMismatch);
    assert_eq!(
        e.message,
        "host `PRG-N1` runs Version 6.5 (Build 7226.6: Service Pack 1), expected Version 6.5 (Build 7638.2: Service Pack 2)"
    );
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::NotDone);
}

fn preflight(checks: Vec<PreflightCheck>, editions: Vec<Edition>) -> Action {
    Action::Preflight {
        checks,
        editions,
        product: Some(Product::Exchange2003),
    }
}

fn all_checks() -> Vec<PreflightCheck> {
    vec![
        PreflightCheck::ProductMatches,
        PreflightCheck::EditionMatches,
        PreflightCheck::NoProcesses {
            images: vec!["setup.exe".into(), "update.exe".into(), "xcopy.exe".into()],
        },
        PreflightCheck::NoPendingReboot,
        PreflightCheck::ClusterServiceRunning,
        PreflightCheck::ServicesStopped {
            services: vec!["McShield".into()],
        },
    ]
}

fn healthy_node(t: &Scripted, edition: &str) {
    script_build(t, N1, vec![reg_build(SP1, edition)]);
    script_processes(t, N1, &["System", "svchost.exe"]);
    t.on_run(
        N1,
        r::REG_PENDING_REBOOT,
        vec![err_out(
            1,
            "ERROR: The system was unable to find the specified registry key or value.\r\n",
        )],
    );
    t.on_run(N1, r::SC_QUERY_CLUSSVC, vec![sc(4)]);
    t.on_run(N1, "sc query \"McShield\"", vec![sc(1)]);
}

#[tokio::test]
async fn preflight_passes_on_a_healthy_node() {
    let t = Scripted::new();
    healthy_node(&t, "Enterprise");
    let f = fleet();
    let s = step(
        N1,
        preflight(all_checks(), vec![Edition::Standard, Edition::Enterprise]),
    );
    let o = execute(&ctx(&t, &f, &s)).await.unwrap();
    assert!(message(&o).contains("preflight passed"));
    assert!(t.changes().is_empty(), "preflight changes nothing");
}

#[tokio::test]
async fn preflight_collects_every_failure_into_one_precondition() {
    let t = Scripted::new();
    healthy_node(&t, "Enterprise");
    script_processes(&t, N1, &["System", "Setup.exe"]);
    t.on_run(N1, "sc query \"McShield\"", vec![sc(4)]);
    t.on_run(N1, r::REG_PENDING_REBOOT, vec![ok()]);
    t.on_run(N1, r::SC_QUERY_CLUSSVC, vec![sc(1)]);
    let f = fleet();
    let s = step(N1, preflight(all_checks(), vec![]));
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::Precondition);
    // Each failure in words; the rule ids are the step's own (`rule:`), which progress shows.
    for part in [
        "close every Setup, Update and Xcopy",
        "`Setup.exe`",
        "stop it before installing",
        "`McShield`",
        "restart is pending",
        "Cluster service",
    ] {
        assert!(e.message.contains(part), "missing {part}: {}", e.message);
    }
}

#[tokio::test]
async fn preflight_edition_mismatch_is_version_mismatch() {
    // E2-ED: the Conferencing Server service pack is not the Standard/Enterprise one.
    let t = Scripted::new();
    healthy_node(&t, "Conferencing");
    let f = fleet();
    let s = step(N1, preflight(vec![PreflightCheck::EditionMatches], vec![]));
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::VersionMismatch);
    assert!(
        e.message.contains("the package is for") && e.message.contains("Conferencing"),
        "{}",
        e.message
    );
}

#[test]
fn editions() {
    assert!(edition_allowed(Edition::Standard, &[]));
    assert!(!edition_allowed(Edition::Conferencing, &[]));
    assert!(edition_allowed(
        Edition::Conferencing,
        &[Edition::Conferencing]
    ));
    assert!(!edition_allowed(
        Edition::SmallBusiness,
        &[Edition::Enterprise]
    ));
}

#[tokio::test]
async fn preflight_wrong_product_is_a_precondition() {
    let t = Scripted::new();
    script_build(&t, N1, vec![reg_build("6.0.6249.0", "Enterprise")]);
    let f = fleet();
    let s = step(N1, preflight(vec![PreflightCheck::ProductMatches], vec![]));
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::Precondition);
    assert!(e.message.contains("Exchange Server 2003"));
}

#[tokio::test]
async fn confirm_without_command_waits_with_command_judges_exit() {
    // G1: backups before a service pack.
    let f = fleet();
    let t = Scripted::new();
    let s = step(
        N1,
        Action::Confirm {
            message: "Take a full backup".into(),
            command: None,
        },
    );
    assert_eq!(
        execute(&ctx(&t, &f, &s)).await.unwrap(),
        Outcome::Waiting {
            instructions: "Take a full backup".into()
        }
    );
    assert!(t.sent().is_empty());

    let s = step(
        N1,
        Action::Confirm {
            message: "Backup taken today".into(),
            command: Some("C:\\ops\\check-backup.cmd".into()),
        },
    );
    t.on_run(
        N1,
        "C:\\ops\\check-backup.cmd",
        vec![out(1, "no backup since 2026-11-19\r\n")],
    );
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::Precondition);
    assert_eq!(e.exit_code, Some(1));
    t.on_run(N1, "C:\\ops\\check-backup.cmd", vec![ok()]);
    assert!(matches!(
        execute(&ctx(&t, &f, &s)).await.unwrap(),
        Outcome::Done {
            exit_code: Some(0),
            ..
        }
    ));
}

#[tokio::test]
async fn nlb_drain_and_start_are_judged_by_wlbs_query_exit_codes() {
    // E3-LB
    let f = fleet();
    let t = Scripted::new();
    t.on_run(
        FE,
        r::WLBS_QUERY,
        vec![out(1005, ""), out(1005, ""), out(1007, "")],
    );
    t.on_run(FE, r::WLBS_DRAINSTOP, vec![ok()]);
    let s = step(FE, Action::NlbDrain);
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::NotDone);
    execute(&ctx(&t, &f, &s)).await.unwrap();
    assert_eq!(t.changes(), vec!["PRG-FE1> wlbs drainstop"]);
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::Done);

    let t = Scripted::new();
    t.on_run(FE, r::WLBS_QUERY, vec![out(1009, "")]);
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::InProgress);

    let t = Scripted::new();
    t.on_run(FE, r::WLBS_QUERY, vec![out(1007, "")]);
    t.on_run(FE, r::WLBS_START, vec![ok()]);
    let s = step(FE, Action::NlbStart);
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::StepFailed, "never converged");
    assert!(e.message.contains("1007"));
    let _ = NS_CIMV2;
}
