//! The files that ship load cleanly against each other, and the playbooks keep the KB's rules.

use lockstep_core::{
    ActionSpec, ClusterMode, Edition, Fleet, Invariant, NodeOrderKind, Playbook, PreflightCheck,
    Product, Role, Units,
};
use lockstep_spec::{embedded, load_inventory, load_playbook};

fn fleet() -> Fleet {
    load_inventory(&[embedded::LAB_INVENTORY.source()]).unwrap_or_else(|d| panic!("{d}"))
}

fn playbooks() -> Vec<Playbook> {
    let fleet = fleet();
    embedded::playbooks()
        .iter()
        .map(|f| load_playbook(f, &fleet).unwrap_or_else(|d| panic!("{d}")))
        .collect()
}

fn steps(pb: &Playbook) -> impl Iterator<Item = &lockstep_core::StepSpec> {
    pb.phases.iter().flat_map(|p| p.steps.iter())
}

#[test]
fn every_shipped_playbook_loads_against_the_lab_inventory() {
    let books = playbooks();
    let mut procedures: Vec<&str> = books.iter().map(|p| p.procedure.as_str()).collect();
    procedures.sort();
    procedures.dedup();
    assert_eq!(procedures.len(), 9, "one playbook per procedure");
    for pb in &books {
        let product = match &pb.procedure[..3] {
            "E3-" => Product::Exchange2003,
            "E2-" => Product::Exchange2000,
            _ => Product::Exchange55,
        };
        assert_eq!(
            pb.target.as_ref().unwrap().product,
            product,
            "{}: target product",
            pb.name
        );
        let expected = match pb.target.as_ref().unwrap().product {
            Product::Exchange2003 => "6.5.7638.2",
            Product::Exchange2000 => "6.0.6249.0",
            Product::Exchange55 => "5.5.2653.0",
        };
        assert_eq!(
            pb.target.as_ref().unwrap().build.to_string(),
            expected,
            "{}",
            pb.name
        );
    }
}

/// Each KB procedure's shape, as its playbook declares it (the code knows none of them).
#[test]
fn each_kb_procedure_declares_its_shape_and_invariants() {
    let books = playbooks();
    let by = |id: &str| books.iter().find(|p| p.procedure == id).unwrap();
    for id in [
        "E3-CLUSTER",
        "E2-ACTIVE-PASSIVE",
        "E2-ACTIVE-ACTIVE",
        "E5-CLUSTER",
    ] {
        assert_eq!(by(id).shape.units, Units::Clusters, "{id}");
    }
    for id in ["E3-FB", "E2-FB"] {
        assert_eq!(by(id).shape.tiers, [Role::FrontEnd, Role::BackEnd], "{id}");
        assert_eq!(by(id).invariants[&Invariant::TierOrder], id[..5], "{id}");
    }
    for id in ["E3-NC", "E2-NC"] {
        assert_eq!(by(id).shape.roles, [Role::Standalone, Role::Sbs], "{id}");
    }
    // What the lab can check on a standalone host's record: its installer ran once.
    for id in ["E3-NC", "E2-NC", "E5-NC"] {
        assert!(
            by(id).invariants.contains_key(&Invariant::ExactlyOnce),
            "{id}"
        );
    }
    assert!(by("E5-NC").shape.roles.is_empty());
    // E5-CLUSTER: the active node first, never failing over.
    let e5 = &by("E5-CLUSTER").shape;
    assert_eq!(
        (e5.failover, e5.node_order),
        (false, Some(NodeOrderKind::ActiveFirst))
    );
    let ap = &by("E2-ACTIVE-PASSIVE").shape;
    assert_eq!(
        (ap.cluster_mode, ap.node_order),
        (
            Some(ClusterMode::ActivePassive),
            Some(NodeOrderKind::ActiveLast)
        )
    );
    assert_eq!(
        by("E3-CLUSTER").invariants[&Invariant::VirtualServerUpgrade],
        "E3-CLUSTER.11"
    );
}

