//! Options of one planning call (from the command line).

use std::collections::BTreeMap;

/// What the operator adds to the playbook's own selection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanOptions {
    /// Host, group, site, cluster or pool patterns (`--limit`); the plan keeps only what they
    /// select as well. Empty: no limit.
    pub limit: Vec<String>,
    /// Live owners: cluster group name to the node that owns it now. Overrides the inventory's
    /// `owner` / `cluster_group_owner`, and decides the node order of cluster procedures. A key
    /// is `GROUP` (applied to the clusters where the owner is a node) or `CLUSTER/GROUP` (for
    /// group names several clusters share, such as `Cluster Group`).
    pub owners: BTreeMap<String, String>,
    /// Extra variables from the operator's command line (`-e NAME=VALUE`, as ansible-playbook):
    /// above inventory and playbook variables, below the built-in names. The only variables,
    /// with the playbook's own, that site-supplied `command:` templates may use.
    pub extra_vars: BTreeMap<String, String>,
}
