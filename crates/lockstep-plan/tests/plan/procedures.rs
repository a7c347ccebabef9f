//! Each procedure on a small hand-built fleet: the exact order of step ids.

use lockstep_core::*;
use lockstep_plan::{check_rules, plan, plan_hash, render_text, PlanOptions};

use crate::fixtures::*;

fn ids(p: &Plan) -> Vec<&str> {
    p.steps.iter().map(|s| s.id.as_str()).collect()
}

fn step<'p>(p: &'p Plan, id: &str) -> &'p PlannedStep {
    p.step(id).unwrap_or_else(|| panic!("no step `{id}`")).1
}

fn idx(p: &Plan, id: &str) -> usize {
    p.step(id).unwrap_or_else(|| panic!("no step `{id}`")).0
}

/// Seattle: SEA-N1 owns the EVS and the cluster group, SEA-N2 is passive.
pub fn two_node_e3() -> Fleet {
    FleetBuilder::new()
        .site("seattle", Locale::EN_US)
        .cluster(
            "SEACL1",
            "seattle",
            Product::Exchange2003,
            ClusterMode::ActivePassive,
            &["SEA-N1", "SEA-N2"],
            "SEA-N1",
            &[("SEAEVS1", "SEAEVS1 Group", "SEA-N1")],
        )
        .build()
}

/// Prague: four nodes, two EVSs (on N1 and N2), the cluster group on N1.
pub fn four_node_e3() -> Fleet {
    FleetBuilder::new()
        .site("prague", Locale::CS_CZ)
        .cluster(
            "PRGCL1",
            "prague",
            Product::Exchange2003,
            ClusterMode::ActiveActive,
            &["PRG-N1", "PRG-N2", "PRG-N3", "PRG-N4"],
            "PRG-N1",
            &[
                ("PRGEVS1", "PRGEVS1 Group", "PRG-N1"),
                ("PRGEVS2", "PRGEVS2 Group", "PRG-N2"),
            ],
        )
        .build()
}

