//! The model at scale and on the other KB procedures: 2,000 hosts installing at once,
//! E2-ACTIVE-PASSIVE (Exchange 2000) and E5-CLUSTER (Exchange 5.5).

mod model_support;

use std::collections::BTreeMap;

use lockstep_core::{Fleet, FrontEndScope, Locale, Name, Product, Role, Site, Version};
use lockstep_lab::backend::Backend;
use lockstep_lab::verify::verify;
use model_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_standalone_hosts_install_at_once() {
    let hosts = (0..2000)
        .map(|i| {
            host(
                &format!("S{i:04}"),
                "s",
                Role::Standalone,
                Product::Exchange2003,
                SP1,
            )
        })
        .collect();
    let fleet = Fleet {
        organisation: "Scale".into(),
        sites: vec![Site {
            name: Name::ident("s").unwrap(),
            locale: Locale::EN_US,
            description: None,
            rollout_order: None,
        }],
        hosts,
        clusters: vec![],
        pools: vec![],
        groups: BTreeMap::new(),
        front_end_scope: FrontEndScope::Organisation,
    };
    let w = world(&fleet, fast());
    assert_eq!(w.hosts().len(), 2000);
    let mut tasks = Vec::new();
    for i in 0..2000 {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            let h = format!("S{i:04}");
            ok(&w, &h, "net stop \"McShield\"").await;
            run(&w, &h, &format!("\"{SP2_PACKAGE}\" /q /z")).await.code
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 0);
    }
    let snap = w.snapshot();
    assert!(snap
        .hosts
        .iter()
        .all(|h| h.build == SP2 && h.installing == 0));
    assert_eq!(verify(&w.recorder().records()), vec![]);
}

/// Exchange 2000 active/passive: the passive node first, then the groups move to it and the
/// new store upgrades the virtual server as it comes online (E2-ACTIVE-PASSIVE).
#[tokio::test]
async fn e2_active_passive() {
    let sp3 = Version::new(6, 0, 6249, 0);
    let mut fleet = cluster_fleet(2, 1, Locale::IT_IT);
    for h in &mut fleet.hosts {
        let x = h.exchange.as_mut().unwrap();
        x.product = Product::Exchange2000;
        x.build = Some(Product::Exchange2000.rtm());
    }
    fleet.clusters[0].virtual_servers[0].build = Some(Product::Exchange2000.rtm());
    let w = world(&fleet, fast());
    let pkg = r#""\\fs01\install$\E2KSP3\setup\i386\update.exe" /q"#;
    // 1. Node B (passive).
    ok(&w, "N2", "net stop \"McShield\"").await;
    ok(&w, "N2", "net stop clussvc").await;
    ok(&w, "N2", pkg).await;
    ok(&w, "N2", "net start clussvc").await;
    // 2. The Exchange group and the cluster group move to node B: the EVS is upgraded online.
    ok(
        &w,
        "N1",
        "cluster group \"EVS1 Group\" /moveto:N2 /wait:120",
    )
    .await;
    ok(
        &w,
        "N1",
        "cluster group \"Cluster Group\" /moveto:N2 /wait:120",
    )
    .await;
    let snap = w.snapshot();
    let g = snap.group("EVS1 Group").unwrap();
    assert_eq!(g.evs_version, Some(sp3));
    assert!(g.resources.values().all(|s| s == "online"));
    // 3. Node A, now passive, with its Cluster service stopped.
    ok(&w, "N1", "net stop \"McShield\"").await;
    ok(&w, "N1", "net stop clussvc").await;
    ok(&w, "N1", pkg).await;
    ok(&w, "N1", "net start clussvc").await;
    assert_eq!(verify(&w.recorder().records()), vec![]);
}

/// Exchange 5.5: the active node first with its group online, then the passive (E5-CLUSTER).
#[tokio::test]
async fn e5_cluster_installs_on_the_active_node_with_its_group_online() {
    let sp4 = Version::new(5, 5, 2653, 0);
    let mut fleet = cluster_fleet(2, 1, Locale::NL_NL);
    for h in &mut fleet.hosts {
        h.windows = Some(lockstep_core::WindowsRelease::Windows2000);
        let x = h.exchange.as_mut().unwrap();
        x.product = Product::Exchange55;
        x.build = Some(Product::Exchange55.rtm());
    }
    fleet.clusters[0].virtual_servers[0].build = Some(Product::Exchange55.rtm());
    let w = world(&fleet, fast());
    let pkg = r#""\\fs01\install$\EX55SP4\server\i386\update.exe" -s"#;
    for node in ["N1", "N2"] {
        ok(&w, node, "net stop \"McShield\"").await;
        ok(&w, node, pkg).await;
    }
    let snap = w.snapshot();
    assert!(snap.hosts.iter().all(|h| h.build == sp4));
    assert_eq!(snap.group("EVS1 Group").unwrap().owner, "N1");
    // The IIS 6.0 hotfix does not apply to Windows 2000.
    assert_eq!(
        run(&w, "N1", &format!("\"{IIS_PACKAGE}\" /quiet"))
            .await
            .code,
        1642
    );
    assert_eq!(verify(&w.recorder().records()), vec![]);
}
