//! Property tests: over generated fleets and every playbook shape, the plan keeps every rule
//! (`check_rules` is empty) and planning is deterministic.

use lockstep_core::*;
use lockstep_plan::{check_rules, plan, plan_hash, PlanError, PlanOptions};
use proptest::prelude::*;

use crate::fixtures::*;

const SITES: [&str; 6] = ["amsterdam", "milan", "prague", "seattle", "tokyo", "vienna"];
const PRODUCTS: [Product; 3] = [
    Product::Exchange2003,
    Product::Exchange2000,
    Product::Exchange55,
];
const WINDOWS: [WindowsRelease; 3] = [
    WindowsRelease::Windows2003,
    WindowsRelease::Windows2000,
    WindowsRelease::Nt4,
];

#[derive(Debug, Clone)]
struct ClusterGen {
    nodes: usize,
    evs: usize,
    product: usize,
    active_active: bool,
    /// Owner (node index, modulo) of the cluster group, then of each EVS group.
    owners: Vec<usize>,
    windows: usize,
}

#[derive(Debug, Clone)]
struct SiteGen {
    /// (role 0 FE / 1 BE / 2 standalone / 3 SBS, product, windows) per host.
    hosts: Vec<(usize, usize, usize)>,
    /// (size, product) per pool.
    pools: Vec<(usize, usize)>,
    clusters: Vec<ClusterGen>,
}

fn cluster_gen() -> impl Strategy<Value = ClusterGen> {
    (
        2usize..=8,
        1usize..=3,
        0usize..3,
        any::<bool>(),
        prop::collection::vec(0usize..8, 4),
        0usize..3,
    )
        .prop_map(
            |(nodes, evs, product, active_active, owners, windows)| ClusterGen {
                nodes,
                evs,
                product,
                active_active,
                owners,
                windows,
            },
        )
}

fn site_gen() -> impl Strategy<Value = SiteGen> {
    (
        prop::collection::vec((0usize..4, 0usize..3, 0usize..3), 0..5),
        prop::collection::vec((2usize..=4, 0usize..3), 0..2),
        prop::collection::vec(cluster_gen(), 0..3),
    )
        .prop_map(|(hosts, pools, clusters)| SiteGen {
            hosts,
            pools,
            clusters,
        })
}

fn fleet_gen() -> impl Strategy<Value = (Fleet, bool)> {
    (prop::collection::vec(site_gen(), 1..=6), any::<bool>()).prop_map(|(sites, per_site)| {
        let mut b = FleetBuilder::new();
        for (si, sg) in sites.iter().enumerate() {
            let site = SITES[si];
            let p = &site[..3].to_ascii_uppercase();
            b = b.site(site, Locale::SEEDS[si % 5]);
            for (hi, (role, product, windows)) in sg.hosts.iter().enumerate() {
                let role = [Role::FrontEnd, Role::BackEnd, Role::Standalone, Role::Sbs][*role];
                b = b.host(
                    &format!("{p}-H{hi}"),
                    site,
                    role,
                    PRODUCTS[*product],
                    WINDOWS[*windows],
                );
            }
            for (pi, (size, product)) in sg.pools.iter().enumerate() {
                let members: Vec<String> = (0..*size).map(|m| format!("{p}-P{pi}M{m}")).collect();
                let refs: Vec<&str> = members.iter().map(String::as_str).collect();
                b = b.pool(&format!("{p}-POOL{pi}"), site, PRODUCTS[*product], &refs);
            }
            for (ci, c) in sg.clusters.iter().enumerate() {
                let cl = format!("{p}CL{ci}");
                let nodes: Vec<String> = (0..c.nodes).map(|n| format!("{cl}-N{n}")).collect();
                let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
                let evs: Vec<(String, String, &str)> = (0..c.evs)
                    .map(|e| {
                        (
                            format!("{cl}EVS{e}"),
                            format!("{cl}EVS{e} Group"),
                            refs[c.owners[e + 1] % c.nodes],
                        )
                    })
                    .collect();
                let evs_ref: Vec<Evs<'_>> = evs
                    .iter()
                    .map(|(a, g, o)| (a.as_str(), g.as_str(), *o))
                    .collect();
                let mode = if c.active_active {
                    ClusterMode::ActiveActive
                } else {
                    ClusterMode::ActivePassive
                };
                b = b.cluster(
                    &cl,
                    site,
                    PRODUCTS[c.product],
                    mode,
                    &refs,
                    refs[c.owners[0] % c.nodes],
                    &evs_ref,
                );
                let _ = c.windows;
            }
        }
        let fleet = b.build();
        let mut fleet = fleet;
        // Windows releases of cluster nodes vary too (the IIS hotfix is for 2003 only).
        for (i, h) in fleet.hosts.iter_mut().enumerate() {
            if h.cluster.is_some() {
                h.windows = Some(WINDOWS[i % 3]);
            }
        }
        if per_site {
            fleet.front_end_scope = FrontEndScope::Site;
        }
        (fleet, per_site)
    })
}

