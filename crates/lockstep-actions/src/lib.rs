//! Lockstep's built-in actions: for every [`lockstep_core::Action`], the exact command lines it
//! sends (docs/commands.md), how their results are judged, the "already done?" probe used on
//! resume, live discovery, and the version and precondition gates of KB 328839.
//!
//! The engine calls [`execute`] and [`probe`] with a [`Ctx`] (transport, fleet, the planned
//! step, its timeout); they return an [`Outcome`] / [`Probe`] or an [`StepError`] carrying the
//! [`lockstep_core::HaltClass`] the run halts with. [`render()`] lists the command lines for
//! `--check`; [`read_build`] reads a node's Exchange build; [`discover`] reads the live fleet
//! before a run and [`Discovery::differences`] compares it with the inventory;
//! [`discover_with`] runs the same [`BuiltinProbe`]s for `lockstep facts` ([`Discovery::drift`],
//! [`Discovery::to_facts`]). Results are judged only by
//! exit codes and locale-independent values (sc state numbers, registry data, WQL properties):
//! never by localised words. The pure parsers live in [`parse`].
//!
//! This crate talks to nodes only through `&dyn lockstep_core::Transport`: it must never depend
//! on WinRM, the lab, the store or the engine.
//!
//! | action | sends (on `step.host`) | done when | probe |
//! |---|---|---|---|
//! | MoveGroup | `cluster group "G" /moveto:N /wait:120` | exit 0 and WQL owner = N | owner = N |
//! | EvacuateNode | the same for every group the node owns, cluster group last | node owns nothing | same |
//! | Stop/StartClusterService | `net stop clussvc` / `net start clussvc` | `sc query clussvc` state 1 / 4 | state |
//! | EvsResourcesOffline | `cluster res "R" /offline /wait:120`, System Attendant last | all but IP/Disk/Name offline | same |
//! | EvsResourcesOnline | `cluster group "G" /online /wait:120` | group state 0 | same |
//! | UpgradeVirtualServer | T2 checks, then the site command or [`Outcome::Waiting`] | exit 0 and the EVS reports the node's build (`Exchange_Server`) | the EVS reports the node's build |
//! | Stage | `certutil -hashfile`, `>>"DEST.b64" echo CHUNK` per 4,608 bytes, `certutil -decode`, `move /y` | SHA-256 on the node = the playbook's | same (a partial copy continues) |
//! | Install | `"PACKAGE" ARGS` after G6/E3-C/product checks; restart per policy | 0/3010/1641, then build = target | build >= target / hotfix listed / installer running |
//! | Reboot | `shutdown /r /t 0 /f` | new `LastBootUpTime` | no pending reboot |
//! | Stop/StartServices | `net stop "S"` / `net start "S"` (1060 skipped) | `sc query` state | same |
//! | AssertVersion, Preflight | reads only | build equal / every check holds | build equal / not done |
//! | FailoverTest | a move per node | online on each node in turn | not done |
//! | Confirm | the site command or [`Outcome::Waiting`] | exit 0 | not done |
//! | NlbDrain/NlbStart | `wlbs drainstop` / `wlbs start` | `wlbs query` exit 1007 / 1005 | same |
//! | Command | the playbook's cmd.exe line (skipped when `unless` holds) | exit code in `ok_exit_codes`/`restart_exit_codes` (then a restart) | `unless` holds / its program still running |
//! | Powershell | `powershell.exe -NoProfile -NonInteractive -EncodedCommand B64` | the same, and `expect` over its JSON output | `unless` holds |
//! | WaitUntil | the facts' probes, every `every_secs` | the condition holds within the timeout | it holds now |
//! | Assert | the facts' probes | the condition holds (else the step's halt class) | not done |
//!
//! Facts recorded: `group.<G>.owner.before` (moves), `build.before` / `build.after` (install,
//! assert), `boot.time` (restarts), `reboot.pending` (3010 under policy `never`).
#![deny(missing_docs)]

use std::time::Duration;

use lockstep_core::{Action, Fleet, Name, PlannedStep, Transport};

mod build;
mod cluster;
mod discovery;
mod evs;
pub mod facts;
mod gates;
mod generic;
mod install;
mod nlb;
mod operator;
pub mod parse;
mod reboot;
mod remote;
pub mod render;
mod services;
pub mod stage;

pub use build::{read_build, NodeBuild};
pub use discovery::{
    discover, discover_with, BuiltinProbe, Discovery, NodeFacts, UnreachableKind,
    DISCOVERY_CONCURRENCY,
};
pub use gates::{edition_allowed, tier_order, tier_order_now, Shortfall, TierOrder};
pub use install::{install_verdict, InstallVerdict};
pub use lockstep_core::step::{FactOut, Outcome, Probe, StepError};
pub use render::render;

/// Everything an action needs to run one planned step.
pub struct Ctx<'a> {
    /// How nodes are reached.
    pub transport: &'a dyn Transport,
    /// The fleet (inventory) the plan was made from.
    pub fleet: &'a Fleet,
    /// The step: `step.host` is where commands run, `step.action` what is done.
    pub step: &'a PlannedStep,
    /// The step's timeout (also the installer's and the reboot wait's).
    pub timeout: Duration,
    /// The longest wait between two polls of a rebooting node (the first polls come sooner,
    /// backing off to this), and the poll of a pending service.
    pub reboot_poll: Duration,
}

