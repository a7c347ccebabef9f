//! The invariant checker: reads the lab's records ([`crate::record`]) and reports every moment
//! the fleet was driven against an invariant ([`Invariant`], the names playbooks declare).
//!
//! Invariants checked on a record ([`CHECKED`]), each [`Violation`] naming its invariant, the
//! rule id it cites, the hosts and `t_ms`:
//! - `one-node-out-per-cluster`: never two nodes of one cluster out of service at once (Cluster
//!   service down, restarting, running an installer, or suspended);
//! - `cluster-service-stopped-for-install`: no Exchange 2000/2003 installer on a cluster node
//!   whose Cluster service runs (Exchange 5.5, E5-CLUSTER, installs on the active node with its
//!   group online: allowed);
//! - `group-on-upgraded-node`: an EVS's Exchange resources online only on a node at or above the
//!   EVS's version;
//! - `tier-order`: no back-end installer before every front-end of the same product
//!   (organisation-wide) is at the build that installer brings;
//! - `exactly-once`: no installer run on a node already at its target (build or hotfix);
//! - `quorum`: a cluster keeps a majority of its nodes in service (a two-node cluster counts its
//!   witness: one node of two may be out).
//!
//! The planner proves `node-order`, `no-failover` and `virtual-server-upgrade` on the plan; the
//! record does not show them and they are not checked here.
//!
//! [`verify_declared`] checks only the invariants a playbook declares, each violation citing
//! the rule id the playbook gives it (its name when it gives none). [`verify`] checks them all;
//! as the lab models a KB 328839 fleet, a violation then cites the KB rule the invariant stands
//! for there (`E3-C1`, `E3-C`, `E3-CLUSTER.12`, `E3-FB` or `E2-FB` by product), else its name.
//!
//! A node is out of service while its Cluster service is stopped, it restarts, it runs an
//! installer, or it is suspended (`Suspend-ClusterNode`, `cluster node /pause`).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use lockstep_core::invariant::cited;
use lockstep_core::{Invariants, Product, Role, Version};
use serde::{Deserialize, Serialize};

use crate::record::{GroupHeader, HostHeader, Record, RecordEvent};

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The invariant broken.
    pub invariant: Invariant,
    /// The rule id the violation cites: the playbook's for its invariant, else the lab's
    /// default ([`verify`]).
    pub rule: String,
    /// Hosts involved.
    pub hosts: Vec<String>,
    /// When (ms since lab start).
    pub t_ms: u64,
    /// What happened.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.rule != self.invariant.name() {
            write!(f, "[{}: {}]", self.rule, self.invariant)?;
        } else {
            write!(f, "[{}]", self.rule)?;
        }
        write!(
            f,
            " t={} ms {}: {}",
            self.t_ms,
            self.hosts.join(", "),
            self.message
        )
    }
}

/// Why a record file could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The file could not be read.
    #[error("cannot read lab record `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not a record.
    #[error("lab record `{path}` line {line} is not a record: {source}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The cause.
        source: serde_json::Error,
    },
}

pub use lockstep_core::Invariant;

/// The invariants the checker can see on a record.
pub const CHECKED: [Invariant; 6] = [
    Invariant::OneNodeOutPerCluster,
    Invariant::Quorum,
    Invariant::TierOrder,
    Invariant::GroupOnUpgradedNode,
    Invariant::ClusterServiceStoppedForInstall,
    Invariant::ExactlyOnce,
];

/// The KB 328839 rule the lab cites for `inv` when no playbook names one: the lab's fleet is a
/// KB 328839 fleet (`product`: the installer's, for `tier-order`). `None`: the invariant's name.
fn kb_rule(inv: Invariant, product: Option<Product>) -> Option<&'static str> {
    match inv {
        Invariant::OneNodeOutPerCluster => Some("E3-C1"),
        Invariant::ClusterServiceStoppedForInstall => Some("E3-C"),
        Invariant::GroupOnUpgradedNode => Some("E3-CLUSTER.12"),
        Invariant::TierOrder => match product {
            Some(Product::Exchange2003) => Some("E3-FB"),
            Some(Product::Exchange2000) => Some("E2-FB"),
            _ => None,
        },
        _ => None,
    }
}

/// Checks `records` in order against every invariant in [`CHECKED`], citing the lab's KB 328839
/// rules; returns every violation found.
pub fn verify(records: &[Record]) -> Vec<Violation> {
    check(records, None)
}