/// Every playbook shape, with a staged rollout over the generated sites.
fn playbooks(fleet: &Fleet) -> Vec<Playbook> {
    let mut v = vec![
        e3_cluster(fleet),
        e2_active_passive(),
        e2_active_active(),
        e5_cluster(),
        e3_front_back(),
        e2_front_back(),
        standalone(Kb::E3Standalone),
        standalone(Kb::E2Standalone),
        standalone(Kb::E5Standalone),
    ];
    for pb in v.iter_mut().skip(1) {
        pb.rollout.stages = expand_star(
            fleet,
            vec![
                ("canary", vec!["prague"], Gate::None),
                ("rest", vec!["*"], Gate::Approval),
            ],
        );
        pb.rollout.stages.retain(|s| !s.sites.is_empty());
    }
    v
}

/// Whether the fleet holds something `procedure` must take (an independent statement of the
/// selection rules): then planning must succeed.
fn has_work(fleet: &Fleet, procedure: Kb) -> bool {
    let product = procedure.product();
    let cluster = |mode: Option<ClusterMode>| {
        fleet.clusters.iter().any(|c| {
            fleet.host(c.nodes[0].as_str()).unwrap().runs(product)
                && mode.is_none_or(|m| c.mode == m)
        })
    };
    let host = |ok: &dyn Fn(&Host) -> bool| {
        fleet
            .hosts
            .iter()
            .any(|h| h.cluster.is_none() && h.runs(product) && ok(h))
    };
    match procedure {
        Kb::E3Cluster | Kb::E5Cluster => cluster(None),
        Kb::E2ActivePassive => cluster(Some(ClusterMode::ActivePassive)),
        Kb::E2ActiveActive => cluster(Some(ClusterMode::ActiveActive)),
        Kb::E3FrontBack | Kb::E2FrontBack => {
            host(&|h| matches!(h.role(), Some(Role::FrontEnd | Role::BackEnd)))
        }
        Kb::E5Standalone => host(&|_| true),
        Kb::E3Standalone | Kb::E2Standalone => {
            host(&|h| matches!(h.role(), Some(Role::Standalone | Role::Sbs)))
        }
    }
}

/// The plan with the `after` edges of the first out-of-service step of a cluster's second node
/// removed (`None` when no cluster has two windows).
fn cut_second_window(p: &Plan) -> Option<Plan> {
    let first = p
        .steps
        .iter()
        .position(|s| s.cluster.is_some() && s.out_of_service)?;
    let (cluster, host) = (p.steps[first].cluster.clone(), p.steps[first].host.clone());
    let second = p
        .steps
        .iter()
        .position(|s| s.cluster == cluster && s.out_of_service && s.host != host)?;
    let mut broken = p.clone();
    broken.steps[second].after.clear();
    Some(broken)
}

