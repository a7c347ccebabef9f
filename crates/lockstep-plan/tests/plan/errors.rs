//! Plans the planner must refuse, with every error named.

use lockstep_core::*;
use lockstep_plan::{plan, PlanError, PlanOptions};

use crate::fixtures::*;
use crate::procedures::{four_node_e3, two_node_e3};

fn errors(fleet: &Fleet, pb: &Playbook, opts: &PlanOptions) -> Vec<PlanError> {
    plan(fleet, pb, opts).expect_err("plan must be refused").0
}

#[test]
fn undefined_variable_names_step_unit_and_variable() {
    let fleet = two_node_e3();
    let mut pb = e3_cluster(&fleet);
    pb.vars.remove("sp_package");
    let e = errors(&fleet, &pb, &PlanOptions::default());
    // Both nodes' copies and installs report it: every error, not the first only.
    assert_eq!(e.len(), 4, "{e:#?}");
    assert!(e
        .iter()
        .all(|e| matches!(e, PlanError::Undefined { variable, .. } if variable == "sp_package")));
    let e: Vec<_> = e
        .into_iter()
        .filter(|e| matches!(e, PlanError::Undefined { step, .. } if step == "install-sp"))
        .collect();
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!(
        e[0],
        PlanError::Undefined {
            step: "install-sp".into(),
            unit: "SEACL1 (node SEA-N2)".into(),
            variable: "sp_package".into()
        }
    );
    assert_eq!(
        e[0].to_string(),
        "step `install-sp` of `SEACL1 (node SEA-N2)`: variable `sp_package` is undefined"
    );
}

#[test]
fn injected_values_are_refused() {
    let fleet = two_node_e3();
    let mut pb = e3_cluster(&fleet);
    pb.vars.insert("sp_args".into(), "/q & calc".into());
    pb.vars
        .insert("antivirus_service".into(), "McShield\" & del".into());
    let e = errors(&fleet, &pb, &PlanOptions::default());
    assert!(
        e.iter().any(|e| matches!(e,
        PlanError::InvalidValue { step, value, kind: NameKind::Args, .. }
            if step == "install-sp" && value == "/q & calc")),
        "{e:#?}"
    );
    assert!(e.iter().any(|e| matches!(e,
        PlanError::InvalidValue { step, kind: NameKind::Object, .. } if step == "stop-nonessential")));
    // Moving a group to something that is not a node.
    let mut fleet2 = two_node_e3();
    fleet2.hosts[0].vars.insert("x".into(), "1".into());
    let mut pb2 = e3_cluster(&fleet2);
    if let ActionSpec::MoveGroup { to, .. } = &mut pb2.phases[5].steps[0].action {
        *to = "PRG-N1".into();
    } else {
        panic!("fixture changed");
    }
    let e = errors(&fleet2, &pb2, &PlanOptions::default());
    assert!(
        matches!(&e[0], PlanError::NotANode { node, .. } if node == "PRG-N1"),
        "{e:#?}"
    );
}

#[test]
fn partly_selected_cluster_and_unknown_pattern() {
    let fleet = two_node_e3();
    let pb = e3_cluster(&fleet);
    let opts = PlanOptions {
        limit: vec!["SEA-N1".into(), "nosuchthing".into()],
        ..Default::default()
    };
    let e = errors(&fleet, &pb, &opts);
    assert!(e.contains(&PlanError::UnknownPattern {
        pattern: "nosuchthing".into()
    }));
    assert!(e.contains(&PlanError::PartlySelected {
        what: "cluster",
        unit: "SEACL1".into(),
        missing: "SEA-N2".into()
    }));
}

