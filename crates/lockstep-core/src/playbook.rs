//! Playbooks as loaded: a shape, phases of templated steps, a target and a rollout.
//!
//! A playbook is data an administrator reads. Its steps carry templates (`{{ node }}`, `{{ peer }}`,
//! `{{ group }}`, playbook and host variables); the planner expands them per cluster, node, EVS, pool
//! or host and validates every rendered value before it can become an [`crate::Action`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::fleet::Role;
use crate::name::Name;
use crate::version::{Edition, Product, Version};

/// What a playbook's steps are expanded over, one unit at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Units {
    /// Each failover cluster, one node out of service at a time.
    Clusters,
    /// Each host that is not a cluster node, on its own (or, with tiers, tier by tier).
    #[default]
    Hosts,
}

/// The shape of a procedure, declared by the playbook (`shape:`): what it works on, which of the
/// selected clusters and hosts it takes, in what order, and whether groups may move. Nothing in
/// the code knows a procedure by name: a KB 328839 procedure is one shape among others.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shape {
    /// Clusters or hosts.
    pub units: Units,
    /// `cluster_mode:` only clusters of this mode are taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_mode: Option<crate::fleet::ClusterMode>,
    /// `roles:` only hosts of these Exchange roles are taken (empty: any role).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
    /// `tiers:` hosts are taken tier by tier across the organisation (every host of the first
    /// role before any of the next); load-balanced pools of the first tier move together.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Role>,
    /// `failover: false`: no group of a cluster ever moves (nodes are updated with their groups
    /// on them).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub failover: bool,
    /// `node_order:` the order of a cluster's nodes (passive-first when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_order: Option<NodeOrderKind>,
}

impl Default for Shape {
    /// Each host on its own, groups free to move (were there any), passive-first.
    fn default() -> Self {
        Shape {
            units: Units::Hosts,
            cluster_mode: None,
            roles: Vec::new(),
            tiers: Vec::new(),
            failover: true,
            node_order: None,
        }
    }
}

impl Shape {
    /// Whether the units are failover clusters.
    pub fn is_cluster(&self) -> bool {
        self.units == Units::Clusters
    }

    /// Whether hosts are taken tier by tier (front-ends before back-ends).
    pub fn is_tiered(&self) -> bool {
        !self.tiers.is_empty()
    }
}

impl Target {
    /// The target as a condition over facts: `exchange_build >= BUILD` (what `target` means
    /// inside `that:` and `unless:`).
    pub fn condition(&self) -> crate::condition::Condition {
        crate::condition::Condition::Fact {
            name: crate::probe::EXCHANGE_BUILD.to_owned(),
            cmp: Some((crate::condition::Cmp::Ge, self.build.to_string())),
        }
    }
}

/// The order in which a cluster's nodes are taken (`shape.node_order`). Unless said otherwise, the
/// first node's groups go to its peer, the node owning the most groups among the others; every
/// other node's go to the first node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeOrderKind {
    /// A node owning no group (or the fewest) first, the others in inventory order.
    PassiveFirst,
    /// The node owning the most groups (the active node) first, the others after it.
    ActiveFirst,
    /// By node name.
    ByName,
    /// Every node by the number of groups it owns, fewest first (ties: inventory order).
    FewestGroupsFirst,
    /// The passive nodes first, the active node (owner of the most virtual-server groups, else
    /// of the most groups) last; the first node's groups go to the active node.
    ActiveLast,
    /// The owner of the first virtual server first, then the owner of another one (its peer),
    /// then the rest: an active/active cluster.
    OwnersFirst,
}

/// Service pack or hotfix: decides whether the EVS upgrade runs (`virtual-server-upgrade`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackageKind {
    /// A service pack: changes the build; EVSs must be upgraded.
    ServicePack,
    /// A hotfix: no EVS upgrade.
    Hotfix,
}

/// What the playbook brings the fleet to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The product the package is for.
    pub product: Product,
    /// The build every targeted host must show afterwards.
    pub build: Version,
    /// Service pack or hotfix.
    pub kind: PackageKind,
    /// Editions the package is for (E2-ED); empty means every edition but Conferencing.
    pub editions: Vec<Edition>,
}

/// What a reboot-capable step does with the installer's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RebootPolicy {
    /// Restart when the installer says so (3010), wait when it started one (1641).
    #[default]
    IfRequired,
    /// Restart after the install whatever the exit code.
    Always,
    /// Never restart; a 3010 is recorded as a pending reboot.
    Never,
}