proptest! {
    // 64 cases by default (2 shared cores); PROPTEST_CASES=N for a longer search.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn plans_keep_every_rule((fleet, _per_site) in fleet_gen()) {
        for pb in playbooks(&fleet) {
            let opts = PlanOptions::default();
            match plan(&fleet, &pb, &opts) {
                Ok(p) => {
                    let v = check_rules(&p, &fleet);
                    prop_assert!(v.is_empty(), "{}: {:#?}", pb.procedure, v);
                    let again = plan(&fleet, &pb, &opts).unwrap();
                    prop_assert_eq!(&again, &p);
                    prop_assert_eq!(plan_hash(&p), p.hash.clone());
                    for (i, s) in p.steps.iter().enumerate() {
                        prop_assert!(s.after.iter().all(|&d| d < i));
                    }
                    // The checker can fail: cut the second node's window loose from the first's.
                    if let Some(broken) = cut_second_window(&p) {
                        let v = check_rules(&broken, &fleet);
                        let rule = lockstep_core::invariant::cited(&p.invariants, lockstep_core::Invariant::OneNodeOutPerCluster);
                        prop_assert!(v.iter().any(|x| x.rule == rule), "{}: not caught", pb.procedure);
                    }
                }
                Err(e) => {
                    prop_assert!(!has_work(&fleet, Kb::of(&pb)), "{}: {}", pb.procedure, e);
                    // The only acceptable refusal: nothing of this shape in the fleet (or not
                    // even a host of the product, so its group does not exist).
                    prop_assert!(
                        e.0.iter().all(|x| matches!(x,
                            PlanError::NothingSelected { .. } | PlanError::UnknownPattern { .. })),
                        "{}: {}", pb.procedure, e
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64) / 2,
        ..ProptestConfig::default()
    })]

    /// A `--limit` to one site (or one cluster) keeps the rules; the only refusals are an empty
    /// selection or back-ends whose front-ends are left out.
    #[test]
    fn limited_plans_keep_every_rule((fleet, _) in fleet_gen(), pick in 0usize..64) {
        let mut names: Vec<String> = fleet.sites.iter().map(|s| s.name.to_string()).collect();
        names.extend(fleet.clusters.iter().map(|c| c.name.to_string()));
        let limit = names[pick % names.len()].clone();
        let opts = PlanOptions { limit: vec![limit.clone()], ..Default::default() };
        for pb in playbooks(&fleet) {
            match plan(&fleet, &pb, &opts) {
                Ok(p) => {
                    let v = check_rules(&p, &fleet);
                    prop_assert!(v.is_empty(), "{} --limit {}: {:#?}", pb.procedure, limit, v);
                    for s in &p.steps {
                        let in_limit = s.site.as_str() == limit
                            || s.cluster.as_ref().is_some_and(|c| c.as_str() == limit);
                        prop_assert!(in_limit, "{} outside --limit {}", s.id, limit);
                    }
                }
                Err(e) => prop_assert!(
                    e.0.iter().all(|x| matches!(x,
                        PlanError::NothingSelected { .. }
                            | PlanError::UnknownPattern { .. }
                            | PlanError::FrontEndLeftBehind { .. })),
                    "{} --limit {}: {}", pb.procedure, limit, e
                ),
            }
        }
    }
}