impl<'a> Ctx<'a> {
    pub(crate) fn host(&self) -> &'a Name {
        &self.step.host
    }

    pub(crate) fn node(&self) -> remote::Node<'a> {
        remote::Node::new(self.transport, &self.step.host)
    }

    /// The cluster of the step (or of its host), from the inventory.
    pub(crate) fn cluster(&self) -> Option<&'a lockstep_core::Cluster> {
        let fleet = self.fleet;
        self.step
            .cluster
            .as_ref()
            .or_else(|| fleet.host(self.step.host.as_str())?.cluster.as_ref())
            .and_then(|c| fleet.cluster(c.as_str()))
    }
}

/// The postcondition of a step the operator performed by hand and approved by name
/// ([`Action::needs_named_approval`]): `Ok(None)` when its effect is in place, `Ok(Some(why))`
/// when it is not (the run must not go on). Steps without a postcondition: `Ok(None)`.
pub async fn verify_performed(ctx: &Ctx<'_>) -> Result<Option<String>, StepError> {
    match &ctx.step.action {
        Action::UpgradeVirtualServer { group, evs, .. } => {
            evs::not_performed(ctx, group, evs).await
        }
        _ => Ok(None),
    }
}

/// Runs the step's action on `ctx.step.host` and judges the result.
pub async fn execute(ctx: &Ctx<'_>) -> Result<Outcome, StepError> {
    let action = &ctx.step.action;
    tracing::info!(step = %ctx.step.id, host = %ctx.step.host, action = action.kind(), "execute");
    match action {
        Action::MoveGroup { group, to } => cluster::move_group(ctx, group, to).await,
        Action::EvacuateNode { node, to } => cluster::evacuate(ctx, node, to).await,
        Action::StopClusterService => cluster::stop_clussvc(ctx).await,
        Action::StartClusterService => cluster::start_clussvc(ctx).await,
        Action::EvsResourcesOffline { group } => cluster::evs_offline(ctx, group).await,
        Action::EvsResourcesOnline { group } => cluster::evs_online(ctx, group).await,
        Action::FailoverTest { group, nodes } => cluster::failover_test(ctx, group, nodes).await,
        Action::UpgradeVirtualServer {
            group,
            evs,
            command,
        } => evs::upgrade(ctx, group, evs, command.as_deref()).await,
        Action::Stage {
            source,
            sha256,
            dest,
        } => stage::execute(ctx, source, sha256, dest).await,
        Action::Install { .. } => install::execute(ctx, action).await,
        Action::Reboot => reboot::execute(ctx).await,
        Action::StopServices { services } => services::stop(ctx, services).await,
        Action::StartServices { services } => services::start(ctx, services).await,
        Action::AssertVersion { product, expected } => {
            gates::assert_version(ctx, *product, *expected).await
        }
        Action::Preflight {
            checks,
            editions,
            product,
        } => gates::preflight(ctx, checks, editions, *product).await,
        Action::Confirm { message, command } => {
            operator::confirm(ctx, message, command.as_deref()).await
        }
        Action::NlbDrain => nlb::drain(ctx).await,
        Action::NlbStart => nlb::start(ctx).await,
        Action::Command { command, judge } => generic::run(ctx, command, false, judge).await,
        Action::Powershell { script, judge } => generic::run(ctx, script, true, judge).await,
        Action::WaitUntil {
            that,
            every_secs,
            facts,
        } => generic::wait_until(ctx, that, *every_secs, facts).await,
        Action::Assert { that, class, facts } => generic::assert(ctx, that, *class, facts).await,
    }
}

/// Finds out, without changing anything, whether the step's effect is already in place.
pub async fn probe(ctx: &Ctx<'_>) -> Result<Probe, StepError> {
    let action = &ctx.step.action;
    match action {
        Action::MoveGroup { group, to } => cluster::probe_owner(ctx, group, to).await,
        Action::EvacuateNode { node, .. } => cluster::probe_evacuated(ctx, node).await,
        Action::StopClusterService => cluster::probe_clussvc(ctx, false).await,
        Action::StartClusterService => cluster::probe_clussvc(ctx, true).await,
        Action::EvsResourcesOffline { group } => cluster::probe_evs_offline(ctx, group).await,
        Action::EvsResourcesOnline { group } => cluster::probe_group_online(ctx, group).await,
        Action::Stage {
            source,
            sha256,
            dest,
        } => stage::probe(ctx, source, sha256, dest).await,
        Action::Install { .. } => install::probe(ctx, action).await,
        Action::Reboot => reboot::probe(ctx).await,
        Action::StopServices { services } => services::probe(ctx, services, false).await,
        Action::StartServices { services } => services::probe(ctx, services, true).await,
        Action::AssertVersion { expected, .. } => gates::probe_version(ctx, *expected).await,
        Action::NlbDrain => nlb::probe(ctx, parse::WLBS_STOPPED).await,
        Action::NlbStart => nlb::probe(ctx, parse::WLBS_CONVERGED).await,
        Action::Command { command, judge } => generic::probe_run(ctx, command, false, judge).await,
        Action::Powershell { script, judge } => generic::probe_run(ctx, script, true, judge).await,
        Action::WaitUntil { that, facts, .. } => generic::probe_condition(ctx, that, facts).await,
        Action::UpgradeVirtualServer { group, evs, .. } => Ok(evs::probe(ctx, group, evs).await),
        // Read-only or operator steps, and steps whose effect cannot be seen live (a finished
        // failover tour): running them again is safe.
        Action::FailoverTest { .. }
        | Action::Preflight { .. }
        | Action::Confirm { .. }
        | Action::Assert { .. } => Ok(Probe::NotDone),
    }
}
