//! The invariant checker: reads the lab's records ([`crate::record`]) and reports every moment
//! the fleet was driven against KB 328839.
//!
//! Rules checked, each [`Violation`] naming its rule id, the hosts and `t_ms`:
//! - `E3-C1`: never two nodes of one cluster out of service at once (Cluster service down,
//!   restarting, or running an installer);
//! - `E3-C`: no Exchange 2000/2003 installer on a cluster node whose Cluster service runs
//!   (Exchange 5.5, E5-CLUSTER, installs on the active node with its group online: allowed);
//! - `E3-CLUSTER.12`: an EVS's Exchange resources online only on a node at or above the EVS's
//!   version;
//! - `E3-FB` / `E2-FB`: no back-end installer before every front-end of the same product
//!   (organisation-wide) is at the build that installer brings;
//! - `ALREADY-AT-TARGET`: no installer run on a node already at its target (build or hotfix);
//! - `quorum`: a cluster keeps a majority of its nodes in service (a two-node cluster counts its
//!   witness: one node of two may be out).
//!
//! A node is out of service while its Cluster service is stopped, it restarts, it runs an
//! installer, or it is suspended (`Suspend-ClusterNode`, `cluster node /pause`).
//!
//! The rules belong to the invariants a playbook declares ([`Invariant`], named as in the docs:
//! `one-node-out-per-cluster`, `quorum`, `tier-order`, `group-on-upgraded-node`, ...);
//! [`verify_declared`] checks only the declared ones.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use lockstep_core::{Product, Role, Version};
use serde::{Deserialize, Serialize};

use crate::record::{Record, RecordEvent};

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Rule id (`E3-C1`).
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
        write!(
            f,
            "[{}] t={} ms {}: {}",
            self.rule,
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

/// The invariant a rule id the checker reports belongs to.
pub fn invariant_of_rule(rule: &str) -> Option<Invariant> {
    Some(match rule {
        "E3-C1" => Invariant::OneNodeOutPerCluster,
        "quorum" => Invariant::Quorum,
        "E3-FB" | "E2-FB" => Invariant::TierOrder,
        "E3-CLUSTER.12" => Invariant::GroupOnUpgradedNode,
        "E3-C" => Invariant::ClusterServiceStoppedForInstall,
        "ALREADY-AT-TARGET" => Invariant::ExactlyOnce,
        _ => return None,
    })
}

/// Checks `records` against the declared invariants only.
pub fn verify_declared(records: &[Record], declared: &[Invariant]) -> Vec<Violation> {
    verify(records)
        .into_iter()
        .filter(|v| invariant_of_rule(&v.rule).is_some_and(|i| declared.contains(&i)))
        .collect()
}

/// Reads a JSONL record file and checks it.
pub fn verify_file(path: &Path) -> Result<Vec<Violation>, VerifyError> {
    Ok(verify(&crate::record::read_records(path)?))
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
struct Checker {
    hosts: HashMap<String, HostState>,
    /// Cluster name to its nodes' keys.
    members: HashMap<String, Vec<String>>,
    groups: HashMap<(String, String), GroupState>,
    out: Vec<Violation>,
}

fn key(s: &str) -> String {
    s.to_ascii_lowercase()
}

impl Checker {
    fn violation(&mut self, rule: &str, hosts: Vec<String>, t_ms: u64, message: String) {
        self.out.push(Violation {
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
        self.violation("E3-C1", hosts, t_ms, msg);
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
        self.violation("quorum", out, t_ms, msg);
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
            self.violation("E3-CLUSTER.12", hosts, t_ms, msg);
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
            RecordEvent::LabStarted { hosts, groups } => {
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
                let Some(h) = self.hosts.get_mut(&key(&host)) else {
                    return;
                };
                let hotfix = target_build.is_none().then(|| target.to_ascii_uppercase());
                h.installing += 1;
                h.pending.push((hotfix.clone(), *target_build));
                let h = h.clone();
                // ALREADY-AT-TARGET
                let already = match (&hotfix, target_build) {
                    (_, Some(b)) => h.build >= *b,
                    (Some(id), None) => h.hotfixes.contains(id),
                    _ => false,
                };
                if already {
                    self.violation(
                        "ALREADY-AT-TARGET",
                        vec![h.name.clone()],
                        t,
                        format!(
                            "`{package}` ran on `{}`, already at its target {target}",
                            h.name
                        ),
                    );
                }
                // E3-C
                let exchange_clustered = matches!(
                    product,
                    Some(Product::Exchange2000) | Some(Product::Exchange2003)
                ) && h.cluster.is_some();
                if exchange_clustered && h.clussvc {
                    self.violation(
                        "E3-C",
                        vec![h.name.clone()],
                        t,
                        format!(
                            "`{package}` started on cluster node `{}` while its Cluster service was running",
                            h.name
                        ),
                    );
                }
                // E3-FB / E2-FB
                if let (Some(Role::BackEnd), Some(p), Some(b)) = (h.role, product, target_build) {
                    let rule = match p {
                        Product::Exchange2003 => Some("E3-FB"),
                        Product::Exchange2000 => Some("E2-FB"),
                        Product::Exchange55 => None,
                    };
                    if let Some(rule) = rule {
                        let mut behind: Vec<String> = self
                            .hosts
                            .values()
                            .filter(|f| {
                                f.role == Some(Role::FrontEnd)
                                    && f.product == Some(*p)
                                    && f.build < *b
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
                            self.violation(rule, hosts, t, msg);
                        }
                    }
                }
                self.check_one_at_a_time(&host, was, t);
            }
            RecordEvent::InstallFinished {
                exit_code,
                version_after,
                ..
            } => {
                if let Some(h) = self.hosts.get_mut(&key(&host)) {
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
                    h.build = *version_after;
                }
                for (c, g) in self.groups_owned_by(&host) {
                    self.check_group(&c, &g, t);
                }
            }
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
}

/// Checks records in order; returns every violation found.
pub fn verify(records: &[Record]) -> Vec<Violation> {
    let mut c = Checker::default();
    for r in records {
        c.step(r);
    }
    c.out
}