/// The part of a cluster or fleet a phase's steps are expanded over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Once per cluster, on a node whose Cluster service is up.
    Cluster,
    /// Every node of the cluster at once (read-only steps: preflight).
    AllNodes,
    /// The first node of the procedure's order.
    FirstNode,
    /// The remaining nodes, one at a time, in the procedure's order.
    OtherNodes,
    /// Every node, one at a time, in the procedure's order.
    EachNode,
    /// Each Exchange virtual server of the cluster.
    EachVirtualServer,
    /// Each non-clustered host matching the phase's roles, independently.
    EachHost,
    /// Each load-balanced pool: every member does step N before any member does step N+1.
    Pool,
}

/// A preflight check (G5, G6, E2-ED, G1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "check")]
pub enum PreflightCheck {
    /// G5: these services (antivirus, backup, SNMP, monitoring) are stopped.
    ServicesStopped {
        /// Service names.
        services: Vec<String>,
    },
    /// G6: no `setup.exe`, `update.exe` or `xcopy.exe` (or the listed images) is running.
    NoProcesses {
        /// Image names.
        images: Vec<String>,
    },
    /// E2-ED: the installed edition is one the package is for.
    EditionMatches,
    /// The installed product line is the one the package is for.
    ProductMatches,
    /// No reboot is pending before the install.
    NoPendingReboot,
    /// The Cluster service of the node is running (before moving groups).
    ClusterServiceRunning,
}

impl PreflightCheck {
    /// Whether the check compares the node with the playbook's target (edition, product).
    pub fn compares_with_target(&self) -> bool {
        matches!(
            self,
            PreflightCheck::EditionMatches | PreflightCheck::ProductMatches
        )
    }
}

/// A step of a playbook, before expansion: strings may hold templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum ActionSpec {
    /// Move a cluster group to a node (`cluster group "G" /moveto:N`).
    MoveGroup {
        /// Group name template.
        group: String,
        /// Destination node template.
        to: String,
    },
    /// Move every group owned by the node (cluster group and EVS groups) to another node.
    EvacuateNode {
        /// Destination node template (usually `{{ peer }}`).
        to: String,
    },
    /// Stop the Cluster service on the node (`net stop clussvc`).
    StopClusterService,
    /// Start the Cluster service on the node (`net start clussvc`).
    StartClusterService,
    /// Take every resource of an EVS group offline except IP Address, Physical Disk, Network Name.
    EvsResourcesOffline {
        /// Group name template.
        group: String,
    },
    /// Bring every resource of an EVS group online.
    EvsResourcesOnline {
        /// Group name template.
        group: String,
    },
    /// Upgrade Exchange Virtual Server: an operator step unless `command` is
    /// given; guarded by the T2 preconditions.
    UpgradeVirtualServer {
        /// Group name template.
        group: String,
        /// Site-supplied command line for unattended runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<String>,
    },
    /// Copy a package from the controller to the node (WinRM, in chunks), verified by SHA-256:
    /// the install that follows reads a local path, not a share (no double hop).
    Stage {
        /// Path template of the package on the controller (`{{ package_root }}/SP2/update.exe`).
        source: String,
        /// Its SHA-256 template (64 hex digits).
        sha256: String,
        /// Destination path template on the node (`C:\Lockstep\packages\SP2\update.exe`).
        dest: String,
    },
    /// Run an installer.
    Install {
        /// Installer path template.
        package: String,
        /// Installer switches template.
        #[serde(default)]
        args: String,
        /// What is installed: the playbook's target package, or a prerequisite hotfix.
        #[serde(default)]
        prerequisite: Option<String>,
        /// Reboot handling.
        #[serde(default)]
        reboot: RebootPolicy,
    },
    /// Restart the node and wait until it is back (boot time changed).
    Reboot,
    /// Stop services (G5).
    StopServices {
        /// Service name templates.
        services: Vec<String>,
    },
    /// Start services (after the install).
    StartServices {
        /// Service name templates.
        services: Vec<String>,
    },
    /// Halt unless the node's installed build equals the playbook's target.
    AssertVersion,
    /// Run read-only checks.
    Preflight {
        /// The checks.
        checks: Vec<PreflightCheck>,
    },
    /// Move a group to every other node and back, checking it comes online each time.
    FailoverTest {
        /// Group name template.
        group: String,
    },
    /// Ask the operator to confirm (G1 backups); a playbook may supply a check command instead.
    Confirm {
        /// What the operator must do or check.
        message: String,
        /// Site-supplied command whose exit code 0 confirms, for unattended runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<String>,
    },
    /// Drain the node out of Network Load Balancing (`wlbs drainstop`).
    NlbDrain,
    /// Put the node back into Network Load Balancing (`wlbs start`).
    NlbStart,
    /// Run a cmd.exe command line (template) on the node.
    Command {
        /// The command line template.
        command: String,
        /// How the result is judged.
        #[serde(flatten)]
        judge: JudgeSpec,
    },
    /// Run a PowerShell script (template) with `powershell.exe -EncodedCommand`.
    Powershell {
        /// The script template.
        script: String,
        /// How the result is judged.
        #[serde(flatten)]
        judge: JudgeSpec,
    },
    /// Poll facts until a condition holds, or halt when the step's timeout passes.
    WaitUntil {
        /// The condition (facts of the playbook, `target`).
        that: String,
        /// Poll interval (`30s`, `2m`); 10 s when absent.
        #[serde(default)]
        every: Option<String>,
    },
    /// Halt unless a condition over facts holds.
    Assert {
        /// The condition; the playbook's target when absent.
        #[serde(default)]
        that: Option<String>,
    },
}