fn plan_ok(fleet: &Fleet, pb: &Playbook) -> Plan {
    let p = plan(fleet, pb, &PlanOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let v = check_rules(&p, fleet);
    assert!(v.is_empty(), "rules broken: {v:#?}");
    p
}

#[test]
fn e3_two_nodes_passive_first_then_evs_then_active() {
    let fleet = two_node_e3();
    let p = plan_ok(&fleet, &e3_cluster(&fleet));
    assert_eq!(
        ids(&p),
        vec![
            "SEACL1/backup",
            "SEACL1/release-notes",
            "SEA-N2/preflight",
            "SEA-N1/preflight",
            "SEA-N2/stage-iis-hotfix",
            "SEA-N2/stage-sp",
            "SEA-N2/evacuate",
            "SEA-N2/iis-hotfix",
            "SEA-N2/stop-nonessential",
            "SEA-N2/stop-clussvc",
            "SEA-N2/install-sp",
            "SEA-N2/start-nonessential",
            "SEACL1/SEAEVS1 Group/offline-except",
            "SEA-N2/start-clussvc",
            "SEACL1/SEAEVS1 Group/move-to-upgraded",
            "SEACL1/SEAEVS1 Group/upgrade-evs",
            "SEACL1/SEAEVS1 Group/online",
            "SEA-N1/stage-iis-hotfix",
            "SEA-N1/stage-sp",
            "SEA-N1/evacuate",
            "SEA-N1/iis-hotfix",
            "SEA-N1/stop-nonessential",
            "SEA-N1/stop-clussvc",
            "SEA-N1/install-sp",
            "SEA-N1/start-clussvc",
            "SEA-N1/start-nonessential",
            "SEACL1/SEAEVS1 Group/failover-test",
            "SEA-N2/verify-version",
            "SEA-N1/verify-version",
            "SEACL1/backup-after",
        ]
    );
    // Where each cluster-wide step runs: a node whose Cluster service is up.
    assert_eq!(step(&p, "SEACL1/backup").host.as_str(), "SEA-N2");
    assert_eq!(
        step(&p, "SEACL1/SEAEVS1 Group/offline-except")
            .host
            .as_str(),
        "SEA-N1"
    );
    for id in ["move-to-upgraded", "upgrade-evs", "online", "failover-test"] {
        assert_eq!(
            step(&p, &format!("SEACL1/SEAEVS1 Group/{id}"))
                .host
                .as_str(),
            "SEA-N2"
        );
    }
    assert_eq!(
        step(&p, "SEA-N2/evacuate").action,
        Action::EvacuateNode {
            node: name_h("SEA-N2"),
            to: name_h("SEA-N1")
        }
    );
    assert_eq!(
        step(&p, "SEA-N1/evacuate").action,
        Action::EvacuateNode {
            node: name_h("SEA-N1"),
            to: name_h("SEA-N2")
        }
    );
    assert_eq!(
        step(&p, "SEACL1/SEAEVS1 Group/failover-test").action,
        Action::FailoverTest {
            group: name_o("SEAEVS1 Group"),
            nodes: vec![name_h("SEA-N1"), name_h("SEA-N2")]
        }
    );
    assert_eq!(
        step(&p, "SEACL1/SEAEVS1 Group/upgrade-evs").action,
        Action::UpgradeVirtualServer {
            group: name_o("SEAEVS1 Group"),
            evs: name_o("SEAEVS1"),
            command: None
        }
    );
    // Rendered, validated parameters.
    match &step(&p, "SEA-N2/install-sp").action {
        Action::Install {
            package,
            args,
            target,
            kind,
            prerequisite,
            ..
        } => {
            assert_eq!(
                package.as_str(),
                "C:\\Lockstep\\packages\\E2K3SP2\\update.exe"
            );
            assert_eq!(args.as_str(), "/q /z");
            assert_eq!(*target, Some(Version::new(6, 5, 7638, 2)));
            assert_eq!(*kind, PackageKind::ServicePack);
            assert_eq!(*prerequisite, None);
        }
        a => panic!("{a:?}"),
    }
    assert_eq!(
        step(&p, "SEA-N1/stop-nonessential").action,
        Action::StopServices {
            services: vec![
                name_o("McShield"),
                name_o("BackupExecAgentAccelerator"),
                name_o("SNMP")
            ]
        }
    );
    assert_eq!(
        step(&p, "SEA-N1/evacuate").name,
        "Move every group from SEA-N1 to the upgraded node SEA-N2"
    );
    // Timeouts and estimates.
    assert_eq!(step(&p, "SEA-N2/install-sp").timeout_secs, 7200);
    assert_eq!(step(&p, "SEA-N2/install-sp").estimate_secs, 1200);
    assert_eq!(step(&p, "SEA-N2/iis-hotfix").estimate_secs, 600);
    assert_eq!(step(&p, "SEA-N2/stop-clussvc").timeout_secs, 600);
    // Out-of-service windows: N2 from its hotfix to its Cluster service start; N1 likewise.
    let oos: Vec<&str> = p
        .steps
        .iter()
        .filter(|s| s.out_of_service)
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(
        oos,
        vec![
            "SEA-N2/iis-hotfix",
            "SEA-N2/stop-nonessential",
            "SEA-N2/stop-clussvc",
            "SEA-N2/install-sp",
            "SEA-N2/start-nonessential",
            "SEA-N2/start-clussvc",
            "SEA-N1/iis-hotfix",
            "SEA-N1/stop-nonessential",
            "SEA-N1/stop-clussvc",
            "SEA-N1/install-sp",
            "SEA-N1/start-clussvc",
        ]
    );
    // One stage (only seattle exists): canary.
    assert_eq!(p.stages.len(), 1);
    assert_eq!(p.stages[0].name, "canary");
    // Preflight runs on both nodes at once; the next step waits for both.
    let pf1 = idx(&p, "SEA-N2/preflight");
    let pf2 = idx(&p, "SEA-N1/preflight");
    assert_eq!(p.steps[pf1].after, p.steps[pf2].after);
    assert_eq!(step(&p, "SEA-N2/stage-iis-hotfix").after, vec![pf1, pf2]);
    assert_eq!(p.hash, plan_hash(&p));
}

#[test]
fn e3_four_nodes_two_evs() {
    let fleet = four_node_e3();
    let p = plan_ok(&fleet, &e3_cluster(&fleet));
    let node = |n: &str, with_clussvc_start: bool| {
        let mut v = vec![
            format!("{n}/stage-iis-hotfix"),
            format!("{n}/stage-sp"),
            format!("{n}/evacuate"),
            format!("{n}/iis-hotfix"),
            format!("{n}/stop-nonessential"),
            format!("{n}/stop-clussvc"),
            format!("{n}/install-sp"),
        ];
        if with_clussvc_start {
            v.push(format!("{n}/start-clussvc"));
        }
        v.push(format!("{n}/start-nonessential"));
        v
    };
    let mut want: Vec<String> = vec![
        "PRGCL1/backup".into(),
        "PRGCL1/release-notes".into(),
        "PRG-N3/preflight".into(),
        "PRG-N1/preflight".into(),
        "PRG-N2/preflight".into(),
        "PRG-N4/preflight".into(),
    ];
    want.extend(node("PRG-N3", false));
    want.push("PRGCL1/PRGEVS1 Group/offline-except".into());
    want.push("PRGCL1/PRGEVS2 Group/offline-except".into());
    want.push("PRG-N3/start-clussvc".into());
    for g in ["PRGEVS1 Group", "PRGEVS2 Group"] {
        for s in ["move-to-upgraded", "upgrade-evs", "online"] {
            want.push(format!("PRGCL1/{g}/{s}"));
        }
    }
    for n in ["PRG-N1", "PRG-N2", "PRG-N4"] {
        want.extend(node(n, true));
    }
    want.push("PRGCL1/PRGEVS1 Group/failover-test".into());
    want.push("PRGCL1/PRGEVS2 Group/failover-test".into());
    for n in ["PRG-N3", "PRG-N1", "PRG-N2", "PRG-N4"] {
        want.push(format!("{n}/verify-version"));
    }
    want.push("PRGCL1/backup-after".into());
    assert_eq!(ids(&p), want);
    // First node N3 (owns nothing); its peer is N1, the owner of most groups.
    assert_eq!(
        step(&p, "PRG-N3/evacuate").action,
        Action::EvacuateNode {
            node: name_h("PRG-N3"),
            to: name_h("PRG-N1")
        }
    );
    for n in ["PRG-N1", "PRG-N2", "PRG-N4"] {
        assert_eq!(
            step(&p, &format!("{n}/evacuate")).action,
            Action::EvacuateNode {
                node: name_h(n),
                to: name_h("PRG-N3")
            }
        );
    }
    // EVS2's offline runs on the peer N1 while N3's Cluster service is down.
    assert_eq!(
        step(&p, "PRGCL1/PRGEVS2 Group/offline-except")
            .host
            .as_str(),
        "PRG-N1"
    );
    assert_eq!(
        step(&p, "PRGCL1/PRGEVS2 Group/failover-test").action,
        Action::FailoverTest {
            group: name_o("PRGEVS2 Group"),
            nodes: ["PRG-N1", "PRG-N2", "PRG-N4", "PRG-N3"]
                .map(name_h)
                .to_vec()
        }
    );
    assert!(p.critical_path_secs() > 4 * 1200);
    let text = render_text(&p);
    assert!(text.contains("Stage 1/1 `canary`"), "{text}");
    assert!(text.contains(
        "      [E3-CLUSTER.4] PRG-N3/install-sp  Install Exchange 2003 SP2 on PRG-N3 (restart if setup asks)  (on PRG-N3, out of service)"
    ), "{text}");
}

#[test]
fn e3_live_owner_changes_first_node() {
    let fleet = two_node_e3();
    let mut opts = PlanOptions::default();
    opts.owners.insert("SEAEVS1 Group".into(), "SEA-N2".into());
    opts.owners
        .insert("SEACL1/Cluster Group".into(), "SEA-N2".into());
    let p = plan(&fleet, &e3_cluster(&fleet), &opts).unwrap();
    assert_eq!(p.steps[2].id, "SEA-N1/preflight");
    assert_eq!(p.steps[4].id, "SEA-N1/stage-iis-hotfix");
    assert_eq!(p.steps[6].id, "SEA-N1/evacuate");
    let base = plan(&fleet, &e3_cluster(&fleet), &PlanOptions::default()).unwrap();
    assert_ne!(p.hash, base.hash);
}

#[test]
fn e3_hotfix_skips_evs_upgrade_and_windows_2000_skips_iis_hotfix() {
    let mut fleet = two_node_e3();
    for h in &mut fleet.hosts {
        h.windows = Some(WindowsRelease::Windows2000);
    }
    let mut pb = e3_cluster(&fleet);
    pb.target.as_mut().unwrap().kind = PackageKind::Hotfix;
    let p = plan_ok(&fleet, &pb);
    assert!(p.step("SEACL1/SEAEVS1 Group/upgrade-evs").is_none());
    assert!(p.step("SEA-N1/iis-hotfix").is_none());
    assert!(p.step("SEA-N2/iis-hotfix").is_none());
    // The window now opens at the Cluster service stop.
    assert!(!step(&p, "SEA-N2/stop-nonessential").out_of_service);
    assert!(step(&p, "SEA-N2/stop-clussvc").out_of_service);
}

#[test]
fn e2_active_passive_passive_first() {
    let fleet = FleetBuilder::new()
        .site("milan", Locale::IT_IT)
        .cluster(
            "MILCL1",
            "milan",
            Product::Exchange2000,
            ClusterMode::ActivePassive,
            &["MIL-N1", "MIL-N2"],
            "MIL-N1",
            &[("MILEVS1", "MILEVS1 Group", "MIL-N1")],
        )
        .build();
    let p = plan_ok(&fleet, &e2_active_passive());
    assert_eq!(
        ids(&p),
        vec![
            "MIL-N2/preflight",
            "MIL-N1/preflight",
            "MIL-N2/evacuate",
            "MIL-N2/stop-clussvc",
            "MIL-N2/install-sp",
            "MIL-N2/start-clussvc",
            "MIL-N1/evacuate",
            "MIL-N1/stop-clussvc",
            "MIL-N1/install-sp",
            "MIL-N1/start-clussvc",
            "MIL-N2/verify-version",
            "MIL-N1/verify-version",
        ]
    );
    assert_eq!(
        step(&p, "MIL-N1/evacuate").action,
        Action::EvacuateNode {
            node: name_h("MIL-N1"),
            to: name_h("MIL-N2")
        }
    );
    // An active/active cluster is not taken by the active/passive procedure.
    let mut aa = fleet.clone();
    aa.clusters[0].mode = ClusterMode::ActiveActive;
    let e = plan(&aa, &e2_active_passive(), &PlanOptions::default()).unwrap_err();
    assert!(e.to_string().contains("selects nothing"), "{e}");
}

#[test]
fn e2_active_active_follows_the_five_steps() {
    let fleet = FleetBuilder::new()
        .site("amsterdam", Locale::NL_NL)
        .cluster(
            "AMSCL1",
            "amsterdam",
            Product::Exchange2000,
            ClusterMode::ActiveActive,
            &["AMS-N1", "AMS-N2"],
            "AMS-N2",
            &[
                ("AMSEVS1", "AMSEVS1 Group", "AMS-N1"),
                ("AMSEVS2", "AMSEVS2 Group", "AMS-N2"),
            ],
        )
        .build();
    let p = plan_ok(&fleet, &e2_active_active());
    assert_eq!(
        ids(&p),
        vec![
            "AMS-N1/evacuate",
            "AMS-N1/stop-clussvc",
            "AMS-N1/install-sp",
            "AMS-N1/start-clussvc",
            "AMS-N2/evacuate",
            "AMS-N2/stop-clussvc",
            "AMS-N2/install-sp",
            "AMS-N2/start-clussvc",
            "AMS-N1/verify-version",
            "AMS-N2/verify-version",
        ]
    );
    // 1: EVS 1 (and what A owns) to B; 3: everything back to A.
    assert_eq!(
        step(&p, "AMS-N1/evacuate").action,
        Action::EvacuateNode {
            node: name_h("AMS-N1"),
            to: name_h("AMS-N2")
        }
    );
    assert_eq!(
        step(&p, "AMS-N2/evacuate").action,
        Action::EvacuateNode {
            node: name_h("AMS-N2"),
            to: name_h("AMS-N1")
        }
    );
}

#[test]
fn e5_active_first_no_moves() {
    let fleet = FleetBuilder::new()
        .site("tokyo", Locale::JA_JP)
        .cluster(
            "TOKCL1",
            "tokyo",
            Product::Exchange55,
            ClusterMode::ActivePassive,
            &["TOK-N1", "TOK-N2"],
            "TOK-N2",
            &[("TOKEVS1", "TOKEVS1 Group", "TOK-N2")],
        )
        .build();
    let p = plan_ok(&fleet, &e5_cluster());
    assert_eq!(
        ids(&p),
        vec![
            "TOK-N2/install-sp",
            "TOK-N1/install-sp",
            "TOK-N2/verify-version",
            "TOK-N1/verify-version",
        ]
    );
    assert!(step(&p, "TOK-N2/install-sp").out_of_service);
    assert!(!step(&p, "TOK-N2/verify-version").out_of_service);
}

pub fn front_back_fleet(scope: FrontEndScope) -> Fleet {
    FleetBuilder::new()
        .site("prague", Locale::CS_CZ)
        .site("seattle", Locale::EN_US)
        .pool(
            "PRG-OWA",
            "prague",
            Product::Exchange2003,
            &["PRG-FE01", "PRG-FE02"],
        )
        .host(
            "PRG-FE03",
            "prague",
            Role::FrontEnd,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .host(
            "PRG-EXC01",
            "prague",
            Role::BackEnd,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .host(
            "PRG-EXC02",
            "prague",
            Role::BackEnd,
            Product::Exchange2003,
            WindowsRelease::Windows2000,
        )
        .host(
            "SEA-FE01",
            "seattle",
            Role::FrontEnd,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .host(
            "SEA-BE01",
            "seattle",
            Role::BackEnd,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .host(
            "SEA-SA01",
            "seattle",
            Role::Standalone,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .front_end_scope(scope)
        .build()
}

fn host_chain(h: &str) -> Vec<String> {
    [
        "preflight",
        "stop-nonessential",
        "install-sp",
        "start-nonessential",
        "verify-version",
    ]
    .iter()
    .map(|s| format!("{h}/{s}"))
    .collect()
}

#[test]
fn e3_front_ends_pool_lockstep_then_back_ends() {
    let fleet = front_back_fleet(FrontEndScope::Organisation);
    let p = plan_ok(&fleet, &e3_front_back());
    let mut want: Vec<String> = Vec::new();
    for s in [
        "preflight",
        "drain",
        "stop-nonessential",
        "install-sp",
        "start-nonessential",
        "nlb-start",
        "verify-version",
    ] {
        want.push(format!("PRG-FE01/{s}"));
        want.push(format!("PRG-FE02/{s}"));
    }
    want.extend(host_chain("PRG-FE03"));
    want.extend(host_chain("SEA-FE01"));
    want.extend(host_chain("PRG-EXC01"));
    want.extend(host_chain("PRG-EXC02"));
    want.extend(host_chain("SEA-BE01"));
    assert_eq!(ids(&p), want);
    let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["front-ends/all", "back-ends/all"]);
    assert_eq!(step(&p, "SEA-FE01/preflight").stage, 0);
    assert_eq!(step(&p, "PRG-EXC01/preflight").stage, 1);
    // Lockstep: FE02's drain waits for both preflights.
    let a = idx(&p, "PRG-FE01/preflight");
    let b = idx(&p, "PRG-FE02/preflight");
    assert_eq!(step(&p, "PRG-FE02/drain").after, vec![a, b]);
    assert_eq!(
        step(&p, "PRG-FE01/drain").pool.as_ref().map(Name::as_str),
        Some("PRG-OWA")
    );
    // Both members are out of service together (E3-LB), from the drain to the NLB start.
    for h in ["PRG-FE01", "PRG-FE02"] {
        assert!(!step(&p, &format!("{h}/preflight")).out_of_service);
        for s in ["drain", "stop-nonessential", "install-sp", "nlb-start"] {
            assert!(step(&p, &format!("{h}/{s}")).out_of_service, "{h}/{s}");
        }
        assert!(!step(&p, &format!("{h}/verify-version")).out_of_service);
    }
    // A lone front-end: from its install to the end of that phase.
    assert!(!step(&p, "PRG-FE03/stop-nonessential").out_of_service);
    assert!(step(&p, "PRG-FE03/install-sp").out_of_service);
    assert!(step(&p, "PRG-FE03/start-nonessential").out_of_service);
    assert!(!step(&p, "PRG-FE03/verify-version").out_of_service);
    // The standalone server is not a front-end/back-end host.
    assert!(p.step("SEA-SA01/preflight").is_none());
}

#[test]
fn e3_front_ends_per_site_scope_uses_edges() {
    let fleet = front_back_fleet(FrontEndScope::Site);
    let p = plan_ok(&fleet, &e3_front_back());
    assert_eq!(p.stages.len(), 1);
    let be = step(&p, "PRG-EXC01/preflight");
    let mut want = vec![
        idx(&p, "PRG-FE01/verify-version"),
        idx(&p, "PRG-FE02/verify-version"),
        idx(&p, "PRG-FE03/verify-version"),
    ];
    want.sort();
    assert_eq!(be.after, want);
    assert_eq!(
        step(&p, "SEA-BE01/preflight").after,
        vec![idx(&p, "SEA-FE01/verify-version")]
    );
}

#[test]
fn standalone_procedures_take_their_hosts() {
    let fleet = FleetBuilder::new()
        .site("prague", Locale::CS_CZ)
        .host(
            "BRN-SBS01",
            "prague",
            Role::Sbs,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .host(
            "PRG-SA01",
            "prague",
            Role::Standalone,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .host(
            "PRG-FE09",
            "prague",
            Role::FrontEnd,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .host(
            "PRG-X55",
            "prague",
            Role::BackEnd,
            Product::Exchange55,
            WindowsRelease::Nt4,
        )
        .host(
            "PRG-X2K",
            "prague",
            Role::Standalone,
            Product::Exchange2000,
            WindowsRelease::Windows2000,
        )
        .build();
    let p = plan_ok(&fleet, &standalone(Kb::E3Standalone));
    let mut want = host_chain_nc("BRN-SBS01");
    want.extend(host_chain_nc("PRG-SA01"));
    assert_eq!(ids(&p), want);
    // E5-NC takes 5.5 servers of any role.
    let p = plan_ok(&fleet, &standalone(Kb::E5Standalone));
    assert_eq!(ids(&p), host_chain_nc("PRG-X55"));
    let p = plan_ok(&fleet, &standalone(Kb::E2Standalone));
    assert_eq!(ids(&p), host_chain_nc("PRG-X2K"));
    // Independent chains: the second host's first step waits for nothing.
    let p = plan_ok(&fleet, &standalone(Kb::E3Standalone));
    assert!(step(&p, "PRG-SA01/preflight").after.is_empty());
}

fn host_chain_nc(h: &str) -> Vec<String> {
    ["preflight", "install-sp", "verify-version"]
        .iter()
        .map(|s| format!("{h}/{s}"))
        .collect()
}

#[test]
fn limit_and_patterns_select() {
    let fleet = FleetBuilder::new()
        .site("prague", Locale::CS_CZ)
        .site("seattle", Locale::EN_US)
        .host(
            "PRG-SA01",
            "prague",
            Role::Standalone,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .host(
            "PRG-SA02",
            "prague",
            Role::Standalone,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .host(
            "SEA-SA01",
            "seattle",
            Role::Standalone,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .build();
    let pb = standalone(Kb::E3Standalone);
    let hosts = |limit: &[&str]| {
        let opts = PlanOptions {
            limit: limit.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let p = plan(&fleet, &pb, &opts).unwrap();
        let mut h: Vec<String> = p.steps.iter().map(|s| s.host.to_string()).collect();
        h.dedup();
        h
    };
    assert_eq!(hosts(&["seattle"]), vec!["SEA-SA01"]);
    assert_eq!(hosts(&["PRAGUE"]), vec!["PRG-SA01", "PRG-SA02"]);
    assert_eq!(hosts(&["prague:!PRG-SA02"]), vec!["PRG-SA01"]);
    assert_eq!(hosts(&["all:&prague"]), vec!["PRG-SA01", "PRG-SA02"]);
    assert_eq!(hosts(&["*-SA01"]), vec!["PRG-SA01", "SEA-SA01"]);
    assert_eq!(hosts(&["!prague"]), vec!["SEA-SA01"]);
    assert_eq!(hosts(&[]), vec!["PRG-SA01", "PRG-SA02", "SEA-SA01"]);
}

#[test]
fn deterministic_and_hash_sensitive() {
    let fleet = four_node_e3();
    let pb = e3_cluster(&fleet);
    let a = plan(&fleet, &pb, &PlanOptions::default()).unwrap();
    let b = plan(&fleet, &pb, &PlanOptions::default()).unwrap();
    assert_eq!(
        serde_json::to_vec(&a).unwrap(),
        serde_json::to_vec(&b).unwrap()
    );
    assert_eq!(a.hash, b.hash);
    assert_eq!(a.hash.0.len(), 64);
    let mut pb2 = pb.clone();
    pb2.vars.insert("sp_args".into(), "/q".into());
    let c = plan(&fleet, &pb2, &PlanOptions::default()).unwrap();
    assert_ne!(a.hash, c.hash);
    // A host variable cannot change a variable the playbook sets (issue 10: an inventory must
    // not change an install command); `-e` can, for every host.
    let mut fleet2 = fleet.clone();
    fleet2.hosts[0]
        .vars
        .insert("sp_args".into(), "/q /x".into());
    let d = plan(&fleet2, &pb, &PlanOptions::default()).unwrap();
    assert_eq!(d.hash, a.hash);
    match &d.step("PRG-N1/install-sp").unwrap().1.action {
        Action::Install { args, .. } => assert_eq!(args.as_str(), "/q /z"),
        a => panic!("{a:?}"),
    }
    let mut opts = PlanOptions::default();
    opts.extra_vars.insert("sp_args".into(), "/q /y".into());
    let e = plan(&fleet2, &pb, &opts).unwrap();
    match &e.step("PRG-N1/install-sp").unwrap().1.action {
        Action::Install { args, .. } => assert_eq!(args.as_str(), "/q /y"),
        a => panic!("{a:?}"),
    }
    match &d.step("PRG-N2/install-sp").unwrap().1.action {
        Action::Install { args, .. } => assert_eq!(args.as_str(), "/q /z"),
        a => panic!("{a:?}"),
    }
}

#[test]
fn text_rendering_is_exact() {
    let fleet = FleetBuilder::new()
        .site("tokyo", Locale::JA_JP)
        .cluster(
            "TOKCL1",
            "tokyo",
            Product::Exchange55,
            ClusterMode::ActivePassive,
            &["TOK-N1", "TOK-N2"],
            "TOK-N2",
            &[("TOKEVS1", "TOKEVS1 Group", "TOK-N2")],
        )
        .build();
    let mut pb = e5_cluster();
    pb.rollout.stages = vec![stage("asia", &["tokyo"], Gate::Soak { secs: 1800 })];
    let p = plan_ok(&fleet, &pb);
    let want = format!(
        "Plan `e5-cluster`: E5-CLUSTER to 5.5.2653.0 (Exchange Server 5.5), hash {}
4 steps in 1 stage; critical path 41 min; halts at the first failed host; any number of clusters/hosts per site at once

Stage 1/1 `asia` (soaks 30 min after the previous stage; 1 site at once): tokyo
  Site tokyo (ja-JP)
    Cluster TOKCL1
      [E5-CLUSTER.1] TOK-N2/install-sp  Install the 5.5 service pack on TOK-N2  (on TOK-N2, out of service)
      [E5-CLUSTER.2] TOK-N1/install-sp  Install the 5.5 service pack on TOK-N1  (on TOK-N1, out of service)
      [G3] TOK-N2/verify-version  TOK-N2 at 5.5.2653.0  (on TOK-N2)
      [G3] TOK-N1/verify-version  TOK-N1 at 5.5.2653.0  (on TOK-N1, in parallel with the line above)
",
        p.hash.short()
    );
    assert_eq!(lockstep_plan::render_text_with_fleet(&p, &fleet), want);
    // Without the fleet, the locale is left out.
    assert!(render_text(&p).contains("\n  Site tokyo\n"));
}

#[test]
fn repeated_spec_ids_get_a_suffix() {
    let fleet = FleetBuilder::new()
        .site("prague", Locale::CS_CZ)
        .host(
            "PRG-SA01",
            "prague",
            Role::Standalone,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .build();
    let mut pb = standalone(Kb::E3Standalone);
    let again = pb.phases[0].clone();
    pb.phases.push(again.clone());
    pb.phases.push(again);
    let p = plan_ok(&fleet, &pb);
    assert_eq!(
        ids(&p),
        vec![
            "PRG-SA01/preflight",
            "PRG-SA01/install-sp",
            "PRG-SA01/verify-version",
            "PRG-SA01/preflight#2",
            "PRG-SA01/preflight#3",
        ]
    );
}
