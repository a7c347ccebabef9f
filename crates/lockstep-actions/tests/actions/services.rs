//! Stop/StartServices (G5): judged by the `sc query` state number; missing services skipped.

use lockstep_actions::{execute, probe, Outcome, Probe};
use lockstep_core::{Action, HaltClass};

use crate::scripted::*;

fn services(names: &[&str]) -> Vec<lockstep_core::Name> {
    names.iter().map(|s| n(s)).collect()
}

#[tokio::test]
async fn stop_services_skips_missing_and_already_stopped() {
    let t = Scripted::new();
    t.on_run(N1, "sc query \"McShield\"", vec![sc(4), sc(1)]);
    t.on_run(
        N1,
        "net stop \"McShield\"",
        vec![out(0, "Služba McShield byla úspěšně zastavena.\r\n")],
    );
    t.on_run(
        N1,
        "sc query \"BackupExecAgentAccelerator\"",
        vec![sc_missing()],
    );
    t.on_run(N1, "sc query \"SNMP\"", vec![sc(1)]);
    let f = fleet();
    let s = step(
        N1,
        Action::StopServices {
            services: services(&["McShield", "BackupExecAgentAccelerator", "SNMP"]),
        },
    );
    let o = execute(&ctx(&t, &f, &s)).await.unwrap();
    assert_eq!(t.changes(), vec!["PRG-N1> net stop \"McShield\""]);
    let m = message(&o);
    assert!(
        m.contains("`BackupExecAgentAccelerator` is not installed (skipped)"),
        "{m}"
    );
    assert!(m.contains("`SNMP` was already STOPPED"), "{m}");
    assert!(matches!(
        o,
        Outcome::Done {
            exit_code: Some(0),
            ..
        }
    ));
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::Done);
}

#[tokio::test]
async fn net_exit_2_is_judged_by_the_state_not_the_exit_code() {
    // `net stop` exits 2 with a localised message when the service was stopping anyway.
    let t = Scripted::new();
    t.on_run(N1, "sc query \"SNMP\"", vec![sc(4), sc(1)]);
    t.on_run(
        N1,
        "net stop \"SNMP\"",
        vec![err_out(2, "Služba SNMP není spuštěna.\r\n")],
    );
    let f = fleet();
    let s = step(
        N1,
        Action::StopServices {
            services: services(&["SNMP"]),
        },
    );
    execute(&ctx(&t, &f, &s)).await.unwrap();
}

#[tokio::test]
async fn a_service_that_stays_running_is_step_failed() {
    let t = Scripted::new();
    t.on_run(N1, "sc query \"McShield\"", vec![sc(4)]);
    t.on_run(
        N1,
        "net stop \"McShield\"",
        vec![err_out(2, "Systémová chyba 5.\r\n")],
    );
    let f = fleet();
    let s = step(
        N1,
        Action::StopServices {
            services: services(&["McShield"]),
        },
    );
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::NotDone);
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::StepFailed);
    assert_eq!(e.exit_code, Some(2));
    assert!(
        e.message.contains("`McShield`") && e.message.contains("state 4"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn start_services_runs_net_start() {
    let t = Scripted::new();
    t.on_run(N1, "sc query \"SNMP\"", vec![sc(1), sc(2), sc(4)]);
    t.on_run(N1, "net start \"SNMP\"", vec![ok()]);
    let f = fleet();
    let s = step(
        N1,
        Action::StartServices {
            services: services(&["SNMP"]),
        },
    );
    execute(&ctx(&t, &f, &s)).await.unwrap();
    assert_eq!(t.changes(), vec!["PRG-N1> net start \"SNMP\""]);
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::Done);
}
