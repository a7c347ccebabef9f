//! One descriptor per action: what a playbook writes (`kind`, its fields), what the action does
//! to the availability of the node, whether it is read-only, where it runs, its estimate and
//! default timeout. The spec loader, the planner, `--check` and the docs read this table; the
//! command lines, `execute` and the "already done?" probe live in `lockstep-actions`, matched
//! exhaustively on [`crate::Action`] (no catch-all arm treats an unknown action as harmless).

use serde::{Deserialize, Serialize};

/// What an action does to the availability of the node it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Availability {
    /// Nothing (reads, moves of groups between nodes that stay up).
    #[default]
    Unchanged,
    /// Takes the node out of service until a later step brings it back (Cluster service stop,
    /// NLB drain, `Suspend-ClusterNode -Drain`).
    TakesOut,
    /// Brings the node back into service (Cluster service start, NLB start, `Resume-ClusterNode`).
    BringsBack,
    /// Out of service while it runs (an installer, a restart).
    WhileRunning,
}

/// The static description of one action kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionDescriptor {
    /// The kebab-case name playbooks write (`move-group`).
    pub kind: &'static str,
    /// One line for the docs and `lockstep check`.
    pub summary: &'static str,
    /// Fields the action takes besides the common step keys.
    pub fields: &'static [&'static str],
    /// Its effect on the node's availability (generic steps may declare their own with
    /// `availability:`).
    pub availability: Availability,
    /// Reads only (generic steps may declare `read_only: true`).
    pub read_only: bool,
    /// Runs on the node it acts on (never across a double hop).
    pub node_local: bool,
    /// Only meaningful on a failover cluster.
    pub cluster_only: bool,
    /// Estimated duration, seconds (the planner refines installs and failover tours).
    pub estimate_secs: u64,
    /// Timeout when the step gives none, seconds.
    pub default_timeout_secs: u64,
}

#[allow(clippy::too_many_arguments)] // a table row: the positional form keeps the table readable
const fn d(
    kind: &'static str,
    summary: &'static str,
    fields: &'static [&'static str],
    availability: Availability,
    read_only: bool,
    node_local: bool,
    cluster_only: bool,
    estimate_secs: u64,
    default_timeout_secs: u64,
) -> ActionDescriptor {
    ActionDescriptor {
        kind,
        summary,
        fields,
        availability,
        read_only,
        node_local,
        cluster_only,
        estimate_secs,
        default_timeout_secs,
    }
}

use Availability::{BringsBack, TakesOut, Unchanged, WhileRunning};

/// The fields every generic step (`command`, `powershell`) takes besides its text.
pub const GENERIC_FIELDS: &[&str] = &[
    "ok_exit_codes",
    "restart_exit_codes",
    "unless",
    "expect",
    "read_only",
    "availability",
];

