//! Cluster actions (E3-CLUSTER.2, .3, .7, .8, .12, .17).

use lockstep_actions::render::{self as r, NS_CLUSTER};
use lockstep_actions::{execute, probe, Probe};
use lockstep_core::{Action, HaltClass, Name};

use crate::scripted::*;

fn move_to_n2() -> Action {
    Action::MoveGroup {
        group: n(EVS_GROUP),
        to: Name::host(N2).unwrap(),
    }
}

#[tokio::test]
async fn move_group_sends_the_exact_line_and_records_the_owner_before() {
    // E3-CLUSTER.9
    let t = Scripted::new();
    script_owners(
        &t,
        N1,
        vec![owners(&[(EVS_GROUP, N1)]), owners(&[(EVS_GROUP, N2)])],
    );
    t.on_run(
        N1,
        "cluster group \"EVS1 Group\" /moveto:PRG-N2 /wait:120",
        vec![ok()],
    );
    let f = fleet();
    let s = step(N1, move_to_n2());
    let o = execute(&ctx(&t, &f, &s)).await.unwrap();
    assert_eq!(
        t.commands(),
        vec!["PRG-N1> cluster group \"EVS1 Group\" /moveto:PRG-N2 /wait:120"]
    );
    assert_eq!(
        facts(&o),
        vec!["PRG-N1:group.EVS1 Group.owner.before=PRG-N1"]
    );
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::Done);
}

#[tokio::test]
async fn move_group_already_there_sends_nothing() {
    let t = Scripted::new();
    script_owners(&t, N1, vec![owners(&[(EVS_GROUP, "prg-n2")])]);
    let f = fleet();
    let s = step(N1, move_to_n2());
    let o = execute(&ctx(&t, &f, &s)).await.unwrap();
    assert!(t.commands().is_empty());
    assert!(message(&o).contains("already on"));
}

#[tokio::test]
async fn move_group_to_a_down_node_fails_with_the_win32_code() {
    let t = Scripted::new();
    script_owners(&t, N1, vec![owners(&[(EVS_GROUP, N1)])]);
    t.on_run(
        N1,
        "cluster group \"EVS1 Group\" /moveto:PRG-N2 /wait:120",
        vec![err_out(
            5050,
            "System error 5050 has occurred (0x000013ba).\r\nThe cluster node is down.\r\n",
        )],
    );
    let f = fleet();
    let s = step(N1, move_to_n2());
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::StepFailed);
    assert_eq!(e.exit_code, Some(5050));
    assert!(
        e.message.contains("ERROR_CLUSTER_NODE_DOWN"),
        "{}",
        e.message
    );
    assert!(e.output.contains("System error 5050"));
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::NotDone);
}

#[tokio::test]
async fn move_group_that_does_not_land_is_a_failure() {
    let t = Scripted::new();
    script_owners(&t, N1, vec![owners(&[(EVS_GROUP, N1)])]);
    t.on_run(
        N1,
        "cluster group \"EVS1 Group\" /moveto:PRG-N2 /wait:120",
        vec![ok()],
    );
    let f = fleet();
    let s = step(N1, move_to_n2());
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::StepFailed);
    assert!(e.message.contains("owned by `PRG-N1`"), "{}", e.message);
}

#[tokio::test]
async fn evacuate_moves_every_group_one_by_one_cluster_group_last() {
    // E3-CLUSTER.2: no EVS and not the cluster group may run on the node being upgraded.
    let t = Scripted::new();
    script_owners(
        &t,
        N1,
        vec![
            owners(&[(CLUSTER_GROUP, N1), (EVS_GROUP, N1), ("EVS2 Group", N2)]),
            owners(&[(CLUSTER_GROUP, N2), (EVS_GROUP, N2), ("EVS2 Group", N2)]),
        ],
    );
    t.on_run(
        N1,
        "cluster group \"EVS1 Group\" /moveto:PRG-N2 /wait:120",
        vec![ok()],
    );
    t.on_run(
        N1,
        "cluster group \"Cluster Group\" /moveto:PRG-N2 /wait:120",
        vec![ok()],
    );
    let f = fleet();
    let s = step(
        N1,
        Action::EvacuateNode {
            node: Name::host(N1).unwrap(),
            to: Name::host(N2).unwrap(),
        },
    );
    let o = execute(&ctx(&t, &f, &s)).await.unwrap();
    assert_eq!(
        t.commands(),
        vec![
            "PRG-N1> cluster group \"EVS1 Group\" /moveto:PRG-N2 /wait:120",
            "PRG-N1> cluster group \"Cluster Group\" /moveto:PRG-N2 /wait:120",
        ]
    );
    assert_eq!(
        facts(&o),
        vec![
            "PRG-N1:group.EVS1 Group.owner.before=PRG-N1",
            "PRG-N1:group.Cluster Group.owner.before=PRG-N1",
        ]
    );
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::Done);
}