/// Phases an administrator might put together, right or wrong.
fn menu() -> Vec<Phase> {
    let s = |id: &str, a: ActionSpec| step(id, id, "X", a);
    let install = || ActionSpec::Install {
        package: "{{ sp_package }}".into(),
        args: "{{ sp_args }}".into(),
        prerequisite: None,
        reboot: RebootPolicy::IfRequired,
    };
    let node = |evacuate: bool| {
        let mut v = Vec::new();
        if evacuate {
            v.push(s(
                "evacuate",
                ActionSpec::EvacuateNode {
                    to: "{{ peer }}".into(),
                },
            ));
        }
        v.push(s("stop", ActionSpec::StopClusterService));
        v.push(s("install", install()));
        v.push(s("start", ActionSpec::StartClusterService));
        v
    };
    let group = || "{{ group }}".to_owned();
    vec![
        phase(
            "confirm",
            Scope::Cluster,
            vec![s(
                "confirm",
                ActionSpec::Confirm {
                    message: "{{ cluster }}".into(),
                    command: None,
                },
            )],
        ),
        phase(
            "preflight",
            Scope::AllNodes,
            vec![s("preflight", ActionSpec::Preflight { checks: vec![] })],
        ),
        phase("first", Scope::FirstNode, node(true)),
        phase("first-no-move", Scope::FirstNode, node(false)),
        phase("others", Scope::OtherNodes, node(true)),
        phase("each", Scope::EachNode, node(true)),
        phase(
            "offline",
            Scope::EachVirtualServer,
            vec![s(
                "offline",
                ActionSpec::EvsResourcesOffline { group: group() },
            )],
        ),
        phase(
            "upgrade",
            Scope::EachVirtualServer,
            vec![
                s(
                    "move",
                    ActionSpec::MoveGroup {
                        group: group(),
                        to: "{{ first_node }}".into(),
                    },
                ),
                s(
                    "upgrade",
                    ActionSpec::UpgradeVirtualServer {
                        group: group(),
                        command: None,
                    },
                ),
                s("online", ActionSpec::EvsResourcesOnline { group: group() }),
            ],
        ),
        phase(
            "failover",
            Scope::EachVirtualServer,
            vec![s("failover", ActionSpec::FailoverTest { group: group() })],
        ),
        phase(
            "host",
            Scope::EachHost,
            vec![s("install", install()), s("reboot", ActionSpec::Reboot)],
        ),
        phase(
            "pool",
            Scope::Pool,
            vec![
                s("drain", ActionSpec::NlbDrain),
                s("nlb-start", ActionSpec::NlbStart),
            ],
        ),
        phase(
            "verify",
            Scope::AllNodes,
            vec![s("verify", ActionSpec::AssertVersion)],
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    /// Any playbook put together from the menu either plans into something every checker
    /// accepts, or is refused with errors; planning never panics.
    #[test]
    fn any_playbook_plans_safely_or_is_refused(
        (fleet, _) in fleet_gen(),
        proc_ix in 0usize..9,
        picks in prop::collection::vec(0usize..12, 1..7),
        hotfix in any::<bool>(),
        order_ix in 0usize..7,
        failover in any::<bool>(),
        declare in any::<bool>(),
    ) {
        let procedure = Kb::ALL[proc_ix];
        let mut pb = standalone(procedure);
        procedure.apply(&mut pb);
        // Any declared shape of a cluster: every node order, with or without failover, and
        // the invariants declared or not: what the plan keeps is proven by the checkers.
        if pb.shape.is_cluster() {
            pb.shape.node_order = [
                None,
                Some(NodeOrderKind::PassiveFirst),
                Some(NodeOrderKind::ActiveFirst),
                Some(NodeOrderKind::ActiveLast),
                Some(NodeOrderKind::OwnersFirst),
                Some(NodeOrderKind::ByName),
                Some(NodeOrderKind::FewestGroupsFirst),
            ][order_ix];
            pb.shape.failover = failover;
            if declare {
                for i in [Invariant::NodeOrder, Invariant::NoFailover, Invariant::VirtualServerUpgrade] {
                    pb.invariants.insert(i, format!("P-{i}"));
                }
            }
        }
        pb.target.as_mut().unwrap().product = procedure.product();
        if hotfix {
            pb.target.as_mut().unwrap().kind = PackageKind::Hotfix;
        }
        pb.hosts = vec!["all".into()];
        let menu = menu();
        pb.phases = picks.iter().map(|&i| menu[i].clone()).collect();
        if let Ok(p) = plan(&fleet, &pb, &PlanOptions::default()) {
            let v = check_rules(&p, &fleet);
            prop_assert!(v.is_empty(), "{:#?}", v);
            prop_assert!(!p.steps.is_empty() || p.stages.is_empty());
        }
    }
}