fn default_ok_codes() -> Vec<i32> {
    vec![0]
}

/// How a generic step (`command`, `powershell`) is judged, as written in the playbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgeSpec {
    /// Exit codes that mean success (default `[0]`).
    #[serde(default = "default_ok_codes")]
    pub ok_exit_codes: Vec<i32>,
    /// Exit codes (also successes) after which the node is restarted and waited for.
    #[serde(default)]
    pub restart_exit_codes: Vec<i32>,
    /// A condition over facts: when it holds before the step, the step is skipped (and on
    /// resume it counts as done): how a change stays exactly-once. `target` is allowed.
    #[serde(default)]
    pub unless: Option<String>,
    /// A condition over the JSON the step prints (`powershell`; field names as fact names).
    #[serde(default)]
    pub expect: Option<String>,
    /// The step only reads.
    #[serde(default)]
    pub read_only: bool,
    /// What the step does to the node's availability.
    #[serde(default)]
    pub availability: crate::descriptor::Availability,
}

impl Default for JudgeSpec {
    fn default() -> Self {
        JudgeSpec {
            ok_exit_codes: default_ok_codes(),
            restart_exit_codes: Vec::new(),
            unless: None,
            expect: None,
            read_only: false,
            availability: crate::descriptor::Availability::Unchanged,
        }
    }
}

impl ActionSpec {
    /// The descriptor of the action (its fields, availability, estimate...).
    pub fn descriptor(&self) -> &'static crate::descriptor::ActionDescriptor {
        crate::descriptor::descriptor(self.kind()).expect("every action has a descriptor")
    }

    /// Whether the step only reads (generic steps say so themselves).
    pub fn is_read_only(&self) -> bool {
        match self {
            ActionSpec::Command { judge, .. } | ActionSpec::Powershell { judge, .. } => {
                judge.read_only
            }
            _ => self.descriptor().read_only,
        }
    }

    /// The kebab-case name of the action, as playbooks write it (`move-group`).
    pub fn kind(&self) -> &'static str {
        match self {
            ActionSpec::MoveGroup { .. } => "move-group",
            ActionSpec::EvacuateNode { .. } => "evacuate-node",
            ActionSpec::StopClusterService => "stop-cluster-service",
            ActionSpec::StartClusterService => "start-cluster-service",
            ActionSpec::EvsResourcesOffline { .. } => "evs-resources-offline",
            ActionSpec::EvsResourcesOnline { .. } => "evs-resources-online",
            ActionSpec::UpgradeVirtualServer { .. } => "upgrade-virtual-server",
            ActionSpec::Stage { .. } => "stage",
            ActionSpec::Install { .. } => "install",
            ActionSpec::Reboot => "reboot",
            ActionSpec::StopServices { .. } => "stop-services",
            ActionSpec::StartServices { .. } => "start-services",
            ActionSpec::AssertVersion => "assert-version",
            ActionSpec::Preflight { .. } => "preflight",
            ActionSpec::FailoverTest { .. } => "failover-test",
            ActionSpec::Confirm { .. } => "confirm",
            ActionSpec::NlbDrain => "nlb-drain",
            ActionSpec::NlbStart => "nlb-start",
            ActionSpec::Command { .. } => "command",
            ActionSpec::Powershell { .. } => "powershell",
            ActionSpec::WaitUntil { .. } => "wait-until",
            ActionSpec::Assert { .. } => "assert",
        }
    }
}