#[tokio::test]
async fn evacuate_probe_sees_a_node_still_owning_a_group() {
    let t = Scripted::new();
    script_owners(&t, N1, vec![owners(&[(EVS_GROUP, N1)])]);
    let f = fleet();
    let s = step(
        N1,
        Action::EvacuateNode {
            node: Name::host(N1).unwrap(),
            to: Name::host(N2).unwrap(),
        },
    );
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::NotDone);
}

#[tokio::test]
async fn stop_cluster_service_runs_net_stop_and_reads_the_state_number() {
    // E3-CLUSTER.3
    let t = Scripted::new();
    t.on_run(N1, r::SC_QUERY_CLUSSVC, vec![sc(4), sc(3), sc(1)]);
    t.on_run(
        N1,
        "net stop clussvc",
        vec![out(0, "Služba Cluster byla úspěšně zastavena.\r\n")],
    );
    let f = fleet();
    let s = step(N1, Action::StopClusterService);
    let o = execute(&ctx(&t, &f, &s)).await.unwrap();
    assert_eq!(t.changes(), vec!["PRG-N1> net stop clussvc"]);
    assert!(message(&o).contains("stopped"));
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::Done);
}

#[tokio::test]
async fn stopping_an_already_stopped_cluster_service_sends_nothing() {
    let t = Scripted::new();
    t.on_run(N1, r::SC_QUERY_CLUSSVC, vec![sc(1)]);
    let f = fleet();
    let s = step(N1, Action::StopClusterService);
    execute(&ctx(&t, &f, &s)).await.unwrap();
    assert!(t.changes().is_empty());
}

#[tokio::test]
async fn a_cluster_service_that_does_not_start_is_step_failed() {
    // Fault ClusterServiceFailsToStart: net start exits 2, the state stays 1.
    let t = Scripted::new();
    t.on_run(N1, r::SC_QUERY_CLUSSVC, vec![sc(1)]);
    t.on_run(
        N1,
        "net start clussvc",
        vec![err_out(2, "Došlo k systémové chybě 1067.\r\n")],
    );
    let f = fleet();
    let s = step(N1, Action::StartClusterService);
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::StepFailed);
    assert_eq!(e.exit_code, Some(2));
    assert!(e.message.contains("failed to start"), "{}", e.message);
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::NotDone);
}

#[tokio::test]
async fn start_cluster_service_polls_through_start_pending() {
    let t = Scripted::new();
    t.on_run(N1, r::SC_QUERY_CLUSSVC, vec![sc(1), sc(2), sc(2), sc(4)]);
    t.on_run(N1, "net start clussvc", vec![ok()]);
    let f = fleet();
    let s = step(N1, Action::StartClusterService);
    execute(&ctx(&t, &f, &s)).await.unwrap();
    assert_eq!(t.changes(), vec!["PRG-N1> net start clussvc"]);
}

const EVS_RES: [(&str, &str); 10] = [
    ("EVS1 IP Address", "IP Address"),
    ("EVS1 Network Name", "Network Name"),
    ("Disk F:", "Physical Disk"),
    (
        "EVS1 System Attendant",
        "Microsoft Exchange System Attendant",
    ),
    (
        "EVS1 Information Store",
        "Microsoft Exchange Information Store",
    ),
    (
        "EVS1 MTA",
        "Microsoft Exchange Message Transfer Agent Instance",
    ),
    (
        "EVS1 Routing",
        "Microsoft Exchange Routing Service Instance",
    ),
    ("EVS1 SMTP", "Microsoft Exchange SMTP Server Instance"),
    ("EVS1 HTTP", "Microsoft Exchange HTTP Server Instance"),
    ("Disk G:", "Physical Disk"),
];

pub fn script_evs_resources(t: &crate::scripted::Scripted, host: &str, states: Vec<Vec<u32>>) {
    script_evs_resources_dtc(t, host, states, 2)
}

