//! Live discovery and its differences with the inventory.

use lockstep_actions::discover;
use lockstep_actions::render as r;
use lockstep_core::{Edition, Name, Version};

use crate::scripted::*;

fn hosts() -> Vec<Name> {
    [FE, N1, N2]
        .iter()
        .map(|h| Name::host(h).unwrap())
        .collect()
}

#[tokio::test]
async fn discovery_agreeing_with_the_inventory_has_no_differences() {
    let t = Scripted::new();
    script_build(&t, FE, vec![reg_build(SP1, "Standard")]);
    script_build(&t, N1, vec![reg_build(SP1, "Enterprise")]);
    // Already past the inventory's build (an earlier run): progress, not a difference.
    script_build(&t, N2, vec![reg_build(SP2, "Enterprise")]);
    for h in [FE, N1, N2] {
        script_os(&t, h, vec![os("20261121081131.000000+060")]);
    }
    t.on_run(N1, r::SC_QUERY_CLUSSVC, vec![sc(4)]);
    t.on_run(N2, r::SC_QUERY_CLUSSVC, vec![sc(4)]);
    script_owners(
        &t,
        N1,
        vec![owners(&[(CLUSTER_GROUP, N1), (EVS_GROUP, "prg-n1")])],
    );
    let f = fleet();
    let d = discover(&t, &f, &hosts()).await;
    assert!(d.unreachable.is_empty(), "{:?}", d.unreachable);
    assert_eq!(d.nodes.len(), 3);
    assert_eq!(d.nodes[N1].build, Some(Version::new(6, 5, 7226, 6)));
    assert_eq!(d.nodes[N1].edition, Some(Edition::Enterprise));
    assert_eq!(d.nodes[N1].cluster_service, Some(true));
    assert_eq!(d.nodes[FE].cluster_service, None);
    assert_eq!(
        d.nodes[FE].boot_time.as_deref(),
        Some("20261121081131.000000+060")
    );
    // Keyed by cluster: every cluster has its own `Cluster Group`.
    assert_eq!(
        d.owners
            .get(&format!("PRGCL1/{EVS_GROUP}"))
            .map(String::as_str),
        Some("prg-n1")
    );
    assert_eq!(d.differences(&f, &hosts()), Vec::<String>::new());
}

#[tokio::test]
async fn discovery_reports_build_edition_owner_differences_and_unreachable_hosts() {
    let t = Scripted::new();
    script_build(&t, FE, vec![unreachable(FE)]);
    // N1 runs an older build than the inventory says (RTM for SP1): a difference. A newer one
    // would be progress (an earlier run), not a difference.
    script_build(&t, N1, vec![reg_build("6.5.6944.4", "Enterprise")]);
    script_build(&t, N2, vec![reg_build(SP1, "Standard")]);
    for h in [N1, N2] {
        script_os(&t, h, vec![os("20261121081131.000000+060")]);
    }
    // N1's Cluster service is down: the owners are asked of N2.
    t.on_run(N1, r::SC_QUERY_CLUSSVC, vec![sc(1)]);
    t.on_run(N2, r::SC_QUERY_CLUSSVC, vec![sc(4)]);
    script_owners(
        &t,
        N2,
        vec![owners(&[(CLUSTER_GROUP, N2), (EVS_GROUP, N2)])],
    );
    let f = fleet();
    let d = discover(&t, &f, &hosts()).await;
    assert_eq!(d.unreachable.len(), 1);
    assert_eq!(d.unreachable[0].0, FE);
    assert_eq!(d.nodes[N1].cluster_service, Some(false));
    assert!(!t
        .sent()
        .iter()
        .any(|l| l.starts_with("PRG-N1> WQL root/MSCluster")));
    let diffs = d.differences(&f, &hosts());
    // Owners that moved (a failover) are live planning inputs, not differences.
    assert_eq!(diffs.len(), 2, "{diffs:#?}");
    assert!(diffs[0].contains("`PRG-N1`") && diffs[0].contains("older 6.5.6944.4"));
    assert!(diffs[1].contains("`PRG-N2`") && diffs[1].contains("edition"));
}

#[tokio::test]
async fn a_missing_group_and_a_split_active_passive_cluster_are_differences() {
    let t = Scripted::new();
    script_build(&t, N1, vec![reg_build(SP1, "Enterprise")]);
    script_build(&t, N2, vec![reg_build(SP1, "Enterprise")]);
    for h in [N1, N2] {
        script_os(&t, h, vec![os("20261121081131.000000+060")]);
    }
    t.on_run(N1, r::SC_QUERY_CLUSSVC, vec![sc(4)]);
    t.on_run(N2, r::SC_QUERY_CLUSSVC, vec![sc(4)]);
    // The EVS group is missing from the cluster's answer.
    script_owners(&t, N1, vec![owners(&[(CLUSTER_GROUP, N1)])]);
    let mut f = fleet();
    let only_nodes = vec![Name::host(N1).unwrap(), Name::host(N2).unwrap()];
    let d = discover(&t, &f, &only_nodes).await;
    let diffs = d.differences(&f, &only_nodes);
    assert_eq!(diffs.len(), 1, "{diffs:#?}");
    assert!(
        diffs[0].contains("`EVS1 Group` was not found"),
        "{diffs:#?}"
    );

    // An active/passive cluster of two nodes whose two EVSs run one on each node has no passive
    // node: it disagrees with the inventory.
    let mut second = f.clusters[0].virtual_servers[0].clone();
    second.name = Name::object("EVS2").unwrap();
    second.group = Name::object("EVS2 Group").unwrap();
    f.clusters[0].virtual_servers.push(second);
    let mut d = d;
    d.owners
        .insert(format!("PRGCL1/{EVS_GROUP}"), N1.to_owned());
    d.owners
        .insert("PRGCL1/EVS2 Group".to_owned(), N2.to_owned());
    let diffs = d.differences(&f, &only_nodes);
    assert_eq!(diffs.len(), 1, "{diffs:#?}");
    assert!(diffs[0].contains("no node is passive"), "{diffs:#?}");
}

#[tokio::test]
async fn a_cluster_without_an_answering_node_is_listed_unreachable() {
    let t = Scripted::new();
    script_build(&t, N1, vec![reg_build(SP1, "Enterprise")]);
    script_os(&t, N1, vec![os("20261121081131.000000+060")]);
    t.on_run(N1, r::SC_QUERY_CLUSSVC, vec![sc(1)]);
    let f = fleet();
    let only_n1 = vec![Name::host(N1).unwrap()];
    let d = discover(&t, &f, &only_n1).await;
    assert!(d
        .unreachable
        .iter()
        .any(|(c, why)| c == "PRGCL1" && why.contains("`PRGCL1`")));
    assert!(d.differences(&f, &only_n1).is_empty());
}
