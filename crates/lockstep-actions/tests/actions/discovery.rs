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

fn windows_2003() -> Reply {
    out(
        0,
        "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\r\n    ProductName    REG_SZ    Microsoft Windows Server 2003\r\n    CurrentVersion    REG_SZ    5.2\r\n    CurrentBuildNumber    REG_SZ    3790\r\n",
    )
}

fn rows(pairs: &[&[(&str, &str)]]) -> Reply {
    Reply::Rows(
        pairs
            .iter()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .collect(),
    )
}

/// Every built-in probe on a node that answers them all; for `lockstep facts` a host without an
/// Exchange key is read (the probe noted unread) while a run's discovery stops at it; a host
/// rejecting the credentials is unreachable with that kind.
#[tokio::test]
async fn facts_read_every_probe_and_tell_unread_from_unreachable() {
    use lockstep_actions::{discover_with, BuiltinProbe, UnreachableKind};
    let t = Scripted::new();
    for h in [FE, N1] {
        t.on_run(h, r::REG_WINDOWS_VERSION, vec![windows_2003()]);
        script_os(&t, h, vec![os("20261121081131.000000+060")]);
        t.on_run(h, r::REG_PENDING_REBOOT, vec![err_out(1, "ERROR: ...")]);
        t.on_wql(
            h,
            r::NS_CIMV2,
            r::WQL_FIXED_DISKS,
            vec![rows(&[&[
                ("DeviceID", "C:"),
                ("FreeSpace", "1073741824"),
                ("Size", "2147483648"),
            ]])],
        );
        t.on_wql(
            h,
            r::NS_CIMV2,
            r::WQL_HOTFIXES,
            vec![rows(&[
                &[("HotFixID", "KB831464")],
                &[("HotFixID", "KB123456")],
            ])],
        );
    }
    script_build(&t, N1, vec![reg_build(SP2, "Enterprise")]);
    t.on_run(
        N1,
        r::REG_PENDING_REBOOT,
        vec![out(
            0,
            "    PendingFileRenameOperations    REG_MULTI_SZ    x",
        )],
    );
    t.on_run(N1, r::SC_QUERY_CLUSSVC, vec![sc(4)]);
    script_owners(
        &t,
        N1,
        vec![owners(&[(CLUSTER_GROUP, N1), (EVS_GROUP, N2)])],
    );
    // FE has no Exchange key (exit 1); N2 rejects the credentials.
    script_build(
        &t,
        FE,
        vec![err_out(
            1,
            "ERROR: The system was unable to find the specified registry key or value.",
        )],
    );
    let rejected = Reply::Err(lockstep_core::TransportError::AuthRejected {
        host: Name::host(N2).unwrap(),
        user: "CONTOSO\\svc".into(),
    });
    t.on_run(N2, r::REG_WINDOWS_VERSION, vec![rejected.clone()]);
    script_build(&t, N2, vec![rejected]);

    let f = fleet();
    let d = discover_with(&t, &f, &hosts(), &BuiltinProbe::ALL).await;
    let n1 = &d.nodes[N1];
    assert_eq!(n1.windows.as_ref().unwrap().full(), "5.2.3790");
    assert_eq!(n1.build, Some(SP2.parse().unwrap()));
    assert_eq!(n1.cluster_service, Some(true));
    assert_eq!(n1.pending_restart, Some(true));
    assert_eq!(n1.disks.as_ref().unwrap()[0].free_bytes, 1 << 30);
    assert_eq!(n1.hotfixes.as_deref().unwrap(), ["KB123456", "KB831464"]);
    assert!(n1.unread.is_empty(), "{:?}", n1.unread);
    let fe = &d.nodes[FE];
    assert_eq!((fe.build, fe.pending_restart), (None, Some(false)));
    assert!(
        fe.unread["exchange"].contains("no Exchange build"),
        "{:?}",
        fe.unread
    );
    assert!(!d.nodes.contains_key(N2));
    assert_eq!(d.unreachable_kinds[N2], UnreachableKind::Credentials);
    // Drift: N1 is past the inventory's build, EVS1 Group is owned by another node.
    let drift = d.drift(&f, &hosts());
    assert!(drift[N1][0].contains("newer 6.5.7638.2"), "{drift:#?}");
    assert!(
        drift["PRGCL1"].iter().any(|l| l.contains("`EVS1 Group`")),
        "{drift:#?}"
    );
    // What the store keeps.
    let facts = d.to_facts(&f, 7);
    let kept = |h: &str, k: &str| {
        facts
            .iter()
            .find(|x| x.host.as_str() == h && x.key == k)
            .map(|x| x.value.clone())
    };
    assert_eq!(kept(N1, "hotfixes").as_deref(), Some("KB123456,KB831464"));
    assert_eq!(
        kept(N1, "disk.C:.free_bytes").as_deref(),
        Some("1073741824")
    );
    assert_eq!(
        kept("PRGCL1", "group.EVS1 Group.owner").as_deref(),
        Some(N2)
    );
    assert!(kept(N2, "unreachable")
        .unwrap()
        .starts_with("credentials: "));
    assert!(facts.iter().all(|x| x.at_ms == 7));

    // A run's discovery reads what it needs and stops at a host without an Exchange build.
    let run = discover(&t, &f, &hosts()).await;
    assert!(run
        .unreachable
        .iter()
        .any(|(h, why)| h == FE && why.contains("no Exchange build")));
}

/// A SOAP fault (an unknown WMI class, say) is the node answering: one probe unread. Faults on
/// every probe make the host unreachable.
#[tokio::test]
async fn a_fault_on_one_probe_is_unread_faults_on_all_are_unreachable() {
    use lockstep_actions::{discover_with, BuiltinProbe, UnreachableKind};
    let t = Scripted::new();
    t.on_run(FE, r::REG_WINDOWS_VERSION, vec![windows_2003()]);
    let fe_only = vec![Name::host(FE).unwrap()];
    let probes = [BuiltinProbe::Windows, BuiltinProbe::FreeDisk];
    let f = fleet();
    // The disk query is unscripted: the scripted transport answers it with a protocol fault.
    let d = discover_with(&t, &f, &fe_only, &probes).await;
    assert!(d.unreachable.is_empty(), "{:?}", d.unreachable);
    assert!(
        d.nodes[FE].unread.contains_key("free-disk"),
        "{:?}",
        d.nodes[FE]
    );
    let d = discover_with(
        &t,
        &f,
        &fe_only,
        &[BuiltinProbe::FreeDisk, BuiltinProbe::Hotfixes],
    )
    .await;
    assert_eq!(d.unreachable_kinds[FE], UnreachableKind::Protocol, "{d:?}");
}