/// Every action, in the order the docs list them.
pub const ACTIONS: &[ActionDescriptor] = &[
    d("move-group", "Move a cluster group to a node (`cluster group \"G\" /moveto:N`).", &["group", "to"], Unchanged, false, false, true, 60, 600),
    d("evacuate-node", "Move every group the node owns to another node, cluster group last.", &["to"], Unchanged, false, true, true, 90, 600),
    d("stop-cluster-service", "Stop the node's Cluster service (`net stop clussvc`).", &[], TakesOut, false, true, true, 30, 600),
    d("start-cluster-service", "Start the node's Cluster service (`net start clussvc`).", &[], BringsBack, false, true, true, 30, 600),
    d("evs-resources-offline", "Take an EVS group's resources offline except IP Address, Physical Disk, Network Name.", &["group"], Unchanged, false, false, true, 60, 600),
    d("evs-resources-online", "Bring every resource of an EVS group online.", &["group"], Unchanged, false, false, true, 60, 600),
    d("upgrade-virtual-server", "Upgrade Exchange Virtual Server after T2's checks (operator step unless `command`).", &["group", "command"], Unchanged, false, false, true, 300, 600),
    d("stage", "Copy a package to the node over WinRM in chunks, verified by SHA-256 (no double hop); skipped when the node has it.", &["source", "sha256", "dest"], Unchanged, false, true, false, 60, 3600),
    d("install", "Run the playbook's installer; 0/3010/1641 succeed; restart per `reboot`.", &["package", "args", "prerequisite", "reboot"], WhileRunning, false, true, false, 1200, 7200),
    d("reboot", "Restart the node and wait until its boot time changes.", &[], WhileRunning, false, true, false, 300, 1800),
    d("stop-services", "Stop services (`net stop`), a missing one skipped.", &["services"], Unchanged, false, true, false, 30, 600),
    d("start-services", "Start services (`net start`).", &["services"], Unchanged, false, true, false, 30, 600),
    d("assert-version", "Halt (version-mismatch) unless the Exchange build equals the target.", &[], Unchanged, true, false, false, 10, 600),
    d("preflight", "Read-only checks (services stopped, no setup running, edition, pending reboot...).", &["checks"], Unchanged, true, false, false, 10, 600),
    d("failover-test", "Move a group to every other node and back, checking it comes online.", &["group"], Unchanged, false, false, true, 120, 600),
    d("confirm", "Wait for `lockstep approve`, or run a site command whose exit code 0 confirms.", &["message", "command"], Unchanged, true, false, false, 0, 600),
    d("nlb-drain", "Drain the node out of Network Load Balancing (`wlbs drainstop`).", &[], TakesOut, false, true, false, 30, 600),
    d("nlb-start", "Put the node back into Network Load Balancing (`wlbs start`).", &[], BringsBack, false, true, false, 30, 600),
    d("command", "Run a cmd.exe command line; judged by exit code (`ok_exit_codes`, `restart_exit_codes`), skipped when `unless` holds.", &["command"], Unchanged, false, false, false, 60, 600),
    d("powershell", "Run a PowerShell script with -EncodedCommand; judged by exit code and by `expect` over its JSON output.", &["script"], Unchanged, false, false, false, 60, 600),
    d("wait-until", "Poll facts until a condition holds (`that`, `every`), or halt at the timeout.", &["that", "every"], Unchanged, true, false, false, 60, 1800),
    d("assert", "Halt unless a condition over facts holds (`that`; default: the playbook's target).", &["that"], Unchanged, true, false, false, 10, 600),
];

/// The actions that move cluster groups between nodes (a shape with `failover: false` has none).
const MOVES_GROUPS: &[&str] = &["move-group", "evacuate-node", "failover-test"];

impl ActionDescriptor {
    /// Whether the action moves cluster groups between nodes.
    pub fn moves_groups(&self) -> bool {
        MOVES_GROUPS.contains(&self.kind)
    }

    /// Whether the action works through the Cluster service while the node stays in service
    /// (moves, virtual-server resources, the failover test): the node it runs on must have
    /// its Cluster service up.
    pub fn needs_cluster_service(&self) -> bool {
        self.cluster_only && self.availability == Availability::Unchanged
    }
}

/// The descriptor of an action kind.
pub fn descriptor(kind: &str) -> Option<&'static ActionDescriptor> {
    ACTIONS.iter().find(|a| a.kind == kind)
}

/// Every action kind, as playbooks write them.
pub fn kinds() -> Vec<&'static str> {
    ACTIONS.iter().map(|a| a.kind).collect()
}

/// The fields `kind` takes (its own and, for generic steps, [`GENERIC_FIELDS`]).
pub fn fields(kind: &str) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = descriptor(kind)
        .map(|d| d.fields.to_vec())
        .unwrap_or_default();
    if matches!(kind, "command" | "powershell") {
        v.extend_from_slice(GENERIC_FIELDS);
    }
    v
}

#[cfg(test)]
mod effect_tests {
    use super::ACTIONS;

    #[test]
    fn group_moves_and_cluster_service_needs_come_from_the_table() {
        let pick = |f: fn(&super::ActionDescriptor) -> bool| -> Vec<&str> {
            ACTIONS.iter().filter(|d| f(d)).map(|d| d.kind).collect()
        };
        assert_eq!(
            pick(|d| d.moves_groups()),
            ["move-group", "evacuate-node", "failover-test"]
        );
        assert_eq!(
            pick(|d| d.needs_cluster_service()),
            [
                "move-group",
                "evacuate-node",
                "evs-resources-offline",
                "evs-resources-online",
                "upgrade-virtual-server",
                "failover-test"
            ]
        );
    }
}
