//! The plan: concrete steps with validated parameters, their order (a DAG) and a hash.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::descriptor::{ActionDescriptor, Availability};
use crate::fleet::Role;
use crate::halt::HaltClass;
use crate::name::Name;
use crate::playbook::{FailureBudget, Gate, PackageKind, PreflightCheck, RebootPolicy, Shape};
use crate::probe::FactDef;
use crate::version::{Edition, Product, Version};

/// A concrete action: every value that reaches a command line is a validated [`Name`].
/// `lockstep-actions` renders the command lines; the step's `host` is where they run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Action {
    /// `cluster group "G" /moveto:TO /wait`.
    MoveGroup {
        /// Cluster group.
        group: Name,
        /// Destination node.
        to: Name,
    },
    /// Move every group the node owns (found live) to `to`.
    EvacuateNode {
        /// The node emptied.
        node: Name,
        /// Destination node.
        to: Name,
    },
    /// Stop the Cluster service on the step's host.
    StopClusterService,
    /// Start the Cluster service on the step's host.
    StartClusterService,
    /// Offline every resource of the group except IP Address, Physical Disk and Network Name.
    EvsResourcesOffline {
        /// EVS group.
        group: Name,
    },
    /// Online every resource of the group.
    EvsResourcesOnline {
        /// EVS group.
        group: Name,
    },
    /// Upgrade Exchange Virtual Server, after checking T2's preconditions.
    UpgradeVirtualServer {
        /// EVS group.
        group: Name,
        /// The EVS.
        evs: Name,
        /// Site-supplied command line; `None` pauses for the operator.
        command: Option<String>,
    },
    /// Copy `source` (on the controller) to `dest` on the node, in chunks, checked by SHA-256.
    Stage {
        /// The package on the controller.
        source: String,
        /// Its SHA-256, lower-case hex.
        sha256: String,
        /// Destination path on the node.
        dest: Name,
    },
    /// Run an installer and judge its exit code (0, 3010, 1641 succeed).
    Install {
        /// Installer path.
        package: Name,
        /// Switches.
        args: Name,
        /// Service pack or hotfix.
        kind: PackageKind,
        /// A prerequisite hotfix id (e.g. `KB831464`) instead of the playbook's package.
        prerequisite: Option<String>,
        /// Product line the package is for.
        product: Product,
        /// Build expected afterwards (for the playbook's package).
        target: Option<Version>,
        /// Reboot handling.
        reboot: RebootPolicy,
    },
    /// Restart and wait for the node to come back.
    Reboot,
    /// Stop services.
    StopServices {
        /// Service names.
        services: Vec<Name>,
    },
    /// Start services.
    StartServices {
        /// Service names.
        services: Vec<Name>,
    },
    /// Halt unless the installed build is `expected`.
    AssertVersion {
        /// Product line.
        product: Product,
        /// Expected build.
        expected: Version,
    },
    /// Read-only checks.
    Preflight {
        /// The checks.
        checks: Vec<PreflightCheck>,
        /// Editions the package is for (E2-ED).
        editions: Vec<Edition>,
        /// Product line the package is for (none when the playbook has no target: then the
        /// checks need none).
        product: Option<Product>,
    },
    /// Move the group to each listed node in turn and back to the first, checking it is online.
    FailoverTest {
        /// Group.
        group: Name,
        /// Nodes in visiting order; the last is where the group ends.
        nodes: Vec<Name>,
    },
    /// An operator confirmation (or a site-supplied command that confirms with exit code 0).
    Confirm {
        /// Instructions.
        message: String,
        /// Site-supplied command.
        command: Option<String>,
    },
    /// `wlbs drainstop`.
    NlbDrain,
    /// `wlbs start`.
    NlbStart,
    /// A cmd.exe command line.
    Command {
        /// The rendered command line (one line).
        command: String,
        /// How it is judged.
        judge: Judge,
    },
    /// A PowerShell script, sent as `powershell.exe -NoProfile -NonInteractive -EncodedCommand`.
    Powershell {
        /// The rendered script.
        script: String,
        /// How it is judged.
        judge: Judge,
    },
    /// Poll `facts` until `that` holds.
    WaitUntil {
        /// The condition.
        that: Condition,
        /// Seconds between polls.
        every_secs: u64,
        /// The probes of the facts `that` reads.
        facts: Vec<FactDef>,
    },
    /// Halt unless `that` holds.
    Assert {
        /// The condition.
        that: Condition,
        /// The class of the halt when it does not hold (version-mismatch for a target).
        class: HaltClass,
        /// The probes of the facts `that` reads.
        facts: Vec<FactDef>,
    },
}

