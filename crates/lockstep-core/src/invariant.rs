//! Invariants a playbook declares (`invariants:`), each with the rule id it cites: the one list
//! of names the spec accepts, the planner proves for a plan and the lab's verifier checks on
//! its record.

use serde::{Deserialize, Serialize};

/// An invariant a playbook may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Invariant {
    /// One node of a cluster out of service at a time.
    OneNodeOutPerCluster,
    /// A cluster keeps its quorum.
    Quorum,
    /// Every host of a tier before any host of the next (`shape.tiers`).
    TierOrder,
    /// A group online only on a node at or above its version.
    GroupOnUpgradedNode,
    /// No installer on a cluster node whose Cluster service runs.
    ClusterServiceStoppedForInstall,
    /// No installer run on a node already at its target.
    ExactlyOnce,
    /// The installs of a cluster follow the declared node order where it names an active node
    /// (`active-first`: the active node before every other; `active-last`: after every other).
    NodeOrder,
    /// No group of a cluster ever moves (`shape.failover: false`).
    NoFailover,
    /// A virtual server is upgraded once, on the first node, after its install and before any
    /// other node goes out of service; never for a hotfix.
    VirtualServerUpgrade,
    /// The members of a load-balanced pool go through their steps together: every member does
    /// step N before any member does step N+1.
    PoolTogether,
}

impl Invariant {
    /// Every invariant.
    pub const ALL: [Invariant; 10] = [
        Invariant::OneNodeOutPerCluster,
        Invariant::Quorum,
        Invariant::TierOrder,
        Invariant::GroupOnUpgradedNode,
        Invariant::ClusterServiceStoppedForInstall,
        Invariant::ExactlyOnce,
        Invariant::NodeOrder,
        Invariant::NoFailover,
        Invariant::VirtualServerUpgrade,
        Invariant::PoolTogether,
    ];

    /// The name a playbook declares it by.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::OneNodeOutPerCluster => "one-node-out-per-cluster",
            Invariant::Quorum => "quorum",
            Invariant::TierOrder => "tier-order",
            Invariant::GroupOnUpgradedNode => "group-on-upgraded-node",
            Invariant::ClusterServiceStoppedForInstall => "cluster-service-stopped-for-install",
            Invariant::ExactlyOnce => "exactly-once",
            Invariant::NodeOrder => "node-order",
            Invariant::NoFailover => "no-failover",
            Invariant::VirtualServerUpgrade => "virtual-server-upgrade",
            Invariant::PoolTogether => "pool-together",
        }
    }

    /// The invariant called `name`.
    pub fn from_name(name: &str) -> Option<Invariant> {
        Invariant::ALL.into_iter().find(|i| i.name() == name)
    }
}

impl std::fmt::Display for Invariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The invariants a playbook declares, each with the rule id its violations cite (the
/// invariant's own name when the playbook gives none).
pub type Invariants = std::collections::BTreeMap<Invariant, String>;

/// The rule id a violation of `inv` cites under `declared`.
pub fn cited(declared: &Invariants, inv: Invariant) -> &str {
    declared
        .get(&inv)
        .map(String::as_str)
        .filter(|r| !r.is_empty())
        .unwrap_or(inv.name())
}
