//! Reboot: unreachable, then back with a new boot time; never back => NodeUnreachable.

use lockstep_actions::render as r;
use lockstep_actions::{execute, probe, Probe};
use lockstep_core::{Action, HaltClass, TransportError};

use crate::scripted::*;

const OLD_BOOT: &str = "20261121081131.000000+000";
const NEW_BOOT: &str = "20261121083502.000000+000";

#[tokio::test]
async fn reboot_waits_for_down_then_a_new_boot_time() {
    let t = Scripted::new();
    script_os(
        &t,
        FE,
        vec![
            os(OLD_BOOT),
            os(OLD_BOOT), // still up right after the command
            unreachable(FE),
            Reply::Err(TransportError::Interrupted {
                host: lockstep_core::Name::host(FE).unwrap(),
                detail: "reset".into(),
            }),
            os(NEW_BOOT),
        ],
    );
    t.on_run(FE, r::SHUTDOWN_REBOOT, vec![ok()]);
    let f = fleet();
    let s = step(FE, Action::Reboot);
    let o = execute(&ctx(&t, &f, &s)).await.unwrap();
    assert_eq!(t.changes(), vec!["PRG-FE1> shutdown /r /t 0 /f"]);
    assert_eq!(facts(&o), vec![format!("PRG-FE1:boot.time={NEW_BOOT}")]);
    assert_eq!(t.resets(), 4, "one reset before each poll");
}

#[tokio::test]
async fn reboot_never_back_is_node_unreachable() {
    let t = Scripted::new();
    script_os(&t, FE, vec![os(OLD_BOOT), unreachable(FE)]);
    t.on_run(FE, r::SHUTDOWN_REBOOT, vec![ok()]);
    let f = fleet();
    let s = step(FE, Action::Reboot);
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::NodeUnreachable);
    assert!(e.message.contains("`PRG-FE1`"));
    assert!(e.message.contains("did not come back"), "{}", e.message);
}

#[tokio::test]
async fn reboot_that_never_happens_is_node_unreachable() {
    let t = Scripted::new();
    script_os(&t, FE, vec![os(OLD_BOOT)]);
    t.on_run(FE, r::SHUTDOWN_REBOOT, vec![ok()]);
    let f = fleet();
    let s = step(FE, Action::Reboot);
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::NodeUnreachable);
    assert!(e.message.contains("did not go down"), "{}", e.message);
}

#[tokio::test]
async fn a_connection_dropped_by_shutdown_still_waits() {
    let t = Scripted::new();
    script_os(&t, FE, vec![os(OLD_BOOT), unreachable(FE), os(NEW_BOOT)]);
    t.on_run(FE, r::SHUTDOWN_REBOOT, vec![unreachable(FE)]);
    let f = fleet();
    let s = step(FE, Action::Reboot);
    execute(&ctx(&t, &f, &s)).await.unwrap();
}

#[tokio::test]
async fn a_failing_shutdown_is_step_failed() {
    let t = Scripted::new();
    script_os(&t, FE, vec![os(OLD_BOOT)]);
    t.on_run(
        FE,
        r::SHUTDOWN_REBOOT,
        vec![err_out(5, "Access is denied.(5)\r\n")],
    );
    let f = fleet();
    let s = step(FE, Action::Reboot);
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::StepFailed);
    assert_eq!(e.exit_code, Some(5));
}

#[tokio::test]
async fn reboot_probe_reads_the_pending_marker() {
    let t = Scripted::new();
    t.on_run(
        FE,
        r::REG_PENDING_REBOOT,
        vec![out(
            0,
            "PendingFileRenameOperations    REG_MULTI_SZ    \\??\\C:\\x",
        )],
    );
    let f = fleet();
    let s = step(FE, Action::Reboot);
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::NotDone);
    let t = Scripted::new();
    t.on_run(
        FE,
        r::REG_PENDING_REBOOT,
        vec![err_out(
            1,
            "CHYBA: Systém nemohl nalézt zadaný klíč registru nebo hodnotu.\r\n",
        )],
    );
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::Done);
}
