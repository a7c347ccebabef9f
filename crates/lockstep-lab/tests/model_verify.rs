//! The invariant checker: crafted bad sequences each report the right rule; sequences the
//! model itself lets happen are caught from its own records; the JSONL file round-trips.

mod model_support;

use lockstep_core::{Edition, Locale, Product, Role, Version, WindowsRelease};
use lockstep_core::{Invariant, Invariants};
use lockstep_lab::model::World;
use lockstep_lab::record::{GroupHeader, HostHeader, Record, RecordEvent, Recorder};
use lockstep_lab::verify::{verify, verify_declared, verify_file, Violation};
use model_support::*;

const SP4_55: Version = Version::new(5, 5, 2653, 0);

fn hh(
    name: &str,
    role: Role,
    product: Product,
    build: Version,
    cluster: Option<&str>,
) -> HostHeader {
    HostHeader {
        name: name.into(),
        role: Some(role),
        product: Some(product),
        edition: Some(Edition::Enterprise),
        windows: WindowsRelease::Windows2003,
        build,
        cluster: cluster.map(Into::into),
        site: "s".into(),
        cluster_service: cluster.is_some(),
        hotfixes: vec![],
    }
}

/// Builds records: the header then `(host, event)` pairs, t_ms = index.
struct Seq {
    hosts: Vec<HostHeader>,
    recs: Vec<Record>,
}

impl Seq {
    fn new(hosts: Vec<HostHeader>, groups: Vec<GroupHeader>) -> Seq {
        let recs = vec![Record {
            t_ms: 0,
            host: None,
            cluster: None,
            event: RecordEvent::LabStarted {
                hosts: hosts.clone(),
                groups,
            },
        }];
        Seq { hosts, recs }
    }
    fn ev(mut self, host: &str, event: RecordEvent) -> Seq {
        let cluster = self
            .hosts
            .iter()
            .find(|h| h.name == host)
            .and_then(|h| h.cluster.clone());
        let t_ms = self.recs.len() as u64;
        self.recs.push(Record {
            t_ms,
            host: Some(host.into()),
            cluster,
            event,
        });
        self
    }
    fn clus(self, host: &str, up: bool) -> Seq {
        self.ev(
            host,
            RecordEvent::ClusterService {
                state: if up { "up" } else { "down" }.into(),
            },
        )
    }
    fn install(
        self,
        host: &str,
        product: Option<Product>,
        target: Version,
        before: Version,
    ) -> Seq {
        self.ev(
            host,
            RecordEvent::InstallStarted {
                package: "pkg".into(),
                product,
                target: target.to_string(),
                target_build: Some(target),
                build_before: before,
                already_at_target: before >= target,
            },
        )
    }
    fn finish(self, host: &str, after: Version) -> Seq {
        self.ev(
            host,
            RecordEvent::InstallFinished {
                package: "pkg".into(),
                exit_code: 0,
                version_after: after,
            },
        )
    }
    fn check(&self) -> Vec<Violation> {
        verify(&self.recs)
    }
}

fn two_node_cluster(product: Product, build: Version) -> Seq {
    Seq::new(
        vec![
            hh("N1", Role::BackEnd, product, build, Some("CL1")),
            hh("N2", Role::BackEnd, product, build, Some("CL1")),
        ],
        vec![GroupHeader {
            cluster: "CL1".into(),
            group: "EVS1 Group".into(),
            evs: Some("EVS1".into()),
            version: Some(build),
            owner: "N1".into(),
            exchange_online: true,
        }],
    )
}

fn rules(v: &[Violation]) -> Vec<&str> {
    v.iter().map(|v| v.rule.as_str()).collect()
}

#[test]
fn a_clean_sequence_has_no_violation() {
    let s = two_node_cluster(Product::Exchange2003, SP1)
        .clus("N2", false)
        .install("N2", Some(Product::Exchange2003), SP2, SP1)
        .finish("N2", SP2)
        .clus("N2", true)
        .ev("N1", RecordEvent::RebootStarted)
        .ev("N1", RecordEvent::RebootFinished);
    assert_eq!(s.check(), vec![]);
}

#[test]
fn two_nodes_out_of_service_at_once() {
    let v = two_node_cluster(Product::Exchange2003, SP1)
        .clus("N1", false)
        .clus("N2", false)
        .check();
    // Both nodes of two out: the cluster has lost its quorum too.
    assert_eq!(rules(&v), ["quorum", "E3-C1"]);
    assert_eq!(v[1].hosts, ["N2", "N1"]);
    assert_eq!(v[1].t_ms, 2);
    // A restart of one node while the other installs.
    let v = two_node_cluster(Product::Exchange2003, SP1)
        .clus("N2", false)
        .install("N2", Some(Product::Exchange2003), SP2, SP1)
        .clus("N2", true)
        .ev("N1", RecordEvent::RebootStarted)
        .check();
    assert_eq!(rules(&v), ["quorum", "E3-C1"]);
    assert_eq!(v[1].hosts, ["N1", "N2"]);
}

