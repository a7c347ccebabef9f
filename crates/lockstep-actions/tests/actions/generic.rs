//! The generic steps (`command`, `powershell`, `wait-until`, `assert`) and declared facts:
//! exact lines sent, judgement by exit code and JSON, `unless` keeping a change exactly-once.

use lockstep_actions::facts::registry_line;
use lockstep_actions::render::powershell as powershell_line;
use lockstep_actions::{execute, probe, Probe};
use lockstep_core::{
    Action, Availability, Condition, FactDef, FactProbe, HaltClass, Judge, WmiObject,
};

use crate::scripted::*;

const UBR_KEY: &str = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion";

fn judge(ok: &[i32], restart: &[i32], unless: Option<&str>, facts: Vec<FactDef>) -> Judge {
    Judge {
        ok_exit_codes: ok.to_vec(),
        restart_exit_codes: restart.to_vec(),
        unless: unless.map(|u| Condition::parse(u).unwrap()),
        expect: None,
        read_only: false,
        availability: Availability::Unchanged,
        facts,
    }
}

fn kb_fact() -> FactDef {
    FactDef {
        name: "kb".into(),
        probe: FactProbe::Hotfix {
            id: "KB5034441".into(),
        },
    }
}

fn hotfix_rows(present: bool) -> Reply {
    let rows: Vec<WmiObject> = if present {
        vec![[("HotFixID".to_owned(), "KB5034441".to_owned())]
            .into_iter()
            .collect()]
    } else {
        Vec::new()
    };
    Reply::Rows(rows)
}

const HOTFIX_WQL: &str =
    "SELECT HotFixID FROM Win32_QuickFixEngineering WHERE HotFixID = 'KB5034441'";
const WUSA: &str = r#"wusa.exe "C:\stage\kb5034441.msu" /quiet /norestart"#;

#[tokio::test]
async fn a_command_is_judged_by_its_exit_codes() {
    let t = Scripted::new();
    t.on_run(
        FE,
        WUSA,
        vec![out(2359302, ""), out(5, "Access is denied.")],
    );
    let f = fleet();
    let s = step(
        FE,
        Action::Command {
            command: WUSA.into(),
            judge: judge(&[0, 2359302], &[3010], None, vec![]),
        },
    );
    let o = execute(&ctx(&t, &f, &s)).await.unwrap();
    match o {
        lockstep_actions::Outcome::Done { exit_code, .. } => assert_eq!(exit_code, Some(2359302)),
        other => panic!("{other:?}"),
    }
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::StepFailed);
    assert_eq!(e.exit_code, Some(5));
    assert!(e.message.contains("exited 5"), "{}", e.message);
    assert_eq!(
        t.changes(),
        vec![format!("PRG-FE1> {WUSA}"), format!("PRG-FE1> {WUSA}")]
    );
}

#[tokio::test]
async fn unless_skips_a_change_already_in_place_and_makes_the_probe_done() {
    let t = Scripted::new();
    t.on_wql(FE, "root/cimv2", HOTFIX_WQL, vec![hotfix_rows(true)]);
    t.on_run(FE, WUSA, vec![ok()]);
    let f = fleet();
    let s = step(
        FE,
        Action::Command {
            command: WUSA.into(),
            judge: judge(&[0], &[3010], Some("kb"), vec![kb_fact()]),
        },
    );
    let c = ctx(&t, &f, &s);
    let o = execute(&c).await.unwrap();
    assert!(t.changes().is_empty(), "nothing run: {:?}", t.changes());
    assert_eq!(facts(&o), vec!["PRG-FE1:fact.kb=true".to_owned()]);
    assert_eq!(probe(&c).await.unwrap(), Probe::Done);
}

#[tokio::test]
async fn unless_not_holding_runs_the_change_and_the_probe_says_not_done_or_in_progress() {
    let t = Scripted::new();
    t.on_wql(FE, "root/cimv2", HOTFIX_WQL, vec![hotfix_rows(false)]);
    // After a crash mid-install the installer may still run: wait for it, never start another.
    t.on_wql(
        FE,
        "root/cimv2",
        lockstep_actions::render::WQL_PROCESSES,
        vec![
            processes(&["svchost.exe", "WUSA.EXE"]),
            processes(&["svchost.exe"]),
        ],
    );
    t.on_run(FE, WUSA, vec![ok()]);
    let f = fleet();
    let s = step(
        FE,
        Action::Command {
            command: WUSA.into(),
            judge: judge(&[0], &[], Some("kb"), vec![kb_fact()]),
        },
    );
    let c = ctx(&t, &f, &s);
    assert_eq!(probe(&c).await.unwrap(), Probe::InProgress);
    assert_eq!(probe(&c).await.unwrap(), Probe::NotDone);
    execute(&c).await.unwrap();
    assert_eq!(t.changes(), vec![format!("PRG-FE1> {WUSA}")]);
}