/// Scripts the EVS group's resources (states in the order of `EVS_RES`, one vector per read)
/// and the cluster group's MSDTC resource in state `dtc`.
pub fn script_evs_resources_dtc(
    t: &crate::scripted::Scripted,
    host: &str,
    states: Vec<Vec<u32>>,
    dtc: u32,
) {
    let m: Vec<(&str, &str)> = EVS_RES.iter().map(|(r, _)| (EVS_GROUP, *r)).collect();
    let mut m = m;
    m.push((CLUSTER_GROUP, "MSDTC"));
    t.on_wql(
        host,
        NS_CLUSTER,
        r::WQL_GROUP_RESOURCES,
        vec![membership(&m)],
    );
    let replies = states
        .into_iter()
        .map(|st| {
            let mut rows: Vec<(&str, &str, u32)> = EVS_RES
                .iter()
                .zip(st.iter())
                .map(|((n, k), s)| (*n, *k, *s))
                .collect();
            rows.push(("MSDTC", "Distributed Transaction Coordinator", dtc));
            resources(&rows)
        })
        .collect();
    t.on_wql(host, NS_CLUSTER, r::WQL_RESOURCES, replies);
}

#[tokio::test]
async fn evs_offline_takes_everything_but_ip_disk_and_name_offline_system_attendant_last() {
    // E3-CLUSTER.7
    let t = Scripted::new();
    script_evs_resources(
        &t,
        N2,
        vec![vec![2; 10], vec![2; 10], vec![2, 2, 2, 3, 3, 3, 3, 3, 3, 2]],
    );
    for res in [
        "EVS1 SMTP",
        "EVS1 HTTP",
        "EVS1 Information Store",
        "EVS1 MTA",
        "EVS1 Routing",
        "EVS1 System Attendant",
    ] {
        t.on_run(
            N2,
            &format!("cluster res \"{res}\" /offline /wait:120"),
            vec![ok()],
        );
    }
    let f = fleet();
    let s = step(
        N2,
        Action::EvsResourcesOffline {
            group: n(EVS_GROUP),
        },
    );
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::NotDone);
    let o = execute(&ctx(&t, &f, &s)).await.unwrap();
    assert_eq!(
        t.commands(),
        vec![
            "PRG-N2> cluster res \"EVS1 SMTP\" /offline /wait:120",
            "PRG-N2> cluster res \"EVS1 HTTP\" /offline /wait:120",
            "PRG-N2> cluster res \"EVS1 Information Store\" /offline /wait:120",
            "PRG-N2> cluster res \"EVS1 MTA\" /offline /wait:120",
            "PRG-N2> cluster res \"EVS1 Routing\" /offline /wait:120",
            "PRG-N2> cluster res \"EVS1 System Attendant\" /offline /wait:120",
        ]
    );
    assert!(message(&o).contains("stay online"));
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::Done);
}

#[tokio::test]
async fn evs_offline_failure_names_the_resource() {
    let t = Scripted::new();
    script_evs_resources(&t, N2, vec![vec![2; 10]]);
    t.on_run(
        N2,
        "cluster res \"EVS1 SMTP\" /offline /wait:120",
        vec![err_out(
            5023,
            "System error 5023 has occurred (0x0000139f).\r\n",
        )],
    );
    let f = fleet();
    let s = step(
        N2,
        Action::EvsResourcesOffline {
            group: n(EVS_GROUP),
        },
    );
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::StepFailed);
    assert!(e.message.contains("`EVS1 SMTP`"), "{}", e.message);
    assert_eq!(t.commands().len(), 1, "stops at the first failure");
}

#[tokio::test]
async fn evs_online_judges_by_group_state_and_explains_5038() {
    // E3-CLUSTER.12, T1
    let t = Scripted::new();
    t.on_wql(
        N1,
        NS_CLUSTER,
        r::WQL_GROUPS,
        vec![groups(&[(EVS_GROUP, 1), (CLUSTER_GROUP, 0)])],
    );
    t.on_run(
        N1,
        "cluster group \"EVS1 Group\" /online /wait:120",
        vec![err_out(
            5038,
            "System error 5038 has occurred (0x000013ae).\r\n",
        )],
    );
    let f = fleet();
    let s = step(
        N1,
        Action::EvsResourcesOnline {
            group: n(EVS_GROUP),
        },
    );
    // No event 1025 in the Application log: the node is older than the EVS (step 12).
    t.on_wql(
        N1,
        r::NS_CIMV2,
        r::WQL_EXCHANGE_CLUSTER_EVENTS,
        vec![app_events(&[(1030, "unrelated")])],
    );
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::StepFailed);
    assert!(
        e.message
            .contains("comes online only on a node at or above its build"),
        "{}",
        e.message
    );
    assert!(!e.message.contains("evicted"), "{}", e.message);
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::NotDone);
    // Event 1025 there (T1): the KB's cause and fix.
    t.on_wql(
        N1,
        r::NS_CIMV2,
        r::WQL_EXCHANGE_CLUSTER_EVENTS,
        vec![app_events(&[
            (
                1025,
                "The Exchange virtual server needs to be upgraded before coming online.",
            ),
            (1030, "unrelated"),
        ])],
    );
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    for part in [
        "T1",
        "event 1025",
        "evicted",
        "Reinstall",
        "needs to be upgraded",
    ] {
        assert!(e.message.contains(part), "`{part}`: {}", e.message);
    }

    let t = Scripted::new();
    t.on_wql(
        N1,
        NS_CLUSTER,
        r::WQL_GROUPS,
        vec![groups(&[(EVS_GROUP, 1)]), groups(&[(EVS_GROUP, 0)])],
    );
    t.on_run(
        N1,
        "cluster group \"EVS1 Group\" /online /wait:120",
        vec![ok()],
    );
    execute(&ctx(&t, &f, &s)).await.unwrap();
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::Done);
}