/// One templated step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSpec {
    /// Step id, unique in the playbook.
    pub id: Name,
    /// What a person reads.
    pub name: String,
    /// The rule it implements (free text the playbook chooses: `PATCH-1`, a KB rule id).
    pub rule: String,
    /// The action.
    pub action: ActionSpec,
    /// A template expression; the step is planned only where it is true.
    pub when: Option<String>,
    /// Timeout for the step, seconds.
    pub timeout_secs: Option<u64>,
}

/// A group of steps expanded over one scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    /// What a person reads.
    pub name: String,
    /// What the phase is expanded over.
    pub scope: Scope,
    /// Host roles the phase applies to; empty means every role.
    pub roles: Vec<Role>,
    /// The steps, in order.
    pub steps: Vec<StepSpec>,
}

/// What must happen before a stage starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Gate {
    /// Start as soon as the previous stage is done.
    #[default]
    None,
    /// Wait for `lockstep approve`.
    Approval,
    /// Wait this many seconds after the previous stage (soak time).
    Soak {
        /// Seconds.
        secs: u64,
    },
}

/// A stage of a staged rollout: what it takes of the planned clusters, pools and hosts. A stage
/// selects by site names (`sites: [a, b]`), by a count of sites in inventory order
/// (`sites: 1`: the next site no other stage names), by what is left (`sites: rest` or `"*"`),
/// by inventory group (`groups: [canary]`) or by host (`hosts: [a, b]`). A unit (cluster, pool,
/// host) goes to the first stage that takes it; a cluster or pool goes with any of its hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// Stage name (`canary`).
    pub name: Name,
    /// Sites named in the stage (`"*"` here means [`Stage::rest`]).
    pub sites: Vec<Name>,
    /// Gate before the stage starts.
    pub gate: Gate,
    /// Sites of this stage worked on at once (overrides the rollout's).
    pub max_parallel_sites: Option<u32>,
    /// `sites: N`: the next N sites in inventory order that no stage names and no earlier
    /// count took (whether or not they hold anything this playbook changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_count: Option<u32>,
    /// `sites: rest` (or `"*"`): every unit no other stage takes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rest: bool,
    /// `groups:`: the units with a host in one of these inventory groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Name>,
    /// `hosts:`: the units holding one of these hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<Name>,
    /// Hosts of this stage that may fail before the rollout halts (on top of the overall
    /// budget, which still counts every failed host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_budget: Option<FailureBudget>,
}

impl Stage {
    /// A stage of named sites (no count, group, host or budget).
    pub fn of_sites(name: Name, sites: Vec<Name>, gate: Gate) -> Stage {
        Stage {
            name,
            sites,
            gate,
            max_parallel_sites: None,
            site_count: None,
            rest: false,
            groups: Vec::new(),
            hosts: Vec::new(),
            failure_budget: None,
        }
    }
}

/// How failures are tolerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct FailureBudget {
    /// Hosts that may fail (and be left in their safe state) before the rollout halts; 0 halts at
    /// the first failure.
    pub max_failed_hosts: u32,
}

/// The staged rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// Stages in order; empty means one stage holding every site.
    pub stages: Vec<Stage>,
    /// Sites worked on at once within a stage.
    pub max_parallel_sites: u32,
    /// Clusters/hosts of one site worked on at once (0: unlimited).
    pub max_parallel_per_site: u32,
    /// Failure budget.
    pub failure_budget: FailureBudget,
    /// Waves of hosts (Ansible's `serial: [1, 10%, 50%]`): batch sizes over the planned units
    /// in inventory order, the last size repeating; empty: no waves. Exclusive with `stages`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub serial: Vec<Batch>,
    /// Gate before every wave but the first (approval, soak).
    #[serde(default)]
    pub wave_gate: Gate,
    /// A condition over facts checked on every host of a wave before the next wave changes
    /// anything (after the gate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave_health: Option<String>,
}

/// One entry of `serial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Batch {
    /// This many units.
    Count(u32),
    /// This percentage of all planned units (at least one), as Ansible rounds it (down).
    Percent(u32),
}