#[tokio::test]
async fn powershell_expect_reads_the_json_it_prints() {
    let script =
        "Get-ClusterNode -Name $env:COMPUTERNAME | Select-Object Name, State | ConvertTo-Json";
    let line = powershell_line(script);
    let t = Scripted::new();
    t.on_run(
        FE,
        &line,
        vec![
            out(0, r#"{"Name":"PRG-FE1","State":"Paused"}"#),
            out(0, r#"{"Name":"PRG-FE1","State":"Up"}"#),
            out(0, "Nœud suspendu"),
        ],
    );
    let f = fleet();
    let mut j = judge(&[0], &[], None, vec![]);
    j.expect = Some(Condition::parse("state == Paused").unwrap());
    let s = step(
        FE,
        Action::Powershell {
            script: script.into(),
            judge: j,
        },
    );
    let c = ctx(&t, &f, &s);
    let o = execute(&c).await.unwrap();
    assert_eq!(facts(&o), vec!["PRG-FE1:fact.state=Paused".to_owned()]);
    let e = execute(&c).await.unwrap_err();
    assert!(e.message.contains("state = Up"), "{}", e.message);
    let e = execute(&c).await.unwrap_err();
    assert!(e.message.contains("printed no JSON"), "{}", e.message);
}

#[tokio::test]
async fn assert_reads_registry_facts_and_halts_with_its_class() {
    let t = Scripted::new();
    let reg = |ubr: u32| {
        out(
            0,
            &format!("\r\n{UBR_KEY}\r\n    UBR    REG_DWORD    0x{ubr:x}\r\n"),
        )
    };
    t.on_run(
        FE,
        &registry_line(UBR_KEY, "UBR"),
        vec![reg(5696), reg(5329)],
    );
    let f = fleet();
    let defs = vec![FactDef {
        name: "ubr".into(),
        probe: FactProbe::Registry {
            key: UBR_KEY.into(),
            value: "UBR".into(),
        },
    }];
    let s = step(
        FE,
        Action::Assert {
            that: Condition::parse("ubr >= 5696").unwrap(),
            class: HaltClass::VersionMismatch,
            facts: defs,
        },
    );
    let c = ctx(&t, &f, &s);
    let o = execute(&c).await.unwrap();
    assert_eq!(facts(&o), vec!["PRG-FE1:fact.ubr=5696".to_owned()]);
    let e = execute(&c).await.unwrap_err();
    assert_eq!(e.class, HaltClass::VersionMismatch);
    assert!(e.message.contains("ubr = 5329"), "{}", e.message);
}

#[tokio::test]
async fn wait_until_polls_until_the_condition_holds_or_times_out() {
    let t = Scripted::new();
    t.on_wql(
        FE,
        "root/cimv2",
        HOTFIX_WQL,
        vec![hotfix_rows(false), hotfix_rows(false), hotfix_rows(true)],
    );
    let f = fleet();
    let s = step(
        FE,
        Action::WaitUntil {
            that: Condition::parse("kb").unwrap(),
            every_secs: 1,
            facts: vec![kb_fact()],
        },
    );
    let mut c = ctx(&t, &f, &s);
    c.timeout = std::time::Duration::from_secs(30);
    let o = execute(&c).await.unwrap();
    match o {
        lockstep_actions::Outcome::Done { message, .. } => {
            assert!(message.contains("after 3 poll"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let t2 = Scripted::new();
    t2.on_wql(FE, "root/cimv2", HOTFIX_WQL, vec![hotfix_rows(false)]);
    let mut c2 = ctx(&t2, &f, &s);
    c2.timeout = std::time::Duration::from_secs(2);
    let e = execute(&c2).await.unwrap_err();
    assert_eq!(e.class, HaltClass::StepFailed);
    assert!(e.message.contains("still does not hold"), "{}", e.message);
}
