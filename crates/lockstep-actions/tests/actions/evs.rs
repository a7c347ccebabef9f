//! UpgradeVirtualServer and the T2 preconditions, each failing alone.

use lockstep_actions::render::{NS_EXCHANGE_V2, WQL_EXCHANGE_SERVERS};
use lockstep_actions::{execute, probe, verify_performed, Outcome, Probe};
use lockstep_core::{Action, HaltClass, Version};

use crate::cluster::script_evs_resources_dtc;
use crate::scripted::*;

const LABCTL: &str = "labctl evs upgrade \"EVS1 Group\"";

/// Resource states (IP, NN, Disk F:, SA, IS, MTA, Routing, SMTP, HTTP, Disk G:) when T2 holds.
const READY: [u32; 10] = [2, 2, 2, 3, 3, 3, 3, 3, 3, 2];

struct World {
    step_host: &'static str,
    owner: &'static str,
    n1_build: &'static str,
    n2_build: &'static str,
    states: [u32; 10],
    dtc: u32,
    /// The EVS's version as Exchange's WMI provider lists it.
    evs_build: &'static str,
}

impl World {
    /// The state E3-CLUSTER.11 expects: PRG-N1 upgraded to SP2 and owning the EVS, PRG-N2 at SP1.
    fn ready() -> Self {
        World {
            step_host: N1,
            owner: N1,
            n1_build: SP2,
            n2_build: SP1,
            states: READY,
            dtc: 2,
            evs_build: SP2,
        }
    }

    fn script(&self) -> Scripted {
        let t = Scripted::new();
        script_owners(
            &t,
            self.step_host,
            vec![owners(&[(EVS_GROUP, self.owner), (CLUSTER_GROUP, N2)])],
        );
        script_build(&t, N1, vec![reg_build(self.n1_build, "Enterprise")]);
        script_build(&t, N2, vec![reg_build(self.n2_build, "Enterprise")]);
        script_evs_resources_dtc(&t, self.step_host, vec![self.states.to_vec()], self.dtc);
        t.on_run(self.step_host, LABCTL, vec![ok()]);
        let v: Version = self.evs_build.parse().unwrap();
        t.on_wql(
            self.step_host,
            NS_EXCHANGE_V2,
            WQL_EXCHANGE_SERVERS,
            vec![Reply::Rows(vec![obj(&[
                ("Name", "EVS1"),
                (
                    "ExchangeVersion",
                    &format!(
                        "Version {}.{} (Build {}.{})",
                        v.major, v.minor, v.build, v.revision
                    ),
                ),
            ])])],
        );
        t
    }
}

fn upgrade(command: Option<&str>) -> Action {
    Action::UpgradeVirtualServer {
        group: n(EVS_GROUP),
        evs: n("EVS1"),
        command: command.map(str::to_owned),
    }
}

const FRAGMENTS: [&str; 5] = [
    "is on `",
    "would be started from",
    "System Attendant resource",
    "other than IP Address",
    "Distributed Transaction Coordinator",
];

async fn t2_fails_alone(w: World, expected: &str) {
    let t = w.script();
    let f = fleet();
    let s = step(w.step_host, upgrade(Some(LABCTL)));
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::Precondition, "{}", e.message);
    assert!(
        e.message.contains("cannot be upgraded from"),
        "{}",
        e.message
    );
    assert!(e.message.contains(expected), "{}", e.message);
    for other in FRAGMENTS.iter().filter(|f| **f != expected) {
        assert!(
            !e.message.contains(other),
            "only `{expected}` should fail: {}",
            e.message
        );
    }
    assert!(
        !t.commands().iter().any(|c| c.contains("labctl")),
        "the upgrade must not be sent when T2 fails"
    );
}