#[test]
fn install_with_the_cluster_service_running() {
    let v = two_node_cluster(Product::Exchange2003, SP1)
        .install("N2", Some(Product::Exchange2003), SP2, SP1)
        .check();
    assert_eq!(rules(&v), ["E3-C"]);
    assert_eq!(v[0].hosts, ["N2"]);
    // E5-CLUSTER: Exchange 5.5 installs on the active node with its group online.
    let v = two_node_cluster(Product::Exchange55, Product::Exchange55.rtm())
        .install(
            "N1",
            Some(Product::Exchange55),
            SP4_55,
            Product::Exchange55.rtm(),
        )
        .finish("N1", SP4_55)
        .check();
    assert_eq!(v, vec![]);
    // A Windows hotfix is not an Exchange setup.
    let v = two_node_cluster(Product::Exchange2003, SP1)
        .ev(
            "N2",
            RecordEvent::InstallStarted {
                package: "iis".into(),
                product: None,
                target: "KB831464".into(),
                target_build: None,
                build_before: SP1,
                already_at_target: false,
            },
        )
        .check();
    assert_eq!(v, vec![]);
}

#[test]
fn evs_online_on_a_node_below_its_version() {
    let res = |node: &str, state: &str| RecordEvent::Resource {
        resource: "EVS1 System Attendant".into(),
        group: "EVS1 Group".into(),
        kind: "Microsoft Exchange System Attendant".into(),
        node: node.into(),
        state: state.into(),
    };
    let v = two_node_cluster(Product::Exchange2003, SP1)
        .clus("N2", false)
        .finish("N2", SP2)
        .clus("N2", true)
        .ev("N1", res("N1", "offline"))
        .ev(
            "N2",
            RecordEvent::GroupMoved {
                group: "EVS1 Group".into(),
                from: "N1".into(),
                to: "N2".into(),
                cause: "move".into(),
            },
        )
        .ev(
            "N2",
            RecordEvent::EvsUpgraded {
                group: "EVS1 Group".into(),
                evs: "EVS1".into(),
                version: SP2,
            },
        )
        .ev("N2", res("N2", "online"))
        .ev(
            "N1",
            RecordEvent::GroupMoved {
                group: "EVS1 Group".into(),
                from: "N2".into(),
                to: "N1".into(),
                cause: "move".into(),
            },
        )
        .ev("N1", res("N1", "online"))
        .check();
    assert_eq!(rules(&v), ["E3-CLUSTER.12"]);
    assert_eq!(v[0].hosts, ["N1"]);
    assert_eq!(v[0].t_ms, 9);
}

#[test]
fn back_end_before_front_end() {
    let fe_be = |product: Product, build: Version| {
        Seq::new(
            vec![
                hh("FE1", Role::FrontEnd, product, build, None),
                hh("FE2", Role::FrontEnd, product, build, None),
                hh("BE1", Role::BackEnd, product, build, None),
            ],
            vec![],
        )
    };
    let v = fe_be(Product::Exchange2003, SP1)
        .install("FE1", Some(Product::Exchange2003), SP2, SP1)
        .finish("FE1", SP2)
        .install("BE1", Some(Product::Exchange2003), SP2, SP1)
        .check();
    assert_eq!(rules(&v), ["E3-FB"]);
    assert_eq!(v[0].invariant, Invariant::TierOrder);
    assert_eq!(v[0].hosts, ["BE1", "FE2"]);
    let e2sp3 = Version::new(6, 0, 6249, 0);
    let v = fe_be(Product::Exchange2000, Product::Exchange2000.rtm())
        .install(
            "BE1",
            Some(Product::Exchange2000),
            e2sp3,
            Product::Exchange2000.rtm(),
        )
        .check();
    assert_eq!(rules(&v), ["E2-FB"]);
    assert_eq!(v[0].hosts, ["BE1", "FE1", "FE2"]);
    // All front-ends first: fine.
    let v = fe_be(Product::Exchange2003, SP1)
        .install("FE1", Some(Product::Exchange2003), SP2, SP1)
        .finish("FE1", SP2)
        .install("FE2", Some(Product::Exchange2003), SP2, SP1)
        .finish("FE2", SP2)
        .install("BE1", Some(Product::Exchange2003), SP2, SP1)
        .finish("BE1", SP2)
        .check();
    assert_eq!(v, vec![]);
}

