//! Deliberately broken plans: the checkers must catch them (they can fail).

use lockstep_core::*;
use lockstep_plan::{check_rules, plan, PlanOptions};

use crate::fixtures::*;
use crate::procedures::{four_node_e3, front_back_fleet};

fn rules(p: &Plan, f: &Fleet) -> Vec<String> {
    let mut r: Vec<String> = check_rules(p, f).into_iter().map(|v| v.rule).collect();
    r.sort();
    r.dedup();
    r
}

#[test]
fn overlapping_windows_are_caught() {
    let fleet = four_node_e3();
    let mut p = plan(&fleet, &e3_cluster(&fleet), &PlanOptions::default()).unwrap();
    assert!(check_rules(&p, &fleet).is_empty());
    // PRG-N4 no longer waits for PRG-N2: both may be out of service at once.
    let (i, _) = p.step("PRG-N4/evacuate").unwrap();
    p.steps[i].after.clear();
    let r = rules(&p, &fleet);
    assert!(r.iter().any(|x| x == "E3-C1"), "{r:?}");
    assert!(r.iter().any(|x| x == "E3-CLUSTER.11"), "{r:?}");
}

#[test]
fn unflagged_install_is_caught() {
    let fleet = four_node_e3();
    let mut p = plan(&fleet, &e3_cluster(&fleet), &PlanOptions::default()).unwrap();
    let (i, _) = p.step("PRG-N2/install-sp").unwrap();
    p.steps[i].out_of_service = false;
    assert!(rules(&p, &fleet).iter().any(|x| x == "E3-C1"));
}

#[test]
fn swapped_steps_are_caught() {
    // Swap the first node's install with the EVS upgrade: the upgrade now comes first.
    let fleet = four_node_e3();
    let mut p = plan(&fleet, &e3_cluster(&fleet), &PlanOptions::default()).unwrap();
    let (a, _) = p.step("PRG-N3/install-sp").unwrap();
    let (b, _) = p.step("PRGCL1/PRGEVS1 Group/upgrade-evs").unwrap();
    let (sa, sb) = (p.steps[a].clone(), p.steps[b].clone());
    p.steps[a] = PlannedStep {
        after: sa.after.clone(),
        ..sb
    };
    p.steps[b] = PlannedStep {
        after: sb.after.clone(),
        ..sa
    };
    let r = rules(&p, &fleet);
    assert!(r.iter().any(|x| x == "E3-CLUSTER.11"), "{r:?}");
}

#[test]
fn forward_edge_and_cross_stage_edge_are_caught() {
    let fleet = front_back_fleet(FrontEndScope::Organisation);
    let mut p = plan(&fleet, &e3_front_back(), &PlanOptions::default()).unwrap();
    assert!(check_rules(&p, &fleet).is_empty());
    let last = p.steps.len() - 1;
    p.steps[0].after.push(last);
    let (be, _) = p.step("PRG-EXC01/preflight").unwrap();
    p.steps[be].after.push(0);
    let r = rules(&p, &fleet);
    assert!(r.iter().any(|x| x == "PLAN-DAG"), "{r:?}");
    assert!(r.iter().any(|x| x == "PLAN-STAGE"), "{r:?}");
}

#[test]
fn back_end_in_front_end_stage_is_caught() {
    let fleet = front_back_fleet(FrontEndScope::Organisation);
    let mut p = plan(&fleet, &e3_front_back(), &PlanOptions::default()).unwrap();
    // Move SEA-BE01's chain into the front-end stage, in parallel with the front-ends.
    for s in p.steps.iter_mut().filter(|s| s.host.as_str() == "SEA-BE01") {
        s.stage = 0;
    }
    let r = rules(&p, &fleet);
    assert!(r.iter().any(|x| x == "E3-FB"), "{r:?}");
}

#[test]
fn broken_pool_lockstep_is_caught() {
    let fleet = front_back_fleet(FrontEndScope::Organisation);
    let mut p = plan(&fleet, &e3_front_back(), &PlanOptions::default()).unwrap();
    // FE02's install only waits for its own stop, not FE01's.
    let (i, _) = p.step("PRG-FE02/install-sp").unwrap();
    let (own, _) = p.step("PRG-FE02/stop-nonessential").unwrap();
    p.steps[i].after = vec![own];
    assert_eq!(rules(&p, &fleet), vec!["E3-LB"]);
}

#[test]
fn wrong_order_in_e2_and_e5_is_caught() {
    let fleet_of = |product| {
        FleetBuilder::new()
            .site("milan", Locale::IT_IT)
            .cluster(
                "MILCL1",
                "milan",
                product,
                ClusterMode::ActivePassive,
                &["MIL-N1", "MIL-N2"],
                "MIL-N1",
                &[("MILEVS1", "MILEVS1 Group", "MIL-N1")],
            )
            .build()
    };
    let fleet = fleet_of(Product::Exchange2000);
    // Plan as if MIL-N2 were active (live owner), then check against the inventory: active
    // MIL-N1 now goes first, which E2-ACTIVE-PASSIVE forbids.
    let opts = PlanOptions {
        owners: [
            ("MILEVS1 Group".to_owned(), "MIL-N2".to_owned()),
            ("Cluster Group".to_owned(), "MIL-N2".to_owned()),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    let p = plan(&fleet, &e2_active_passive(), &opts).unwrap();
    assert_eq!(rules(&p, &fleet), vec!["E2-ACTIVE-PASSIVE"]);

    let f5 = fleet_of(Product::Exchange55);
    let p = plan(&f5, &e5_cluster(), &opts).unwrap();
    assert_eq!(rules(&p, &f5), vec!["E5-CLUSTER.2"]);
}
