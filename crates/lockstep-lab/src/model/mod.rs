//! The simulated Windows Server / failover cluster / Exchange fleet behind the lab's WinRM
//! server.
//!
//! [`World`] is built from a core [`lockstep_core::Fleet`] and a [`LabConfig`], and implements
//! [`crate::backend::Backend`]: it answers the command lines of `docs/commands.md` (cluster.exe,
//! net, sc, reg, tasklist, wlbs, shutdown, installers, `labctl`) and WQL queries as Windows
//! Server 2003 would, with localised console text for cs-CZ, it-IT, nl-NL and ja-JP nodes. It
//! enforces the KB 328839 behaviour the engine must respect: groups cannot move to a node whose
//! Cluster service is down (5050), cluster.exe fails with 1722 where the local Cluster service is
//! stopped, an EVS older than its node cannot come online (T1, event 1025), an upgraded EVS
//! cannot come online on a node still at the old build (E3 step 12), "Upgrade Exchange Virtual
//! Server" checks every T2 precondition, installers fail on a running antivirus (G5, FileInUse),
//! a running setup (G6, 1618), a product or edition mismatch (E2-ED) and a running Cluster
//! service (E3-C). Durations are simulated and multiplied by `time_scale` (tokio time).
//! Everything that happens is written to a [`crate::record::Recorder`].
//!
//! Refinements of `docs/commands.md` the lab makes (Windows' behaviour where the doc is silent):
//! product/edition/version mismatches exit 1642 (`ERROR_PATCH_TARGET_NOT_FOUND`); the E3-C
//! refusal exits 1603; `cluster node N /start` failing exits 1067; a second `shutdown /r` while
//! one is pending exits 1115; the text of cluster errors after the localised `System error`
//! line is English; NLB state survives a restart (the engine brings pool members back with
//! `wlbs start`).
//!
//! This module must not depend on the WinRM server ([`crate::backend`] is the only seam) nor on
//! any lockstep crate other than `lockstep-core`.

mod cluster_cmd;
mod cmdline;
mod commands;
mod config;
mod fault;
mod files;
mod install;
mod powershell;
mod ps_exec;
mod snapshot;
mod state;
mod text;
mod world;
mod wql;

pub use cmdline::CmdLine;
pub use config::{
    sha256_hex, DoubleHop, HostConfig, LabConfig, PackageEffect, PackageSpec, ServiceSpec,
    StartType, DEFAULT_PACKAGE_BYTES,
};
pub use fault::{Fault, FaultParseError};
pub use snapshot::{ClusterSnapshot, FileSnapshot, GroupSnapshot, HostSnapshot, WorldSnapshot};
pub use world::World;
pub use wql::WqlQuery;