#[test]
fn every_playbook_backs_up_first_and_runs_the_general_preflight() {
    for pb in playbooks() {
        let first = &pb.phases[0].steps[0];
        assert_eq!(first.rule, "G1", "{}: G1 backup comes first", pb.name);
        assert!(matches!(first.action, ActionSpec::Confirm { .. }));
        assert!(
            steps(&pb).any(|s| s.rule == "G3" && matches!(s.action, ActionSpec::Confirm { .. })),
            "{}: G3 backup after",
            pb.name
        );
        assert!(
            steps(&pb)
                .any(|s| s.rule == "G5" && matches!(s.action, ActionSpec::StopServices { .. })),
            "{}: G5 stop step",
            pb.name
        );
        let checks: Vec<&PreflightCheck> = steps(&pb)
            .filter_map(|s| match &s.action {
                ActionSpec::Preflight { checks } => Some(checks),
                _ => None,
            })
            .flatten()
            .collect();
        assert!(
            checks.contains(&&PreflightCheck::EditionMatches),
            "{}: E2-ED",
            pb.name
        );
        assert!(
            checks.iter().any(|c| matches!(c, PreflightCheck::NoProcesses { images }
                if ["setup.exe", "update.exe", "xcopy.exe"].iter().all(|i| images.iter().any(|x| x == i)))),
            "{}: G6",
            pb.name
        );
        // Every install of the target package is preceded by a G5 stop of non-essential services
        // (a prerequisite hotfix that restarts the node anyway may come before it).
        for phase in &pb.phases {
            if let Some(i) = phase.steps.iter().position(|s| {
                matches!(
                    &s.action,
                    ActionSpec::Install {
                        prerequisite: None,
                        ..
                    }
                )
            }) {
                let stopped_before = pb
                    .phases
                    .iter()
                    .take_while(|p| !std::ptr::eq(*p, phase))
                    .flat_map(|p| &p.steps)
                    .chain(&phase.steps[..i])
                    .any(|s| s.rule == "G5");
                assert!(
                    stopped_before,
                    "{}: G5 before install in {}",
                    pb.name, phase.name
                );
            }
        }
    }
}

#[test]
fn exchange_2000_packages_leave_conferencing_out() {
    for pb in playbooks()
        .iter()
        .filter(|p| p.target.as_ref().unwrap().product == Product::Exchange2000)
    {
        assert!(
            !pb.target.as_ref().unwrap().editions.is_empty(),
            "{}",
            pb.name
        );
        assert!(
            !pb.target
                .as_ref()
                .unwrap()
                .editions
                .contains(&Edition::Conferencing),
            "{}",
            pb.name
        );
    }
}

#[test]
fn exchange_55_never_restarts_and_reruns_performance_optimizer() {
    for pb in playbooks()
        .iter()
        .filter(|p| p.target.as_ref().unwrap().product == Product::Exchange55)
    {
        for s in steps(pb) {
            if let ActionSpec::Install { reboot, .. } = &s.action {
                assert_eq!(
                    *reboot,
                    lockstep_core::RebootPolicy::Never,
                    "{}: {}",
                    pb.name,
                    s.id
                );
            }
            assert!(
                !matches!(
                    s.action,
                    ActionSpec::EvacuateNode { .. } | ActionSpec::MoveGroup { .. }
                ),
                "{}: E5-CLUSTER never moves the group",
                pb.name
            );
        }
        assert!(steps(pb).any(|s| s.rule == "E5-G" && matches!(&s.action, ActionSpec::Confirm { message, .. } if message.contains("Performance Optimizer"))));
    }
}