#[test]
fn stages_must_cover_selected_sites() {
    let fleet = FleetBuilder::new()
        .site("prague", Locale::CS_CZ)
        .site("tokyo", Locale::JA_JP)
        .host(
            "PRG-SA01",
            "prague",
            Role::Standalone,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .host(
            "TOK-SA01",
            "tokyo",
            Role::Standalone,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .build();
    let mut pb = standalone(Kb::E3Standalone);
    pb.rollout.stages = vec![stage("canary", &["prague"], Gate::None)];
    let e = errors(&fleet, &pb, &PlanOptions::default());
    assert_eq!(
        e,
        vec![PlanError::SiteInNoStage {
            site: "tokyo".into()
        }]
    );
    pb.rollout
        .stages
        .push(stage("wave-1", &["tokyo", "PRAGUE"], Gate::Approval));
    let e = errors(&fleet, &pb, &PlanOptions::default());
    assert_eq!(
        e,
        vec![PlanError::SiteInTwoStages {
            site: "prague".into(),
            first: "canary".into(),
            second: "wave-1".into()
        }]
    );
    // Limited to prague, tokyo's stage is dropped with it.
    pb.rollout.stages.pop();
    pb.rollout
        .stages
        .push(stage("wave-1", &["tokyo"], Gate::Approval));
    let p = plan(
        &fleet,
        &pb,
        &PlanOptions {
            limit: vec!["prague".into()],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(p.stages.len(), 1);
}

#[test]
fn stopping_a_node_that_owns_groups_is_refused() {
    let fleet = two_node_e3();
    let mut pb = e3_cluster(&fleet);
    // Without the evacuation of the other nodes, SEA-N1 still owns the cluster group.
    pb.phases[6].steps.retain(|s| s.id.as_str() != "evacuate");
    let e = errors(&fleet, &pb, &PlanOptions::default());
    assert!(e.iter().any(|e| matches!(e,
        PlanError::NodeStillOwns { node, group, .. } if node == "SEA-N1" && group == "Cluster Group")),
        "{e:#?}");
}

#[test]
fn evs_upgrade_on_an_old_node_is_refused() {
    let fleet = four_node_e3();
    let mut pb = e3_cluster(&fleet);
    // Move the EVS to a node that is not upgraded yet before the upgrade (T2).
    if let ActionSpec::MoveGroup { to, .. } = &mut pb.phases[5].steps[0].action {
        *to = "{{ peer }}".into();
    }
    let e = errors(&fleet, &pb, &PlanOptions::default());
    assert!(
        e.iter().any(|e| matches!(e, PlanError::NotUpgraded { .. })),
        "{e:#?}"
    );
}

#[test]
fn e5_refuses_moves_and_all_nodes_refuses_changes() {
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
    pb.phases.push(phase(
        "Failover",
        Scope::EachVirtualServer,
        vec![step(
            "fo",
            "fo",
            "x",
            ActionSpec::FailoverTest {
                group: "{{ group }}".into(),
            },
        )],
    ));
    pb.phases.push(phase(
        "Everything at once",
        Scope::AllNodes,
        vec![step("reboot", "reboot", "x", ActionSpec::Reboot)],
    ));
    let e = errors(&fleet, &pb, &PlanOptions::default());
    assert!(
        e.iter()
            .any(|e| matches!(e, PlanError::MoveWithoutFailover { .. })),
        "{e:#?}"
    );
    assert!(e.contains(&PlanError::ChangeOnAllNodes {
        step: "reboot".into(),
        action: "reboot"
    }));
}

#[test]
fn scopes_and_owner_overrides_are_checked() {
    let fleet = two_node_e3();
    let mut pb = e3_cluster(&fleet);
    pb.phases.push(phase("Hosts", Scope::EachHost, vec![]));
    let opts = PlanOptions {
        owners: [
            ("NoSuchGroup".to_owned(), "SEA-N1".to_owned()),
            ("SEAEVS1 Group".to_owned(), "PRG-N9".to_owned()),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    let e = errors(&fleet, &pb, &opts);
    assert!(e
        .iter()
        .any(|e| matches!(e, PlanError::ScopeNotForShape { scope, .. } if scope == "each-host")));
    assert!(e.contains(&PlanError::UnknownOwnerGroup {
        group: "NoSuchGroup".into()
    }));
    assert!(
        e.iter()
            .any(|e| matches!(e, PlanError::OwnerNotNode { owner, .. } if owner == "PRG-N9")),
        "{e:#?}"
    );
}

#[test]
fn pool_without_pool_phase_is_refused() {
    let fleet = crate::procedures::front_back_fleet(FrontEndScope::Organisation);
    let mut pb = e3_front_back();
    pb.phases.retain(|p| p.scope != Scope::Pool);
    let e = errors(&fleet, &pb, &PlanOptions::default());
    assert_eq!(
        e,
        vec![PlanError::PoolWithoutPoolPhase {
            pool: "PRG-OWA".into()
        }]
    );
}

#[test]
fn back_ends_alone_need_front_ends_done() {
    let mut fleet = crate::procedures::front_back_fleet(FrontEndScope::Organisation);
    let pb = e3_front_back();
    let only_be = PlanOptions {
        limit: vec!["PRG-EXC01".into()],
        ..Default::default()
    };
    let e = errors(&fleet, &pb, &only_be);
    let left: Vec<&str> = e
        .iter()
        .filter_map(|x| match x {
            PlanError::FrontEndLeftBehind {
                front_end,
                back_end,
                rule,
            } => {
                assert_eq!((back_end.as_str(), rule.as_str()), ("PRG-EXC01", "E3-FB"));
                Some(front_end.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(left, vec!["PRG-FE01", "PRG-FE02", "PRG-FE03", "SEA-FE01"]);
    // Once the inventory shows the front-ends at the target, the back-end may go alone.
    for h in &mut fleet.hosts {
        if let Some(x) = h.exchange.as_mut().filter(|x| x.role == Role::FrontEnd) {
            x.build = Some(pb.target.as_ref().unwrap().build);
        }
    }
    assert!(plan(&fleet, &pb, &only_be).is_ok());
    // Per-site scope: only the site's own front-ends count.
    let mut fleet = crate::procedures::front_back_fleet(FrontEndScope::Site);
    fleet
        .hosts
        .iter_mut()
        .find(|h| h.name.as_str() == "SEA-FE01")
        .unwrap()
        .exchange
        .as_mut()
        .unwrap()
        .build = None;
    let e = errors(&fleet, &pb, &only_be);
    assert_eq!(e.len(), 3, "{e:#?}");
}

#[test]
fn owner_overrides_of_shared_group_names() {
    // Two clusters both call their cluster group `Cluster Group` (as the lab does); live
    // discovery keyed by group name keeps one owner: it applies where it names a node.
    let fleet = FleetBuilder::new()
        .site("prague", Locale::CS_CZ)
        .cluster(
            "PRGCL1",
            "prague",
            Product::Exchange2003,
            ClusterMode::ActivePassive,
            &["PRG-N1", "PRG-N2"],
            "PRG-N1",
            &[("PRGEVS1", "PRGEVS1 Group", "PRG-N1")],
        )
        .cluster(
            "PRGCL2",
            "prague",
            Product::Exchange2003,
            ClusterMode::ActivePassive,
            &["PRG-N3", "PRG-N4"],
            "PRG-N3",
            &[("PRGEVS2", "PRGEVS2 Group", "PRG-N3")],
        )
        .build();
    let pb = e3_cluster(&fleet);
    let with = |pairs: &[(&str, &str)]| PlanOptions {
        owners: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    // PRG-N2 owns PRGCL1's cluster group now: PRG-N1 becomes the first node there, PRGCL2 keeps
    // its inventory owners.
    let p = plan(
        &fleet,
        &pb,
        &with(&[("Cluster Group", "PRG-N2"), ("PRGEVS1 Group", "PRG-N2")]),
    )
    .unwrap();
    assert_eq!(p.steps[4].id, "PRG-N1/stage-iis-hotfix");
    assert_eq!(p.steps[6].id, "PRG-N1/evacuate");
    assert!(p.step("PRG-N4/iis-hotfix").unwrap().0 < p.step("PRG-N3/iis-hotfix").unwrap().0);
    // Qualified keys say which cluster.
    let q = plan(
        &fleet,
        &pb,
        &with(&[
            ("PRGCL1/Cluster Group", "PRG-N2"),
            ("PRGEVS1 Group", "PRG-N2"),
        ]),
    )
    .unwrap();
    assert_eq!(q.steps, p.steps);
    let e = errors(&fleet, &pb, &with(&[("PRGCL2/Cluster Group", "PRG-N1")]));
    assert_eq!(
        e[0].to_string(),
        "owner `PRG-N1` of group `PRGCL2/Cluster Group` is not a node of cluster `PRGCL2`"
    );
    let e = errors(&fleet, &pb, &with(&[("Cluster Group", "XYZ-N1")]));
    assert_eq!(
        e[0].to_string(),
        "owner `XYZ-N1` of group `Cluster Group` is not a node of any cluster that has that group"
    );
}

#[test]
fn a_cluster_service_left_stopped_is_refused() {
    let fleet = two_node_e3();
    let mut pb = e3_cluster(&fleet);
    pb.phases[6]
        .steps
        .retain(|s| s.id.as_str() != "start-clussvc");
    let e = errors(&fleet, &pb, &PlanOptions::default());
    assert!(
        e.contains(&PlanError::NeverRestarted {
            step: "SEA-N1/stop-clussvc".into(),
            unit: "SEACL1".into(),
            node: "SEA-N1".into()
        }),
        "{e:#?}"
    );
    // The failover test cannot visit a node whose Cluster service is down.
    assert!(
        e.iter()
            .any(|x| matches!(x, PlanError::NodeDown { step, node, .. }
        if step == "failover-test" && node == "SEA-N1")),
        "{e:#?}"
    );
}

#[test]
fn a_playbook_without_the_evs_upgrade_is_refused() {
    let fleet = two_node_e3();
    let mut pb = e3_cluster(&fleet);
    pb.phases[5]
        .steps
        .retain(|s| s.id.as_str() != "upgrade-evs");
    let e = errors(&fleet, &pb, &PlanOptions::default());
    assert!(
        e.iter().any(|x| matches!(
            x,
            PlanError::RuleBroken { rule, .. } if rule == "E3-CLUSTER.11"
        )),
        "{e:#?}"
    );
    // A hotfix needs no EVS upgrade: the same playbook is fine then.
    pb.target.as_mut().unwrap().kind = PackageKind::Hotfix;
    assert!(plan(&fleet, &pb, &PlanOptions::default()).is_ok());
}

#[test]
fn a_stage_step_needs_a_sha256_and_a_local_destination() {
    let fleet = two_node_e3();
    let mut pb = e3_cluster(&fleet);
    let p = pb
        .phases
        .iter()
        .position(|ph| ph.steps.iter().any(|s| s.id.as_str() == "install-sp"))
        .unwrap();
    let stage = |id: &str, sha256: String, dest: &str| {
        step(
            id,
            "Copy the service pack",
            "STAGE",
            ActionSpec::Stage {
                source: "/srv/packages/update.exe".into(),
                sha256,
                dest: dest.into(),
            },
        )
    };
    pb.phases[p]
        .steps
        .insert(0, stage("stage-short", "abc".into(), r"C:\p\update.exe"));
    pb.phases[p].steps.insert(
        1,
        stage("stage-share", "a".repeat(64), r"\\fs01\p\update.exe"),
    );
    let text: Vec<String> = errors(&fleet, &pb, &PlanOptions::default())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        text.iter()
            .any(|t| t.contains("stage-short") && t.contains("64 hex digits")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("stage-share") && t.contains("never a share")),
        "{text:#?}"
    );
}