#[test]
fn installer_on_a_node_already_at_target() {
    let s = Seq::new(
        vec![hh("S1", Role::Standalone, Product::Exchange2003, SP1, None)],
        vec![],
    )
    .install("S1", Some(Product::Exchange2003), SP2, SP1)
    .finish("S1", SP2)
    .install("S1", Some(Product::Exchange2003), SP2, SP2)
    .finish("S1", SP2);
    let v = s.check();
    assert_eq!(rules(&v), ["exactly-once"]);
    assert_eq!(v[0].invariant, Invariant::ExactlyOnce);
    assert_eq!(v[0].t_ms, 3);
    // A hotfix installed twice.
    let hotfix = |s: Seq| {
        s.ev(
            "S1",
            RecordEvent::InstallStarted {
                package: "iis".into(),
                product: None,
                target: "KB831464".into(),
                target_build: None,
                build_before: SP1,
                already_at_target: false,
            },
        )
        .ev(
            "S1",
            RecordEvent::InstallFinished {
                package: "iis".into(),
                exit_code: 3010,
                version_after: SP1,
            },
        )
    };
    let s = hotfix(hotfix(Seq::new(
        vec![hh("S1", Role::Standalone, Product::Exchange2003, SP1, None)],
        vec![],
    )));
    assert_eq!(rules(&s.check()), ["exactly-once"]);
}

/// A back-end of Exchange 2003 upgraded while a front-end is behind: a `tier-order` violation,
/// nothing else.
fn back_end_first() -> Seq {
    Seq::new(
        vec![
            hh("FE1", Role::FrontEnd, Product::Exchange2003, SP1, None),
            hh("BE1", Role::BackEnd, Product::Exchange2003, SP1, None),
        ],
        vec![],
    )
    .install("BE1", Some(Product::Exchange2003), SP2, SP1)
    .finish("BE1", SP2)
}

fn declared(pairs: &[(Invariant, &str)]) -> Invariants {
    pairs.iter().map(|(i, r)| (*i, (*r).to_owned())).collect()
}

#[test]
fn only_the_declared_invariants_are_checked_citing_the_playbooks_rule() {
    let s = back_end_first();
    // Every invariant: the lab's KB 328839 rule.
    assert_eq!(rules(&s.check()), ["E3-FB"]);
    // A playbook that does not declare tier-order: the record keeps what it declares.
    let cluster_only = declared(&[
        (Invariant::OneNodeOutPerCluster, "E3-C1"),
        (Invariant::ExactlyOnce, ""),
    ]);
    assert_eq!(verify_declared(&s.recs, &cluster_only), vec![]);
    assert_eq!(verify_declared(&s.recs, &Invariants::new()), vec![]);
    // A playbook that declares it: its own rule id, whatever the KB's.
    let v = verify_declared(&s.recs, &declared(&[(Invariant::TierOrder, "SITE-7")]));
    assert_eq!(rules(&v), ["SITE-7"]);
    assert_eq!(v[0].invariant, Invariant::TierOrder);
    assert_eq!(v[0].hosts, ["BE1", "FE1"]);
    assert!(
        v[0].to_string()
            .starts_with("[SITE-7: tier-order] t=1 ms BE1, FE1:"),
        "{}",
        v[0]
    );
    // Declared by name only (`invariants: [tier-order]`): the name, not a KB id.
    let v = verify_declared(&s.recs, &declared(&[(Invariant::TierOrder, "")]));
    assert_eq!(rules(&v), ["tier-order"]);
    assert!(
        v[0].to_string().starts_with("[tier-order] t=1 ms"),
        "{}",
        v[0]
    );
}

async fn stop_both(w: &World) {
    ok(w, "N1", "net stop clussvc").await;
    ok(w, "N2", "net stop clussvc").await;
}

#[tokio::test]
async fn the_models_own_records_catch_what_it_allows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.jsonl");
    let fleet = cluster_fleet(2, 1, Locale::EN_US);
    let w = World::new(&fleet, fast(), Recorder::to_file(&path).unwrap());
    stop_both(&w).await;
    // The last node stopping leaves the groups where they are.
    assert_eq!(w.snapshot().group("EVS1 Group").unwrap().owner, "N2");
    let v = verify_file(&path, None).unwrap();
    assert_eq!(rules(&v), ["quorum", "E3-C1"]);
    assert_eq!(verify(&w.recorder().records()), v);
    let quorum = declared(&[(Invariant::Quorum, "Q-1")]);
    let only_quorum = verify_file(&path, Some(&quorum)).unwrap();
    assert_eq!(rules(&only_quorum), ["Q-1"]);
    assert_eq!(v[1].hosts, ["N2", "N1"]);
    // The file holds the documented fields.
    let text = std::fs::read_to_string(&path).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["event"], "lab-started");
    assert!(first["hosts"][0]["role"].is_string());
    let cmd: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    assert_eq!(cmd["event"], "command");
    assert_eq!(cmd["host"], "N1");
    assert_eq!(cmd["cluster"], "CL1");
    assert_eq!(cmd["line"], "net stop clussvc");
    assert!(cmd["t_ms"].is_u64());
    // A broken line is reported with its number.
    std::fs::write(&path, format!("{text}not json\n")).unwrap();
    let err = verify_file(&path, None).unwrap_err().to_string();
    assert!(
        err.contains(&format!("line {}", text.lines().count() + 1)),
        "{err}"
    );
}