impl Batch {
    /// The wave sizes for `total` units: each entry in turn, the last repeating, the final
    /// wave holding what is left.
    pub fn sizes(serial: &[Batch], total: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut left = total;
        let mut i = 0;
        while left > 0 && !serial.is_empty() {
            let b = serial[i.min(serial.len() - 1)];
            let n = match b {
                Batch::Count(n) => n as usize,
                Batch::Percent(p) => total * p as usize / 100,
            }
            .max(1)
            .min(left);
            out.push(n);
            left -= n;
            i += 1;
        }
        out
    }
}

impl Default for Rollout {
    fn default() -> Self {
        Rollout {
            stages: Vec::new(),
            max_parallel_sites: 1,
            max_parallel_per_site: 0,
            failure_budget: FailureBudget::default(),
            serial: Vec::new(),
            wave_gate: Gate::None,
            wave_health: None,
        }
    }
}

#[cfg(test)]
mod wave_tests {
    use super::Batch::{self, Count, Percent};

    #[test]
    fn waves_follow_ansible_serial() {
        // 20 servers in waves of 1, 10% and the rest (50% repeating).
        assert_eq!(
            Batch::sizes(&[Count(1), Percent(10), Percent(50)], 20),
            [1, 2, 10, 7]
        );
        assert_eq!(Batch::sizes(&[Count(3)], 7), [3, 3, 1]);
        // A percentage below one unit still makes progress.
        assert_eq!(Batch::sizes(&[Percent(10)], 3), [1, 1, 1]);
        assert_eq!(Batch::sizes(&[Percent(100)], 4), [4]);
        assert!(Batch::sizes(&[Count(2)], 0).is_empty());
        let total: usize = Batch::sizes(&[Count(1), Percent(30)], 101).iter().sum();
        assert_eq!(total, 101);
    }
}

/// A loaded, validated playbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Playbook {
    /// Playbook name (file stem).
    pub name: Name,
    /// Title a person reads.
    pub title: String,
    /// What the playbook calls its procedure (free text, such as `CAU`); reports cite it.
    pub procedure: String,
    /// What it works on and in what order.
    #[serde(default)]
    pub shape: Shape,
    /// The invariants the plan must keep beyond those every plan keeps, with the rule each cites.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub invariants: crate::invariant::Invariants,
    /// Inventory patterns selecting the hosts (host, group, site, cluster names; `all`).
    pub hosts: Vec<String>,
    /// `exchange: false`: a change to plain Windows hosts, not to Exchange: the shape takes the
    /// selected hosts and clusters that run no Exchange, never an Exchange server.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub exchange: bool,
    /// Target package and build (an Exchange service pack or hotfix); a playbook for plain
    /// Windows hosts may have none and judge its change by conditions over facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Playbook variables (templates may use them).
    pub vars: BTreeMap<String, String>,
    /// Facts the playbook declares (`facts:`): names conditions may use, with their probes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<crate::probe::FactDef>,
    /// Phases in order.
    pub phases: Vec<Phase>,
    /// Staged rollout.
    pub rollout: Rollout,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Parses a playbook's duration into whole seconds: `30m`, `90s`, `2h`, `1h30m`, `1d`, also
/// spelled out (`1 hour 30 minutes`) or in ISO 8601 (`PT1H30M`), by jiff. A day is 24 hours
/// here; a negative, fractional-second, month or year duration is refused.
pub fn parse_duration(s: &str) -> Option<u64> {
    let span: jiff::Span = s.trim().parse().ok()?;
    if span.is_negative() || span.get_months() != 0 || span.get_years() != 0 {
        return None;
    }
    let secs = span
        .total((
            jiff::Unit::Second,
            jiff::SpanRelativeTo::days_are_24_hours(),
        ))
        .ok()?;
    (secs.fract() == 0.0 && secs < u64::MAX as f64).then_some(secs as u64)
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;

    #[test]
    fn durations_read_as_a_person_writes_them() {
        assert_eq!(parse_duration("30m"), Some(1800));
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("2h"), Some(7200));
        assert_eq!(parse_duration("1h30m"), Some(5400));
        assert_eq!(parse_duration("1d"), Some(86_400));
        assert_eq!(parse_duration(" 1 hour 30 minutes "), Some(5400));
        assert_eq!(parse_duration("PT1H30M"), Some(5400));
        assert_eq!(parse_duration("0s"), Some(0));
        for bad in ["30", "m", "3x", "", "-5m", "1.5s", "1mo", "1y", "1h30"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}