#[test]
fn lab_inventory_has_every_topology() {
    let f = fleet();
    let exchange = f.hosts.iter().filter(|h| h.exchange.is_some()).count();
    assert!((40..=60).contains(&exchange), "{exchange} Exchange hosts");
    // inventory/windows-lab.yml: plain Windows servers (no Exchange) across the sites, and a
    // Server 2019 failover cluster with a file server and a SQL Server instance.
    let wpath =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../inventory/windows-lab.yml");
    let wf = lockstep_spec::load_inventory(&[lockstep_spec::SourceFile::read(&wpath).unwrap()])
        .unwrap_or_else(|d| panic!("{d}"));
    let plain: Vec<&lockstep_core::Host> = wf
        .hosts
        .iter()
        .filter(|h| h.exchange.is_none() && h.cluster.is_none())
        .collect();
    assert_eq!(plain.len(), 20, "{} plain hosts", plain.len());
    let plain_sites: std::collections::BTreeSet<&str> =
        plain.iter().map(|h| h.site.as_str()).collect();
    assert_eq!(plain_sites.len(), 5, "{plain_sites:?}");
    assert!(plain.iter().all(|h| h
        .windows
        .is_some_and(|w| w >= lockstep_core::WindowsRelease::Windows2016)));
    let wsfc = wf
        .clusters
        .iter()
        .find(|c| c.virtual_servers.is_empty())
        .expect("a cluster without Exchange");
    assert_eq!(wsfc.nodes.len(), 3);
    let kinds: Vec<lockstep_core::GroupKind> = wsfc.groups.iter().map(|g| g.kind).collect();
    assert_eq!(
        kinds,
        [
            lockstep_core::GroupKind::FileServer,
            lockstep_core::GroupKind::Sql
        ]
    );
    for n in &wsfc.nodes {
        let h = wf.host(n.as_str()).unwrap();
        assert_eq!(h.windows, Some(lockstep_core::WindowsRelease::Windows2019));
        assert!(h.os_build.is_some_and(|b| b.revision > 0), "UBR of {n}");
    }
    let sites: Vec<&str> = f.sites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(sites, ["amsterdam", "milan", "prague", "seattle", "tokyo"]);
    let cluster = |p: Product, nodes: usize, mode: ClusterMode| {
        f.clusters.iter().any(|c| {
            c.nodes.len() == nodes && c.mode == mode && f.host(c.nodes[0].as_str()).unwrap().runs(p)
        })
    };
    assert!(cluster(
        Product::Exchange2003,
        2,
        ClusterMode::ActivePassive
    ));
    assert!(cluster(
        Product::Exchange2003,
        4,
        ClusterMode::ActivePassive
    ));
    assert!(cluster(
        Product::Exchange2000,
        2,
        ClusterMode::ActivePassive
    ));
    assert!(cluster(Product::Exchange2000, 2, ClusterMode::ActiveActive));
    assert!(cluster(Product::Exchange55, 2, ClusterMode::ActivePassive));
    assert!(f
        .clusters
        .iter()
        .any(|c| c.nodes.len() == 4 && c.virtual_servers.len() >= 2));
    assert!(f.pools.iter().all(|p| p.members.len() >= 2));
    assert!(f.pools.len() >= 2);
    let has = |p: Product, r: Role, e: Option<Edition>| {
        f.hosts.iter().any(|h| {
            h.runs(p)
                && h.has_role(r)
                && h.cluster.is_none()
                && h.pool.is_none()
                && e.is_none_or(|e| h.edition() == Some(e))
        })
    };
    for p in [
        Product::Exchange2003,
        Product::Exchange2000,
        Product::Exchange55,
    ] {
        assert!(has(p, Role::Standalone, None), "standalone {p}");
    }
    assert!(has(Product::Exchange2003, Role::FrontEnd, None));
    assert!(has(Product::Exchange2003, Role::BackEnd, None));
    assert!(has(Product::Exchange2000, Role::FrontEnd, None));
    assert!(has(Product::Exchange2000, Role::BackEnd, None));
    assert!(has(
        Product::Exchange2003,
        Role::Sbs,
        Some(Edition::SmallBusiness)
    ));
    assert!(has(
        Product::Exchange2000,
        Role::Sbs,
        Some(Edition::SmallBusiness)
    ));
    assert!(has(
        Product::Exchange2000,
        Role::Standalone,
        Some(Edition::Conferencing)
    ));
    for g in ["exchange2003", "exchange2000", "exchange55"] {
        assert!(!f.groups[g].is_empty(), "{g}");
    }
    assert_eq!(f.organisation, "Contoso Europe-Asia");
    for h in &f.hosts {
        assert!(
            h.connection.address.ends_with(".corp.contoso.example"),
            "{}",
            h.name
        );
        assert_eq!(h.connection.user, "CONTOSO\\svc-lockstep");
        assert_eq!(
            h.connection.password,
            lockstep_core::SecretSource::Env("LOCKSTEP_PASSWORD".into())
        );
    }
}

/// `lockstep lab` writes an overlay inventory pointing hosts at loopback endpoints; loaded after
/// `inventory/lab.yml`, its host vars win and nothing else changes.
#[test]
fn a_lab_overlay_points_hosts_at_loopback() {
    let overlay = "# Written by `lockstep lab`\nall:\n  hosts:\n    PRG-N1:\n      ansible_host: 127.0.0.1\n      ansible_port: 40123\n      ansible_winrm_scheme: http\n      ansible_user: 'CONTOSO\\svc-lockstep'\n      lockstep_password_env: LAB_PW\n    SEA-FE01:\n      ansible_host: 127.0.0.2\n      ansible_port: 40124\n      ansible_winrm_scheme: https\n      ansible_user: 'CONTOSO\\svc-lockstep'\n      lockstep_password_env: LAB_PW\n      ansible_winrm_server_cert_validation: ignore\n";
    let files = [
        embedded::lab_inventory(),
        lockstep_spec::SourceFile::new("lab-endpoints.yml", overlay),
    ];
    let f = load_inventory(&files).unwrap_or_else(|d| panic!("{d}"));
    let base = fleet();
    assert_eq!(f.hosts.len(), base.hosts.len());
    assert_eq!(f.clusters, base.clusters);
    assert_eq!(f.pools, base.pools);
    let n1 = f.host("PRG-N1").unwrap();
    assert_eq!(
        (n1.connection.address.as_str(), n1.connection.port),
        ("127.0.0.1", 40123)
    );
    assert_eq!(
        n1.connection.password,
        lockstep_core::SecretSource::Env("LAB_PW".into())
    );
    assert_eq!(n1.site.as_str(), "prague");
    assert!(!f.groups[&lockstep_core::Name::ident("ungrouped").unwrap()]
        .iter()
        .any(|h| h.as_str() == "PRG-N1"));
    let fe = f.host("SEA-FE01").unwrap();
    assert_eq!(fe.connection.scheme, lockstep_core::Scheme::Https);
    assert!(!fe.connection.verify_tls);
    assert_eq!(fe.pool.as_ref().map(|p| p.as_str()), Some("SEA-OWA"));
}