/// Checks `records` against the invariants a playbook declares only, each violation citing the
/// rule id the playbook gives its invariant ([`cited`]).
pub fn verify_declared(records: &[Record], declared: &Invariants) -> Vec<Violation> {
    check(records, Some(declared))
}

/// Reads a JSONL record file and checks it: against `declared` ([`verify_declared`]), or every
/// invariant ([`verify`]).
pub fn verify_file(
    path: &Path,
    declared: Option<&Invariants>,
) -> Result<Vec<Violation>, VerifyError> {
    Ok(check(&crate::record::read_records(path)?, declared))
}

fn check(records: &[Record], declared: Option<&Invariants>) -> Vec<Violation> {
    let mut c = Checker {
        declared,
        ..Checker::default()
    };
    for r in records {
        c.step(r);
    }
    c.out
}

#[derive(Debug, Clone)]
struct HostState {
    name: String,
    role: Option<Role>,
    product: Option<Product>,
    cluster: Option<String>,
    build: Version,
    clussvc: bool,
    rebooting: bool,
    paused: bool,
    installing: u32,
    hotfixes: BTreeSet<String>,
    /// Targets of the installers running: (hotfix id, build).
    pending: Vec<(Option<String>, Option<Version>)>,
}

impl HostState {
    fn out_of_service(&self) -> bool {
        self.cluster.is_some()
            && (!self.clussvc || self.rebooting || self.installing > 0 || self.paused)
    }
}

#[derive(Debug, Clone, Default)]
struct GroupState {
    version: Option<Version>,
    owner: String,
    /// Exchange resources online.
    online: BTreeSet<String>,
}

#[derive(Default)]
struct Checker<'d> {
    /// The playbook's invariants, if one is given.
    declared: Option<&'d Invariants>,
    hosts: HashMap<String, HostState>,
    /// Cluster name to its nodes' keys.
    members: HashMap<String, Vec<String>>,
    groups: HashMap<(String, String), GroupState>,
    out: Vec<Violation>,
}

fn key(s: &str) -> String {
    s.to_ascii_lowercase()
}

