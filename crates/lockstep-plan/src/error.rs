//! Planning errors: every problem found, not only the first.

use std::fmt;

use lockstep_core::{NameError, NameKind};

/// One reason a plan could not be made. Messages name the object in backticks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A host pattern matched nothing in the inventory.
    #[error("pattern `{pattern}` matches no host, group, site, cluster or pool of the inventory")]
    UnknownPattern {
        /// The pattern as written.
        pattern: String,
    },
    /// Nothing of the fleet is taken by the playbook's shape.
    #[error("playbook `{playbook}` ({procedure}) selects nothing to plan: no selected host fits its shape")]
    NothingSelected {
        /// Playbook name.
        playbook: String,
        /// Procedure id.
        procedure: String,
    },
    /// E2-ED: Exchange 2000 Conferencing Server's last service pack is SP3; a later target
    /// is not for it, whatever the package.
    #[error("`{host}` runs Exchange 2000 Conferencing Server, whose last service pack is SP3 (6.0.6249.0): target {target} is not for it (KB 328839 E2-ED). Leave it out of this playbook (e.g. `hosts: [all, \"!own_service_pack\"]` or `--limit '!{host}'`) and keep it at SP3 with the Exchange 2000 Conferencing Server package (not the Standard/Enterprise one)")]
    ConferencingPastSp3 {
        /// The Conferencing Server host.
        host: String,
        /// The playbook's target build.
        target: String,
    },
    /// E3-C2: a cluster moved from Windows 2000/Exchange 2000 by clean install keeps an
    /// Exchange 2000 virtual server until it is upgraded; no service pack before that.
    #[error("cluster `{cluster}` was moved from Exchange 2000 by clean install (`exchange_migrated_by_clean_install`) and its virtual server `{evs}` is still at {evs_build}, older than Exchange 2003: upgrade the virtual server first (Cluster Administrator, \"Upgrade Exchange Virtual Server\"; KB 842427), then apply the service pack (KB 328839 E3-C2)")]
    EvsOlderAfterCleanInstall {
        /// Cluster name.
        cluster: String,
        /// The EVS still at the older version.
        evs: String,
        /// Its build.
        evs_build: String,
    },
    /// Only some nodes of a cluster (or members of a pool) are selected.
    #[error("{what} `{unit}` is only partly selected (`{missing}` is not): the procedure takes every member; select `{unit}` itself")]
    PartlySelected {
        /// `cluster` or `pool`.
        what: &'static str,
        /// Cluster or pool name.
        unit: String,
        /// A member not selected.
        missing: String,
    },
    /// A cluster node or pool member is not a host of the inventory.
    #[error("`{member}` of {what} `{unit}` is not a host of the inventory")]
    UnknownMember {
        /// `cluster` or `pool`.
        what: &'static str,
        /// Cluster or pool name.
        unit: String,
        /// The member.
        member: String,
    },
    /// A group's owner (inventory or `--owner`) is not a node of its cluster.
    #[error("owner `{owner}` of group `{group}` is not a node of {}", cluster_words(.cluster))]
    OwnerNotNode {
        /// Cluster name; empty when the override named the group alone.
        cluster: String,
        /// Group name.
        group: String,
        /// The owner given.
        owner: String,
    },
    /// An owner override names a group no cluster of the inventory has.
    #[error("owner override for group `{group}` names no group of any cluster of the inventory")]
    UnknownOwnerGroup {
        /// Group name.
        group: String,
    },
    /// A phase scope the playbook's shape has no units for.
    #[error("phase `{phase}` has scope `{scope}`, which a shape of `units: {units}` does not use")]
    ScopeNotForShape {
        /// Phase name.
        phase: String,
        /// Scope (kebab-case).
        scope: String,
        /// `clusters` or `hosts`.
        units: &'static str,
    },
    /// A load-balanced pool is selected but no phase expands over pools (`pool-together`).
    #[error("pool `{pool}` is selected but the playbook has no `pool` phase: its members must be upgraded together (pool-together)")]
    PoolWithoutPoolPhase {
        /// Pool name.
        pool: String,
    },
    /// A step of an `all-nodes` phase changes the node (those run on every node at once).
    #[error("step `{step}` changes the node ({action}) but its phase runs on every node at once: `all-nodes` steps must be read-only")]
    ChangeOnAllNodes {
        /// Step id (playbook).
        step: String,
        /// Action kind.
        action: &'static str,
    },
    /// A node-local action in a cluster- or EVS-scoped phase.
    #[error("step `{step}` of `{unit}` ({action}) acts on one node but its phase is cluster-wide")]
    NodeActionOutOfNodeScope {
        /// Step id (playbook).
        step: String,
        /// Unit (cluster).
        unit: String,
        /// Action kind.
        action: &'static str,
    },
    /// A cluster action in a procedure for non-clustered hosts.
    #[error("step `{step}` of `{unit}` ({action}) is a cluster action but `{unit}` is not a cluster node")]
    ClusterActionOnHost {
        /// Step id (playbook).
        step: String,
        /// Unit (host or pool member).
        unit: String,
        /// Action kind.
        action: &'static str,
    },
    /// A back-end is planned while a front-end it must follow is neither planned nor, by the
    /// inventory, at the target build (`tier-order`).
    #[error("back-end `{back_end}` is selected but front-end `{front_end}` is not, and the inventory does not show it at the target build: every front-end goes first ({rule})")]
    FrontEndLeftBehind {
        /// A selected back-end.
        back_end: String,
        /// The front-end not selected.
        front_end: String,
        /// The rule the playbook cites for its tier order.
        rule: String,
    },
    /// A template failed to parse or render.
    #[error("step `{step}` of `{unit}`: template `{template}` does not render: {message}")]
    Template {
        /// Step id (playbook).
        step: String,
        /// Unit (cluster, pool or host; with node or EVS).
        unit: String,
        /// The template source.
        template: String,
        /// What went wrong.
        message: String,
    },
    /// `serial` waves with a tiered shape (its stages are the tier order).
    #[error("playbook `{playbook}` takes hosts tier by tier (`shape.tiers`), in stages of their own: `serial` waves are not available with tiers")]
    WavesWithTiers {
        /// Playbook name.
        playbook: String,
    },
    /// A condition (`that`, `unless`, `expect`) does not parse or reads a fact no probe gives.
    #[error("step `{step}`: {message}")]
    Condition {
        /// Step id (playbook).
        step: String,
        /// What is wrong.
        message: String,
    },
    /// A template uses a variable that is not defined for this step.
    #[error("step `{step}` of `{unit}`: variable `{variable}` is undefined")]
    Undefined {
        /// Step id (playbook).
        step: String,
        /// Unit (cluster, pool or host; with node or EVS).
        unit: String,
        /// The variable.
        variable: String,
    },
    /// A rendered value is not a valid name of the kind it must be.
    #[error("step `{step}` of `{unit}`: `{value}` is not a valid {}: {source}", kind.describe())]
    InvalidValue {
        /// Step id (playbook).
        step: String,
        /// Unit.
        unit: String,
        /// The rendered value.
        value: String,
        /// The kind it had to be.
        kind: NameKind,
        /// Why it was refused.
        source: NameError,
    },
    /// A rendered node is not a node of the cluster.
    #[error("step `{step}` of `{unit}`: `{node}` is not a node of cluster `{cluster}`")]
    NotANode {
        /// Step id (playbook).
        step: String,
        /// Unit.
        unit: String,
        /// The node named.
        node: String,
        /// Cluster.
        cluster: String,
    },
    /// A rendered group is not a group of the cluster.
    #[error("step `{step}` of `{unit}`: `{group}` is not a group of cluster `{cluster}`")]
    NotAGroup {
        /// Step id (playbook).
        step: String,
        /// Unit.
        unit: String,
        /// The group named.
        group: String,
        /// Cluster.
        cluster: String,
    },
    /// No node has its Cluster service up when a cluster-wide step must run.
    #[error("step `{step}` of `{unit}` is cluster-wide but no node has its Cluster service up at that point")]
    NoNodeUp {
        /// Step id (playbook).
        step: String,
        /// Unit.
        unit: String,
    },
    /// A cluster-wide action names a node whose Cluster service is stopped at that point.
    #[error("step `{step}` of `{unit}` needs the Cluster service of `{node}`, which is stopped at that point")]
    NodeDown {
        /// Step id (playbook).
        step: String,
        /// Unit.
        unit: String,
        /// The node.
        node: String,
    },
    /// A node is stopped or updated while it still owns groups (E3-C).
    #[error("step `{step}` of `{unit}` ({action}) runs while `{node}` still owns group `{group}`: move the groups off first (E3-C)")]
    NodeStillOwns {
        /// Step id (playbook).
        step: String,
        /// Unit.
        unit: String,
        /// Action kind.
        action: &'static str,
        /// The node.
        node: String,
        /// A group it owns.
        group: String,
    },
    /// The Cluster service of a node is stopped and never started again in the plan.
    #[error("step `{step}` stops the Cluster service of `{node}` in `{unit}` and no later step starts it again")]
    NeverRestarted {
        /// Step id (plan).
        step: String,
        /// Unit.
        unit: String,
        /// The node.
        node: String,
    },
    /// An EVS would be upgraded or brought online on a node not at the target (`group-on-upgraded-node`).
    #[error("step `{step}` of `{unit}`: group `{group}` would be on `{node}`, which is not upgraded yet: a group comes online only on a node at or above its build (T2)")]
    NotUpgraded {
        /// Step id (playbook).
        step: String,
        /// Unit.
        unit: String,
        /// The group.
        group: String,
        /// The node.
        node: String,
    },
    /// Something that compares with the playbook's target, in a playbook without one.
    #[error("playbook `{playbook}` has no `target`, but {what} needs one")]
    NoTarget {
        /// Playbook name.
        playbook: String,
        /// What needs it.
        what: String,
    },
    /// A shape with `failover: false` never moves a group.
    #[error("step `{step}` of `{unit}` ({action}) moves a group, but the playbook's shape has `failover: false` (nodes are updated with their groups on them)")]
    MoveWithoutFailover {
        /// Step id (playbook).
        step: String,
        /// Unit.
        unit: String,
        /// Action kind.
        action: &'static str,
    },
    /// The finished plan breaks a rule [`crate::check_rules`] proves (the playbook leaves out
    /// something a declared invariant requires, such as the virtual-server upgrade).
    #[error("the plan breaks {rule}: {message}")]
    RuleBroken {
        /// Rule id.
        rule: String,
        /// What is wrong.
        message: String,
    },
    /// A stage lists a site the inventory does not have.
    #[error("stage `{stage}` lists site `{site}`, which is not in the inventory")]
    UnknownStageSite {
        /// Stage.
        stage: String,
        /// Site.
        site: String,
    },
    /// A site is listed in two stages.
    #[error("site `{site}` is listed in stage `{first}` and again in stage `{second}`")]
    SiteInTwoStages {
        /// Site.
        site: String,
        /// First stage.
        first: String,
        /// Second stage.
        second: String,
    },
    /// A stage names a group or host the inventory lacks.
    #[error("stage `{stage}` names {what} `{name}`, which is not in the inventory")]
    UnknownStageMember {
        /// Stage.
        stage: String,
        /// `group` or `host`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// A site with selected hosts is in no stage.
    #[error("site `{site}` has selected hosts but is in no stage of the rollout (add it, or a `sites: rest` stage)")]
    SiteInNoStage {
        /// Site.
        site: String,
    },
}

fn cluster_words(cluster: &str) -> String {
    if cluster.is_empty() {
        "any cluster that has that group".to_owned()
    } else {
        format!("cluster `{cluster}`")
    }
}

/// Every error found while planning (never empty when returned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanErrors(pub Vec<PlanError>);

impl fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} planning errors:", many.len())?;
                for e in many {
                    write!(f, "\n  - {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for PlanErrors {}
