//! Stages that name no site: counts of sites in the inventory's rollout order, inventory groups,
//! host lists, what is left (`rest`), and a failure budget per stage.

use std::collections::BTreeSet;

use lockstep_core::*;
use lockstep_plan::{plan, PlanError, PlanOptions};

use crate::fixtures::*;

/// Three sites (by name: alpha, bravo, charlie), each with two standalone Exchange 2003 servers
/// and bravo with a two-node cluster; rollout order charlie, alpha, then bravo (no order).
fn fleet() -> Fleet {
    let mut f = FleetBuilder::new()
        .site("alpha", Locale::EN_US)
        .site("bravo", Locale::EN_US)
        .site("charlie", Locale::EN_US)
        .host(
            "A1",
            "alpha",
            Role::Standalone,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .host(
            "A2",
            "alpha",
            Role::Standalone,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .host(
            "B1",
            "bravo",
            Role::Standalone,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .host(
            "B2",
            "bravo",
            Role::Sbs,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .host(
            "C1",
            "charlie",
            Role::Standalone,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .host(
            "C2",
            "charlie",
            Role::Standalone,
            Product::Exchange2003,
            WindowsRelease::Windows2003,
        )
        .build();
    for s in &mut f.sites {
        s.rollout_order = match s.name.as_str() {
            "charlie" => Some(1),
            "alpha" => Some(2),
            _ => None,
        };
    }
    // An inventory group of one server in bravo and one in alpha.
    f.groups
        .insert(name_i("pilot"), vec![name_h("B2"), name_h("A1")]);
    f
}

fn with_stages(stages: Vec<Stage>) -> Playbook {
    let mut pb = standalone(Kb::E3Standalone);
    pb.rollout.stages = stages;
    pb.rollout.max_parallel_sites = 2;
    pb
}

fn counted(name: &str, n: u32) -> Stage {
    let mut s = stage(name, &[], Gate::None);
    s.site_count = Some(n);
    s
}

fn rest(name: &str) -> Stage {
    let mut s = stage(name, &[], Gate::Approval);
    s.rest = true;
    s
}

/// The hosts of each planned stage, by stage name.
fn hosts_by_stage(p: &Plan) -> Vec<(String, BTreeSet<String>)> {
    p.stages
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let hosts = p
                .steps
                .iter()
                .filter(|s| s.stage == i)
                .map(|s| s.host.to_string())
                .collect();
            (st.name.clone(), hosts)
        })
        .collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn counted_stages_take_sites_in_rollout_order_then_by_name() {
    let p = plan(
        &fleet(),
        &with_stages(vec![counted("canary", 1), counted("next", 1), rest("rest")]),
        &PlanOptions::default(),
    )
    .unwrap();
    assert_eq!(
        hosts_by_stage(&p),
        vec![
            ("canary".to_owned(), set(&["C1", "C2"])),
            ("next".to_owned(), set(&["A1", "A2"])),
            ("rest".to_owned(), set(&["B1", "B2"])),
        ]
    );
    assert_eq!(p.stages[2].sites, vec![name_i("bravo")]);
    assert_eq!(p.stages[2].gate, Gate::Approval);
}

#[test]
fn a_count_skips_sites_another_stage_names() {
    // `next` names charlie, so the count takes alpha (the next in rollout order) and `rest` is
    // left with bravo.
    let p = plan(
        &fleet(),
        &with_stages(vec![
            counted("canary", 1),
            stage("next", &["charlie"], Gate::None),
            rest("rest"),
        ]),
        &PlanOptions::default(),
    )
    .unwrap();
    let got = hosts_by_stage(&p);
    assert_eq!(got[0], ("canary".to_owned(), set(&["A1", "A2"])));
    assert_eq!(got[1], ("next".to_owned(), set(&["C1", "C2"])));
    assert_eq!(got[2], ("rest".to_owned(), set(&["B1", "B2"])));
}

#[test]
fn group_and_host_stages_take_their_units_wherever_they_are() {
    let mut by_host = stage("one", &[], Gate::None);
    by_host.hosts = vec![name_h("C2")];
    let mut by_group = stage("pilot", &[], Gate::None);
    by_group.groups = vec![name_i("pilot")];
    let p = plan(
        &fleet(),
        &with_stages(vec![by_group, by_host, rest("rest")]),
        &PlanOptions::default(),
    )
    .unwrap();
    let got = hosts_by_stage(&p);
    assert_eq!(got[0], ("pilot".to_owned(), set(&["A1", "B2"])));
    // Sites of a group stage in fleet order.
    assert_eq!(p.stages[0].sites, vec![name_i("alpha"), name_i("bravo")]);
    assert_eq!(got[1], ("one".to_owned(), set(&["C2"])));
    assert_eq!(got[2], ("rest".to_owned(), set(&["A2", "B1", "C1"])));
}

#[test]
fn a_cluster_goes_with_any_of_its_nodes() {
    let fleet = FleetBuilder::new()
        .site("alpha", Locale::EN_US)
        .site("bravo", Locale::EN_US)
        .cluster(
            "ACL",
            "alpha",
            Product::Exchange2003,
            ClusterMode::ActivePassive,
            &["A-N1", "A-N2"],
            "A-N1",
            &[("AEVS", "AEVS Group", "A-N1")],
        )
        .cluster(
            "BCL",
            "bravo",
            Product::Exchange2003,
            ClusterMode::ActivePassive,
            &["B-N1", "B-N2"],
            "B-N1",
            &[("BEVS", "BEVS Group", "B-N1")],
        )
        .build();
    let mut pb = e3_cluster(&fleet);
    let mut first = stage("first", &[], Gate::None);
    first.hosts = vec![name_h("B-N2")];
    pb.rollout.stages = vec![first, rest("rest")];
    let p = plan(&fleet, &pb, &PlanOptions::default()).unwrap();
    let got = hosts_by_stage(&p);
    assert_eq!(got[0], ("first".to_owned(), set(&["B-N1", "B-N2"])));
    assert_eq!(got[1], ("rest".to_owned(), set(&["A-N1", "A-N2"])));
}

#[test]
fn a_stage_keeps_its_own_failure_budget() {
    let mut canary = counted("canary", 1);
    canary.failure_budget = Some(FailureBudget {
        max_failed_hosts: 0,
    });
    let mut pb = with_stages(vec![canary, rest("rest")]);
    pb.rollout.failure_budget = FailureBudget {
        max_failed_hosts: 2,
    };
    let p = plan(&fleet(), &pb, &PlanOptions::default()).unwrap();
    assert_eq!(
        p.stages[0].failure_budget,
        Some(FailureBudget {
            max_failed_hosts: 0
        })
    );
    assert_eq!(p.stages[1].failure_budget, None);
    assert_eq!(p.failure_budget.max_failed_hosts, 2);
}

#[test]
fn units_no_stage_takes_are_refused_and_unknown_groups_named() {
    let mut by_group = stage("pilot", &[], Gate::None);
    by_group.groups = vec![name_i("nosuchgroup")];
    let e = plan(
        &fleet(),
        &with_stages(vec![by_group, counted("one", 1)]),
        &PlanOptions::default(),
    )
    .unwrap_err();
    assert!(e.0.contains(&PlanError::UnknownStageMember {
        stage: "pilot".to_owned(),
        what: "group",
        name: "nosuchgroup".to_owned(),
    }));
    // `one` takes charlie; alpha and bravo are in no stage.
    for site in ["alpha", "bravo"] {
        assert!(
            e.0.contains(&PlanError::SiteInNoStage {
                site: site.to_owned()
            }),
            "{e:?}"
        );
    }
}

/// The node order a playbook declares (`node_order:`) replaces its procedure's.
mod node_order {
    use super::*;

    /// One cluster, nodes in inventory order N-C, N-B, N-A; N-C owns nothing, N-A the cluster
    /// group, N-B both virtual servers.
    fn fleet() -> Fleet {
        let mut f = FleetBuilder::new()
            .site("alpha", Locale::EN_US)
            .cluster(
                "CL",
                "alpha",
                Product::Exchange2003,
                ClusterMode::ActivePassive,
                &["N-C", "N-B", "N-A"],
                "N-A",
                &[("EVS1", "EVS1 Group", "N-B"), ("EVS2", "EVS2 Group", "N-B")],
            )
            .build();
        f.clusters[0].cluster_group_owner = name_h("N-A");
        f
    }

    /// The nodes in the order their installs are planned.
    fn install_order(order: Option<NodeOrderKind>) -> Vec<String> {
        let fleet = fleet();
        let mut pb = e3_cluster(&fleet);
        pb.rollout.stages = Vec::new();
        pb.shape.node_order = order;
        let p = plan(&fleet, &pb, &PlanOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        p.steps
            .iter()
            .filter(|s| s.spec.as_str() == "install-sp")
            .map(|s| s.host.to_string())
            .collect()
    }

    #[test]
    fn the_procedures_order_when_none_is_declared() {
        // E3-CLUSTER: the passive node first, the others in inventory order.
        assert_eq!(install_order(None), ["N-C", "N-B", "N-A"]);
        assert_eq!(
            install_order(Some(NodeOrderKind::PassiveFirst)),
            ["N-C", "N-B", "N-A"]
        );
    }

    #[test]
    fn by_name() {
        assert_eq!(
            install_order(Some(NodeOrderKind::ByName)),
            ["N-A", "N-B", "N-C"]
        );
    }

    #[test]
    fn fewest_groups_first() {
        // N-C owns none, N-A one (the cluster group), N-B two (the virtual servers).
        assert_eq!(
            install_order(Some(NodeOrderKind::FewestGroupsFirst)),
            ["N-C", "N-A", "N-B"]
        );
    }
}