impl Checker<'_> {
    /// Whether `inv` is to be checked.
    fn checks(&self, inv: Invariant) -> bool {
        self.declared.is_none_or(|d| d.contains_key(&inv))
    }

    /// Records a violation of `inv` (`product`: the installer's, for the lab's default rule),
    /// if `inv` is checked.
    fn violation(
        &mut self,
        inv: Invariant,
        product: Option<Product>,
        hosts: Vec<String>,
        t_ms: u64,
        message: String,
    ) {
        if !self.checks(inv) {
            return;
        }
        let rule = match self.declared {
            Some(d) => cited(d, inv),
            None => kb_rule(inv, product).unwrap_or(inv.name()),
        };
        self.out.push(Violation {
            invariant: inv,
            rule: rule.to_owned(),
            hosts,
            t_ms,
            message,
        });
    }

    /// Call after `host` may have gone out of service (`was`: before the event).
    fn check_one_at_a_time(&mut self, host: &str, was: bool, t_ms: u64) {
        let Some(h) = self.hosts.get(&key(host)) else {
            return;
        };
        if was || !h.out_of_service() {
            return;
        }
        self.check_quorum(host, t_ms);
        let Some(h) = self.hosts.get(&key(host)) else {
            return;
        };
        let cluster = h.cluster.clone();
        let me = h.name.clone();
        let members = cluster
            .as_ref()
            .and_then(|c| self.members.get(c))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut others: Vec<String> = members
            .iter()
            .filter_map(|k| self.hosts.get(k))
            .filter(|o| o.name != me && o.out_of_service())
            .map(|o| o.name.clone())
            .collect();
        if others.is_empty() {
            return;
        }
        others.sort();
        let msg = format!(
            "`{me}` went out of service while `{}` of cluster `{}` was out of service",
            others.join("`, `"),
            cluster.unwrap_or_default()
        );
        let mut hosts = vec![me];
        hosts.extend(others);
        self.violation(Invariant::OneNodeOutPerCluster, None, hosts, t_ms, msg);
    }

    /// A cluster keeps a majority of its nodes in service; with two nodes, the witness is the
    /// third vote.
    fn check_quorum(&mut self, host: &str, t_ms: u64) {
        let Some(cluster) = self.hosts.get(&key(host)).and_then(|h| h.cluster.clone()) else {
            return;
        };
        let members = self.members.get(&cluster).cloned().unwrap_or_default();
        let nodes: Vec<&HostState> = members.iter().filter_map(|k| self.hosts.get(k)).collect();
        let votes = nodes.len() + usize::from(nodes.len().is_multiple_of(2));
        let up = nodes.iter().filter(|n| !n.out_of_service()).count()
            + usize::from(nodes.len().is_multiple_of(2));
        if up * 2 > votes {
            return;
        }
        let mut out: Vec<String> = nodes
            .iter()
            .filter(|n| n.out_of_service())
            .map(|n| n.name.clone())
            .collect();
        out.sort();
        let msg = format!(
            "cluster `{cluster}` lost its quorum: {up} of {votes} votes in service (out: `{}`)",
            out.join("`, `")
        );
        self.violation(Invariant::Quorum, None, out, t_ms, msg);
    }

    fn check_group(&mut self, cluster: &str, group: &str, t_ms: u64) {
        let Some(g) = self.groups.get(&(key(cluster), key(group))) else {
            return;
        };
        let (Some(v), false) = (g.version, g.online.is_empty()) else {
            return;
        };
        let Some(owner) = self.hosts.get(&key(&g.owner)) else {
            return;
        };
        if owner.build < v {
            let msg = format!(
                "Exchange resources of `{group}` (virtual server at {v}) online on `{}` at {}",
                owner.name, owner.build
            );
            let hosts = vec![owner.name.clone()];
            self.violation(Invariant::GroupOnUpgradedNode, None, hosts, t_ms, msg);
        }
    }

    fn groups_owned_by(&self, host: &str) -> Vec<(String, String)> {
        self.groups
            .iter()
            .filter(|(_, g)| g.owner.eq_ignore_ascii_case(host))
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn step(&mut self, r: &Record) {
        let t = r.t_ms;
        let host = r.host.clone().unwrap_or_default();
        let cluster = r.cluster.clone().unwrap_or_default();
        let was = self
            .hosts
            .get(&key(&host))
            .is_some_and(HostState::out_of_service);
        match &r.event {
            RecordEvent::LabStarted { hosts, groups } => self.lab_started(hosts, groups),
            RecordEvent::ClusterService { state } => {
                if let Some(h) = self.hosts.get_mut(&key(&host)) {
                    h.clussvc = state == "up";
                }
                self.check_one_at_a_time(&host, was, t);
            }
            RecordEvent::RebootStarted => {
                if let Some(h) = self.hosts.get_mut(&key(&host)) {
                    h.rebooting = true;
                    h.installing = 0;
                    h.pending.clear();
                }
                self.check_one_at_a_time(&host, was, t);
            }
            RecordEvent::RebootFinished => {
                if let Some(h) = self.hosts.get_mut(&key(&host)) {
                    h.rebooting = false;
                }
            }
            RecordEvent::InstallStarted {
                package,
                product,
                target,
                target_build,
                ..
            } => {
                if self.install_started(&host, package, *product, target, *target_build, t) {
                    self.check_one_at_a_time(&host, was, t);
                }
            }
            RecordEvent::InstallFinished {
                exit_code,
                version_after,
                ..
            } => self.install_finished(&host, *exit_code, *version_after, t),
            RecordEvent::GroupMoved { group, to, .. } => {
                if let Some(g) = self.groups.get_mut(&(key(&cluster), key(group))) {
                    g.owner = to.clone();
                    // The resources follow in their own records.
                    g.online.clear();
                }
            }
            RecordEvent::Resource {
                resource,
                group,
                kind,
                node,
                state,
            } => {
                let exchange = kind.starts_with("Microsoft Exchange");
                if let Some(g) = self.groups.get_mut(&(key(&cluster), key(group))) {
                    g.owner = node.clone();
                    if exchange {
                        g.online.remove("*");
                        if state == "online" {
                            g.online.insert(resource.clone());
                        } else {
                            g.online.remove(resource);
                        }
                    }
                }
                if exchange && state == "online" {
                    self.check_group(&cluster, group, t);
                }
            }
            RecordEvent::EvsUpgraded { group, version, .. } => {
                if let Some(g) = self.groups.get_mut(&(key(&cluster), key(group))) {
                    g.version = Some(*version);
                }
                self.check_group(&cluster, group, t);
            }
            RecordEvent::Command { .. }
            | RecordEvent::CommandFinished { .. }
            | RecordEvent::Service { .. }
            | RecordEvent::EventLog { .. }
            | RecordEvent::Fault { .. }
            | RecordEvent::Nlb { .. } => {}
            RecordEvent::NodePaused { paused } => {
                if let Some(h) = self.hosts.get_mut(&key(&host)) {
                    h.paused = *paused;
                }
                self.check_one_at_a_time(&host, was, t);
            }
        }
    }

    /// The lab's header: every host and cluster group as the lab started.
    fn lab_started(&mut self, hosts: &[HostHeader], groups: &[GroupHeader]) {
        for h in hosts {
            if let Some(c) = &h.cluster {
                self.members
                    .entry(c.clone())
                    .or_default()
                    .push(key(&h.name));
            }
            self.hosts.insert(
                key(&h.name),
                HostState {
                    name: h.name.clone(),
                    role: h.role,
                    product: h.product,
                    cluster: h.cluster.clone(),
                    build: h.build,
                    clussvc: h.cluster_service,
                    rebooting: false,
                    paused: false,
                    installing: 0,
                    hotfixes: h.hotfixes.iter().map(|s| s.to_ascii_uppercase()).collect(),
                    pending: Vec::new(),
                },
            );
        }
        for g in groups {
            let online = if g.exchange_online {
                BTreeSet::from(["*".to_owned()])
            } else {
                BTreeSet::new()
            };
            self.groups.insert(
                (key(&g.cluster), key(&g.group)),
                GroupState {
                    version: g.version,
                    owner: g.owner.clone(),
                    online,
                },
            );
        }
    }

    /// An installer started on `host`: `exactly-once`, `cluster-service-stopped-for-install`
    /// and `tier-order`. False when the host is unknown.
    fn install_started(
        &mut self,
        host: &str,
        package: &str,
        product: Option<Product>,
        target: &str,
        target_build: Option<Version>,
        t: u64,
    ) -> bool {
        let Some(h) = self.hosts.get_mut(&key(host)) else {
            return false;
        };
        let hotfix = target_build.is_none().then(|| target.to_ascii_uppercase());
        h.installing += 1;
        h.pending.push((hotfix.clone(), target_build));
        let h = h.clone();
        // exactly-once
        let already = match (&hotfix, target_build) {
            (_, Some(b)) => h.build >= b,
            (Some(id), None) => h.hotfixes.contains(id),
            _ => false,
        };
        if already {
            self.violation(
                Invariant::ExactlyOnce,
                product,
                vec![h.name.clone()],
                t,
                format!(
                    "`{package}` ran on `{}`, already at its target {target}",
                    h.name
                ),
            );
        }
        // cluster-service-stopped-for-install
        let exchange_clustered = matches!(
            product,
            Some(Product::Exchange2000) | Some(Product::Exchange2003)
        ) && h.cluster.is_some();
        if exchange_clustered && h.clussvc {
            self.violation(
                Invariant::ClusterServiceStoppedForInstall,
                product,
                vec![h.name.clone()],
                t,
                format!(
                    "`{package}` started on cluster node `{}` while its Cluster service was running",
                    h.name
                ),
            );
        }
        // tier-order
        if let (Some(Role::BackEnd), Some(p), Some(b)) = (h.role, product, target_build) {
            // Exchange 5.5 has no front-end servers.
            if p != Product::Exchange55 {
                let mut behind: Vec<String> = self
                    .hosts
                    .values()
                    .filter(|f| {
                        f.role == Some(Role::FrontEnd) && f.product == Some(p) && f.build < b
                    })
                    .map(|f| f.name.clone())
                    .collect();
                if !behind.is_empty() {
                    behind.sort();
                    let msg = format!(
                        "back-end `{}` started `{package}` ({b}) while front-end(s) `{}` were not at {b}",
                        h.name,
                        behind.join("`, `")
                    );
                    let mut hosts = vec![h.name.clone()];
                    hosts.extend(behind);
                    self.violation(Invariant::TierOrder, Some(p), hosts, t, msg);
                }
            }
        }
        true
    }

    /// An installer finished on `host`: its build (and hotfix, on success), and the groups it
    /// owns checked against their version.
    fn install_finished(&mut self, host: &str, exit_code: i32, version_after: Version, t: u64) {
        if let Some(h) = self.hosts.get_mut(&key(host)) {
            h.installing = h.installing.saturating_sub(1);
            let pending = if h.pending.is_empty() {
                None
            } else {
                Some(h.pending.remove(0))
            };
            if matches!(exit_code, 0 | 3010 | 1641) {
                if let Some((Some(id), _)) = pending {
                    h.hotfixes.insert(id);
                }
            }
            h.build = version_after;
        }
        for (c, g) in self.groups_owned_by(host) {
            self.check_group(&c, &g, t);
        }
    }
}
