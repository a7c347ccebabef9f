//! The planner of Lockstep: turns a [`Fleet`] and a [`Playbook`] into a [`Plan`], purely and
//! deterministically.
//!
//! [`plan`] selects hosts with the playbook's patterns (and `--limit`), lets the playbook's
//! declared shape decide which clusters, pools and hosts it takes, orders cluster nodes as the
//! shape says ([`NodeOrder`]), expands each phase per cluster, node, EVS, pool or host,
//! renders every template (minijinja, strict) and validates every rendered value into a
//! [`lockstep_core::Name`] of the right kind. Along the way it follows each cluster's state
//! (group owners, Cluster service up or down, upgraded nodes) and refuses plans that would move
//! an EVS to an old node, stop a node that still owns a group, or act on a stopped node. The
//! result is a DAG of steps in topological order, grouped in stages (the first tier before the
//! second for a tiered shape), with out-of-service windows, estimates and a hash ([`plan_hash`]).
//! [`check_rules`] proves the ordering rules and the declared invariants independently of the
//! planner; [`render_text`] is
//! what `lockstep plan` prints. Errors ([`PlanErrors`]) list every problem found.
//!
//! # What a plan holds
//!
//! - **Selection.** `playbook.hosts` and `--limit` patterns (host, group, site, cluster, pool
//!   names, globs, `all`; `!x` excludes, `&x` intersects) pick hosts; the shape then takes
//!   whole clusters (by product, and `cluster_mode`), pools and non-clustered hosts (by
//!   `roles` or `tiers`). A cluster or pool only partly selected, a pattern that matches
//!   nothing, a host of the second tier selected while one of the first not at the target is
//!   left out are errors.
//! - **Expansion.** Phases in playbook order per unit; `cluster` once, `all-nodes` on every node
//!   at once (read-only steps only), `first-node`/`other-nodes`/`each-node` in [`NodeOrder`],
//!   `each-virtual-server` per EVS, `each-host` per host, `pool` in lockstep (every member does
//!   step N before any does N+1; pool members take the `each-host` phases in lockstep too).
//!   Built-in template names win over `-e`, which wins over playbook variables, which win over
//!   host (inventory) variables: an inventory never changes a value the playbook sets.
//! - **Where steps run.** Node steps on the node (double hop); cluster and EVS steps on the first
//!   node if its Cluster service is up at that point, else on its peer, else on any node up.
//! - **State checks.** The planner follows group owners, Cluster service state and upgraded
//!   nodes through the unit: a node stopped or updated while it owns a group (E3-C, unless the
//!   shape has `failover: false`), a group moved to a node that is down or not upgraded after
//!   its EVS upgrade (T2), any move with `failover: false`, a Cluster service never restarted:
//!   all errors.
//! - **Out of service.** A node's window runs from its Cluster service stop (or an NLB drain, or
//!   its first install/reboot) to its Cluster service start (or NLB start, or the end of that
//!   phase block); a cluster's units are one chain, so windows never overlap (`one-node-out-per-cluster`).
//! - **Order and ids.** Steps in topological order; `after` edges only inside a stage; ids
//!   `HOST/spec`, `CLUSTER/spec`, `CLUSTER/GROUP/spec`, with `#2`... on repeats. Stages from
//!   the rollout (tiered shapes with organisation scope: `front-ends/<stage>` then
//!   `back-ends/<stage>`; with site scope, edges from a site's front-ends to its back-ends).
//!
//! This crate does no I/O and depends only on `lockstep-core` (plus minijinja, serde_json,
//! sha2, hex): never on the spec loader, the engine, WinRM, a store or the lab.
#![deny(missing_docs)]

mod cluster;
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
pub use rules::{check_rules, check_rules_with_owners, RuleViolation};
pub use select::pattern_matches;

use lockstep_core::{Fleet, Plan, Playbook};

/// The hosts `patterns` select (the `--limit` syntax; an empty list selects every host), in
/// fleet order; every pattern that matches nothing is an error.
pub fn select_hosts(
    fleet: &Fleet,
    patterns: &[String],
) -> Result<Vec<lockstep_core::Name>, PlanErrors> {
    let mut errors = Vec::new();
    let sel = select::Selector::new(fleet).select(patterns, true, &mut errors);
    if !errors.is_empty() {
        return Err(PlanErrors(errors));
    }
    Ok(fleet
        .hosts
        .iter()
        .enumerate()
        .filter(|(i, _)| sel.contains(*i))
        .map(|(_, h)| h.name.clone())
        .collect())
}

/// Plans `playbook` over `fleet`: the same inputs always give the same plan, byte for byte.
/// Returns every error found when the plan cannot be made.
pub fn plan(fleet: &Fleet, playbook: &Playbook, opts: &PlanOptions) -> Result<Plan, PlanErrors> {
    planner::Planner::new(fleet, playbook, opts).run()
}
