//! [`WorldSnapshot`]: a serialisable view of the simulated fleet, for tests and the CLI.

use std::collections::BTreeMap;

use lockstep_core::Version;
use serde::{Deserialize, Serialize};

use super::fault::Fault;
use super::state::{NodeState, Power, State};
use super::wql::cim_datetime;

/// The whole fleet at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldSnapshot {
    /// Hosts, in inventory order.
    pub hosts: Vec<HostSnapshot>,
    /// Clusters.
    pub clusters: Vec<ClusterSnapshot>,
}

/// One host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSnapshot {
    /// Computer name.
    pub name: String,
    /// `up`, `going-down` or `down`.
    pub power: String,
    /// Exchange build.
    pub build: Version,
    /// Exchange edition.
    pub edition: String,
    /// Boot epoch (increases at every boot).
    pub boot_epoch: u64,
    /// `LastBootUpTime` (CIM datetime).
    pub last_boot: String,
    /// A restart is pending.
    pub pending_reboot: bool,
    /// Installers running.
    pub installing: u32,
    /// Service name to `running`/`stopped`.
    pub services: BTreeMap<String, String>,
    /// Installed hotfixes.
    pub hotfixes: Vec<String>,
    /// Extra running processes.
    pub processes: Vec<String>,
    /// Faults in force.
    pub faults: Vec<Fault>,
    /// NLB converged (pool members).
    pub nlb_converged: Option<bool>,
    /// Files written on the node (staged packages): path to length and SHA-256.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, FileSnapshot>,
}

/// A file on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSnapshot {
    /// Bytes.
    pub length: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

/// One cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSnapshot {
    /// Cluster name.
    pub name: String,
    /// Node name to `up`/`down`/`paused`.
    pub nodes: BTreeMap<String, String>,
    /// Groups.
    pub groups: Vec<GroupSnapshot>,
}

/// One cluster group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSnapshot {
    /// Group name.
    pub name: String,
    /// Owner node.
    pub owner: String,
    /// EVS name.
    pub evs: Option<String>,
    /// EVS version.
    pub evs_version: Option<Version>,
    /// Resource name to `online`/`offline`/`failed`.
    pub resources: BTreeMap<String, String>,
}

impl WorldSnapshot {
    pub(crate) fn of(st: &State) -> WorldSnapshot {
        let hosts = st
            .hosts
            .iter()
            .enumerate()
            .map(|(h, n)| HostSnapshot {
                name: n.name.clone(),
                power: match n.power {
                    Power::Up => "up",
                    Power::GoingDown => "going-down",
                    Power::Down { .. } => "down",
                }
                .to_owned(),
                build: n.build,
                edition: n.edition.map(|e| e.to_string()).unwrap_or_default(),
                boot_epoch: n.boot_epoch,
                last_boot: cim_datetime(n.boot_ms),
                pending_reboot: n.pending_reboot,
                installing: n.installing,
                services: n
                    .services
                    .iter()
                    .map(|s| {
                        let state = if st.service_running(h, s) {
                            "running"
                        } else {
                            "stopped"
                        };
                        (s.name.clone(), state.to_owned())
                    })
                    .collect(),
                hotfixes: n.hotfixes.iter().cloned().collect(),
                processes: n.processes.iter().map(|(_, i)| i.clone()).collect(),
                faults: n.faults.clone(),
                nlb_converged: n.nlb,
                files: n
                    .files
                    .values()
                    .map(|(path, bytes)| {
                        (
                            path.clone(),
                            FileSnapshot {
                                length: bytes.len() as u64,
                                sha256: super::config::sha256_hex(bytes),
                            },
                        )
                    })
                    .collect(),
            })
            .collect();
        let clusters = st
            .clusters
            .iter()
            .map(|c| ClusterSnapshot {
                name: c.name.clone(),
                nodes: c
                    .nodes
                    .iter()
                    .map(|&n| {
                        let s = match st.node_state(n) {
                            NodeState::Up => "up",
                            NodeState::Down => "down",
                            NodeState::Paused => "paused",
                        };
                        (st.hosts[n].name.clone(), s.to_owned())
                    })
                    .collect(),
                groups: c
                    .groups
                    .iter()
                    .map(|g| GroupSnapshot {
                        name: g.name.clone(),
                        owner: st.hosts[g.owner].name.clone(),
                        evs: g.evs.as_ref().map(|e| e.name.clone()),
                        evs_version: g.evs.as_ref().map(|e| e.version),
                        resources: g
                            .resources
                            .iter()
                            .map(|r| (r.name.clone(), r.state.word().to_owned()))
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        WorldSnapshot { hosts, clusters }
    }

    /// The host called `name` (case-insensitive).
    pub fn host(&self, name: &str) -> Option<&HostSnapshot> {
        self.hosts
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
    }

    /// The group called `name` in any cluster (case-insensitive).
    pub fn group(&self, name: &str) -> Option<&GroupSnapshot> {
        self.clusters
            .iter()
            .flat_map(|c| c.groups.iter())
            .find(|g| g.name.eq_ignore_ascii_case(name))
    }
}