#[tokio::test]
async fn failover_test_visits_every_node_and_checks_online() {
    // E3-CLUSTER.17
    let t = Scripted::new();
    script_owners(
        &t,
        N1,
        vec![
            owners(&[(EVS_GROUP, N1)]),
            owners(&[(EVS_GROUP, N2)]),
            owners(&[(EVS_GROUP, N2)]),
            owners(&[(EVS_GROUP, N1)]),
        ],
    );
    t.on_wql(
        N1,
        NS_CLUSTER,
        r::WQL_GROUPS,
        vec![groups(&[(EVS_GROUP, 0)])],
    );
    t.on_run(
        N1,
        "cluster group \"EVS1 Group\" /moveto:PRG-N2 /wait:120",
        vec![ok()],
    );
    t.on_run(
        N1,
        "cluster group \"EVS1 Group\" /moveto:PRG-N1 /wait:120",
        vec![ok()],
    );
    let f = fleet();
    let s = step(
        N1,
        Action::FailoverTest {
            group: n(EVS_GROUP),
            nodes: vec![Name::host(N2).unwrap(), Name::host(N1).unwrap()],
        },
    );
    execute(&ctx(&t, &f, &s)).await.unwrap();
    assert_eq!(
        t.commands(),
        vec![
            "PRG-N1> cluster group \"EVS1 Group\" /moveto:PRG-N2 /wait:120",
            "PRG-N1> cluster group \"EVS1 Group\" /moveto:PRG-N1 /wait:120",
        ]
    );
}

#[tokio::test]
async fn failover_test_fails_when_the_group_is_not_online() {
    let t = Scripted::new();
    script_owners(
        &t,
        N1,
        vec![owners(&[(EVS_GROUP, N1)]), owners(&[(EVS_GROUP, N2)])],
    );
    t.on_wql(
        N1,
        NS_CLUSTER,
        r::WQL_GROUPS,
        vec![groups(&[(EVS_GROUP, 2)])],
    );
    t.on_run(
        N1,
        "cluster group \"EVS1 Group\" /moveto:PRG-N2 /wait:120",
        vec![ok()],
    );
    let f = fleet();
    let s = step(
        N1,
        Action::FailoverTest {
            group: n(EVS_GROUP),
            nodes: vec![Name::host(N2).unwrap(), Name::host(N1).unwrap()],
        },
    );
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::StepFailed);
    assert!(e.message.contains("is not online on `"), "{}", e.message);
    assert!(e.message.contains("state 2"), "{}", e.message);
}

#[tokio::test]
async fn transport_failures_map_to_halt_classes() {
    let f = fleet();
    let s = step(N1, move_to_n2());
    let t = Scripted::new();
    script_owners(&t, N1, vec![unreachable(N1)]);
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::NodeUnreachable);
    assert!(e.message.contains("`PRG-N1`"));
    // An unscripted WQL is a protocol fault (as an unavailable provider is): StepFailed.
    let t = Scripted::new();
    let e = execute(&ctx(&t, &f, &s)).await.unwrap_err();
    assert_eq!(e.class, HaltClass::StepFailed);
}

#[tokio::test]
async fn probes_see_pending_cluster_states_as_in_progress() {
    let f = fleet();
    let t = Scripted::new();
    // System Attendant still going offline (131), the rest offline.
    script_evs_resources(&t, N2, vec![vec![2, 2, 2, 131, 3, 3, 3, 3, 3, 2]]);
    let s = step(
        N2,
        Action::EvsResourcesOffline {
            group: n(EVS_GROUP),
        },
    );
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::InProgress);

    let t = Scripted::new();
    t.on_wql(
        N1,
        NS_CLUSTER,
        r::WQL_GROUPS,
        vec![groups(&[(EVS_GROUP, 4)])],
    );
    let s = step(
        N1,
        Action::EvsResourcesOnline {
            group: n(EVS_GROUP),
        },
    );
    assert_eq!(probe(&ctx(&t, &f, &s)).await.unwrap(), Probe::InProgress);
}
