//! Domain types and traits of Lockstep, the Windows/Exchange rollout engine.
//!
//! This crate is the bottom of the workspace: every other crate depends on it and it depends on
//! nothing but `serde`, `thiserror`, `async-trait`, `jiff` (playbook durations) and `lcid` (MS-LCID's locale catalogue, pure
//! data). It holds the validated [`Name`] (the only way a string reaches a remote command line),
//! [`Version`]/[`WindowsRelease`]/[`Product`]/[`Edition`], the fleet ([`Fleet`], [`Host`] with
//! or without [`Exchange`], [`Cluster`], [`Pool`], [`Site`], [`Locale`]), playbooks as loaded ([`Playbook`]), the
//! plan ([`Plan`], [`PlannedStep`], [`Action`]), halt classes ([`HaltClass`]), the step-runner
//! contract ([`StepRunner`] and its [`Outcome`], [`Probe`], [`FactOut`], [`StepError`]) and the
//! traits the engine is generic over: [`Transport`], [`StateStore`] and [`EventSink`]. It performs no
//! I/O and must never depend on WinRM, SQLite, tokio or the lab.
#![deny(missing_docs)]

pub mod condition;
pub mod descriptor;
pub mod duration;
pub mod event;
pub mod fleet;
pub mod halt;
pub mod invariant;
pub mod name;
pub mod plan;
pub mod playbook;
pub mod probe;
pub mod step;
pub mod store;
pub mod transport;
pub mod version;

pub use condition::{Cmp, Condition, ConditionError, FactValue};
pub use descriptor::{ActionDescriptor, Availability};
pub use duration::duration_text;
pub use event::{Event, EventSink, NullSink};
pub use fleet::{
    Auth, Cluster, ClusterGroup, ClusterMode, Connection, Exchange, Fleet, FrontEndScope,
    GroupKind, Host, Locale, Pool, Role, Scheme, SecretSource, Site, VirtualServer,
};
pub use halt::{HaltClass, Standing};
pub use invariant::{Invariant, Invariants};
pub use name::{Name, NameError, NameKind};
pub use plan::{Action, Judge, Plan, PlanHash, PlannedStage, PlannedStep, StepIndex};
pub use playbook::{
    ActionSpec, Batch, FailureBudget, Gate, JudgeSpec, NodeOrderKind, PackageKind, Phase, Playbook,
    PreflightCheck, RebootPolicy, Rollout, Scope, Shape, Stage, StepSpec, Target, Units,
};
pub use probe::{FactDef, FactProbe};
pub use step::{FactOut, Outcome, Probe, StageHalt, StepError, StepRunner};
pub use store::{
    Approval, Fact, Fence, HostLease, RunId, RunLease, RunLock, RunMeta, RunRecord, RunStatus,
    RunSummary, StateStore, StepRecord, StepState, StoreError, StoreFuture,
};
pub use transport::{CommandOutput, Transport, TransportError, WmiObject};
pub use version::{Edition, Product, Version, VersionParseError, WindowsRelease};

/// Milliseconds since the Unix epoch (the one clock reading the crates share for records).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