#[tokio::test]
async fn t2_all_hold_then_the_command_runs() {
    let w = World::ready();
    let t = w.script();
    let f = fleet();
    let s = step(N1, upgrade(Some(LABCTL)));
    let o = execute(&ctx(&t, &f, &s)).await.unwrap();
    assert!(matches!(
        o,
        Outcome::Done {
            exit_code: Some(0),
            ..
        }
    ));
    assert_eq!(t.changes(), vec![format!("PRG-N1> {LABCTL}")]);
}

#[tokio::test]
async fn t2_all_hold_without_command_waits_for_the_operator() {
    let t = World::ready().script();
    let f = fleet();
    let s = step(N1, upgrade(None));
    match execute(&ctx(&t, &f, &s)).await.unwrap() {
        Outcome::Waiting { instructions } => {
            assert!(instructions.contains("Cluster Administrator"));
            assert!(instructions.contains("`PRG-N1`"));
            assert!(instructions.contains("System Attendant"));
            assert!(instructions.contains("`EVS1 Group`"));
            assert!(instructions.contains("Upgrade Exchange Virtual Server"));
        }
        o => panic!("expected Waiting, got {o:?}"),
    }
    assert!(t.changes().is_empty());
}

#[tokio::test]
async fn t2_group_on_a_node_not_at_the_service_pack() {
    let mut w = World::ready();
    w.owner = N2;
    t2_fails_alone(w, "is on `").await;
}

#[tokio::test]
async fn t2_started_from_a_node_not_at_the_service_pack() {
    let mut w = World::ready();
    w.step_host = N2;
    w.n1_build = SP2;
    w.n2_build = SP1;
    w.owner = N1;
    t2_fails_alone(w, "would be started from").await;
}

#[tokio::test]
async fn t2_system_attendant_online() {
    let mut w = World::ready();
    w.states[3] = 2;
    t2_fails_alone(w, "System Attendant resource").await;
}

#[tokio::test]
async fn t2_another_exchange_resource_online() {
    let mut w = World::ready();
    w.states[4] = 2; // Information Store
    t2_fails_alone(w, "other than IP Address").await;
}

#[tokio::test]
async fn t2_dtc_offline() {
    let mut w = World::ready();
    w.dtc = 3;
    t2_fails_alone(w, "Distributed Transaction Coordinator").await;
}

#[tokio::test]
async fn a_failing_upgrade_command_with_the_t2_text_is_step_failed() {
    let w = World::ready();
    let t = w.script();
    t.on_run(
        N1,
        LABCTL,
        vec![err_out(
            1,
            "The version of Exchange on this computer does not match the version of Exchange on server 'PRG-N2'. ID no: c1037b44\r\n",
        )],
    );
    let f = fleet();
    let s = step(N1, upgrade(Some(LABCTL)));
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::StepFailed);
    assert_eq!(e.exit_code, Some(1));
    assert!(
        e.message
            .contains("the Exchange versions of the nodes do not match"),
        "{}",
        e.message
    );
    assert!(e.output.contains("c1037b44"));
}

/// The postcondition: a site command that exits 0 while the virtual server still reports the
/// old build fails the step (the resources must not be brought online); the probe and the
/// check after an operator's approval read the same version.
#[tokio::test]
async fn the_upgrade_is_done_only_when_the_evs_reports_the_nodes_build() {
    let mut w = World::ready();
    w.evs_build = SP1;
    let t = w.script();
    let f = fleet();
    let s = step(N1, upgrade(Some(LABCTL)));
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::StepFailed, "{}", e.message);
    assert!(e.message.contains("exited 0, but"), "{}", e.message);
    assert!(e.message.contains("`EVS1`"), "{}", e.message);
    assert!(e.message.contains("has not been done"), "{}", e.message);
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::NotDone);
    let manual = step(N1, upgrade(None));
    let why = verify_performed(&ctx(&t, &f, &manual)).await.unwrap();
    let why = why.expect("not in place");
    assert!(why.contains("Build 7226.6"), "{why}");

    let t = World::ready().script();
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::Done);
    assert_eq!(verify_performed(&ctx(&t, &f, &manual)).await.unwrap(), None);
}