/// How a generic step's result is judged, with every condition parsed and its facts attached.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Judge {
    /// Exit codes that mean success.
    pub ok_exit_codes: Vec<i32>,
    /// Exit codes after which the node is restarted and waited for.
    pub restart_exit_codes: Vec<i32>,
    /// Skip (and count as done on resume) when this holds before the step.
    pub unless: Option<Condition>,
    /// A condition over the JSON the step prints.
    pub expect: Option<Condition>,
    /// The step only reads.
    pub read_only: bool,
    /// Its effect on the node's availability.
    pub availability: Availability,
    /// The probes of the facts `unless` reads.
    pub facts: Vec<FactDef>,
}

impl Action {
    /// Whether the action changes the node (false: probes and checks only).
    pub fn is_change(&self) -> bool {
        match self {
            Action::Command { judge, .. } | Action::Powershell { judge, .. } => !judge.read_only,
            _ => !self.descriptor().read_only,
        }
    }

    /// The descriptor of the action kind.
    pub fn descriptor(&self) -> &'static ActionDescriptor {
        crate::descriptor::descriptor(self.kind()).expect("every action has a descriptor")
    }

    /// Its effect on the availability of the node it runs on.
    pub fn availability(&self) -> Availability {
        match self {
            Action::Command { judge, .. } | Action::Powershell { judge, .. } => judge.availability,
            _ => self.descriptor().availability,
        }
    }

    /// Whether the step, when it waits for the operator, waits for something a person must DO
    /// on the fleet (Upgrade Exchange Virtual Server without a site command), not just
    /// acknowledge (backups taken, notes read). Such a step is never approved by `--yes` nor by
    /// a bare `lockstep approve`: only by `lockstep approve RUN STEP` naming it.
    pub fn needs_named_approval(&self) -> bool {
        matches!(self, Action::UpgradeVirtualServer { command: None, .. })
    }

    /// A short kebab-case name of the action (`move-group`).
    pub fn kind(&self) -> &'static str {
        match self {
            Action::MoveGroup { .. } => "move-group",
            Action::EvacuateNode { .. } => "evacuate-node",
            Action::StopClusterService => "stop-cluster-service",
            Action::StartClusterService => "start-cluster-service",
            Action::EvsResourcesOffline { .. } => "evs-resources-offline",
            Action::EvsResourcesOnline { .. } => "evs-resources-online",
            Action::UpgradeVirtualServer { .. } => "upgrade-virtual-server",
            Action::Stage { .. } => "stage",
            Action::Install { .. } => "install",
            Action::Reboot => "reboot",
            Action::StopServices { .. } => "stop-services",
            Action::StartServices { .. } => "start-services",
            Action::AssertVersion { .. } => "assert-version",
            Action::Preflight { .. } => "preflight",
            Action::FailoverTest { .. } => "failover-test",
            Action::Confirm { .. } => "confirm",
            Action::NlbDrain => "nlb-drain",
            Action::NlbStart => "nlb-start",
            Action::Command { .. } => "command",
            Action::Powershell { .. } => "powershell",
            Action::WaitUntil { .. } => "wait-until",
            Action::Assert { .. } => "assert",
        }
    }
}

/// Index of a step in [`Plan::steps`].
pub type StepIndex = usize;

