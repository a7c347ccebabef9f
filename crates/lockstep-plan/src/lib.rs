//! The planner of Lockstep: turns a [`Fleet`] and a [`Playbook`] into a [`Plan`], purely and
//! deterministically.
//!
//! [`plan`] selects hosts with the playbook's patterns (and `--limit`), lets the KB 328839
//! procedure decide which clusters, pools and hosts it takes, orders cluster nodes as the
//! procedure says ([`NodeOrder`]), expands each phase per cluster, node, EVS, pool or host,
//! renders every template (minijinja, strict) and validates every rendered value into a
//! [`lockstep_core::Name`] of the right kind. Along the way it follows each cluster's state
//! (group owners, Cluster service up or down, upgraded nodes) and refuses plans that would move
//! an EVS to an old node, stop a node that still owns a group, or act on a stopped node. The
//! result is a DAG of steps in topological order, grouped in stages (front-ends before
//! back-ends for E3-FB/E2-FB), with out-of-service windows, estimates and a hash ([`plan_hash`]).
//! [`check_rules`] proves the ordering rules independently of the planner; [`render_text`] is
//! what `lockstep plan` prints. Errors ([`PlanErrors`]) list every problem found.
//!
//! This crate does no I/O and depends only on `lockstep-core` (plus minijinja, serde_json,
//! sha2, hex): never on the spec loader, the engine, WinRM, a store or the lab.
#![deny(missing_docs)]

mod error;
mod estimate;
mod hash;
mod options;
mod order;
mod planner;
mod render;
mod rules;
mod select;
mod template;

pub use error::{PlanError, PlanErrors};
pub use estimate::{default_timeout_secs, estimate_secs};
pub use hash::plan_hash;
pub use options::PlanOptions;
pub use order::NodeOrder;
pub use render::{render_text, render_text_with_fleet};
pub use rules::{check_rules, RuleViolation};

use lockstep_core::{Fleet, Plan, Playbook};

/// Plans `playbook` over `fleet`: the same inputs always give the same plan, byte for byte.
/// Returns every error found when the plan cannot be made.
pub fn plan(fleet: &Fleet, playbook: &Playbook, opts: &PlanOptions) -> Result<Plan, PlanErrors> {
    planner::Planner::new(fleet, playbook, opts).run()
}