/// One concrete step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// Stable, readable id, unique in the plan: `PRG-EX01/install-sp` or `PRGCL1/EVS1/upgrade`.
    pub id: String,
    /// Playbook step id it came from.
    pub spec: Name,
    /// What a person reads (rendered).
    pub name: String,
    /// The rule id the playbook gives the step (free text).
    pub rule: String,
    /// Stage index in [`Plan::stages`].
    pub stage: usize,
    /// Site.
    pub site: Name,
    /// Cluster, for clustered steps.
    pub cluster: Option<Name>,
    /// Load-balanced pool, for pool steps.
    pub pool: Option<Name>,
    /// The host the commands run on.
    pub host: Name,
    /// Role of that host.
    pub role: Role,
    /// The node this step takes out of service (from a stop of its Cluster service, or an
    /// install, until it is back): used by the one-node-at-a-time proofs.
    pub out_of_service: bool,
    /// The action with its parameters.
    pub action: Action,
    /// Steps of the same stage that must be done before this one starts. Stage order is not
    /// written as edges: the engine starts a stage only when the previous one is complete.
    pub after: Vec<StepIndex>,
    /// Timeout, seconds.
    pub timeout_secs: u64,
    /// Estimated duration, seconds (for the critical path and progress estimates).
    pub estimate_secs: u64,
}

/// A stage of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStage {
    /// Stage name (for front-end/back-end procedures: `front-ends/canary`, `back-ends/canary`).
    pub name: String,
    /// Sites in the stage.
    pub sites: Vec<Name>,
    /// Gate before it starts.
    pub gate: Gate,
    /// Sites worked on at once.
    pub max_parallel_sites: u32,
    /// Hosts of this stage that may fail before the rollout halts (the stage's own budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_budget: Option<FailureBudget>,
}

/// A plan: the unit a run executes, stored with its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Playbook name.
    pub playbook: Name,
    /// What the playbook calls its procedure (free text).
    pub procedure: String,
    /// The playbook's shape (what the rule checker proves the plan against).
    #[serde(default)]
    pub shape: Shape,
    /// The invariants the playbook declares, with the rule each cites.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub invariants: crate::invariant::Invariants,
    /// Target build (the playbook's Exchange target), if it has one.
    pub target: Option<Version>,
    /// Stages in order.
    pub stages: Vec<PlannedStage>,
    /// Steps in a topological order (every `after` index is smaller than the step's own).
    pub steps: Vec<PlannedStep>,
    /// Clusters/hosts of one site worked on at once (0: unlimited).
    pub max_parallel_per_site: u32,
    /// Failure budget.
    pub failure_budget: FailureBudget,
    /// Hex SHA-256 of the canonical JSON of everything above.
    pub hash: PlanHash,
}

impl Plan {
    /// The Exchange product line the plan's target build belongs to, if any.
    pub fn product(&self) -> Option<crate::version::Product> {
        self.target.and_then(crate::version::Product::of_build)
    }
}

/// A plan's hash (hex SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlanHash(pub String);

impl fmt::Display for PlanHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PlanHash {
    /// The first 12 hex digits, for display.
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(12)]
    }
}

impl Plan {
    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<(StepIndex, &PlannedStep)> {
        self.steps.iter().enumerate().find(|(_, s)| s.id == id)
    }

    /// The lower bound of any run's wall time, in seconds of estimate: stages run one after the
    /// other (the engine enforces that, not `after` edges), and within a stage the longest chain
    /// of dependent steps sets the pace. Gates and parallelism limits aside.
    pub fn critical_path_secs(&self) -> u64 {
        let mut finish = vec![0u64; self.steps.len()];
        let mut stage_longest = vec![0u64; self.stages.len().max(1)];
        for (i, s) in self.steps.iter().enumerate() {
            let start = s.after.iter().map(|&d| finish[d]).max().unwrap_or(0);
            finish[i] = start.saturating_add(s.estimate_secs);
            let slot = s.stage.min(stage_longest.len() - 1);
            stage_longest[slot] = stage_longest[slot].max(finish[i]);
        }
        stage_longest
            .into_iter()
            .fold(0u64, |a, b| a.saturating_add(b))
    }
}
