//! The proofs: each KB 328839 ordering rule as an independent checker over a finished plan.
//!
//! The checkers share nothing with the planner but the plan and the fleet: they read the steps,
//! the `after` edges (through their transitive closure) and the stages, so a planner bug that
//! breaks a rule shows up here. Cluster owners are the inventory's (live `--owner` overrides
//! are not seen by the checkers).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use lockstep_core::{
    invariant::cited, Action, Availability, Fleet, FrontEndScope, Invariant, NodeOrderKind,
    PackageKind, Plan, PlannedStep, StepIndex,
};

/// A rule the plan breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleViolation {
    /// Rule id: `PLAN-DAG` and the like, or the rule the playbook cites for an invariant (its
    /// name when it cites none).
    pub rule: String,
    /// Ids of the steps involved.
    pub steps: Vec<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RuleViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.rule, self.message)
    }
}

/// Transitive closure of `after`, per connected part of the DAG (a cluster's or a host's chain,
/// a pool, a site's front- and back-ends): memory grows with the parts, not the plan. Edges that
/// cross stages or point forward are reported by the DAG check and left out here.
struct Reach {
    stage_of: Vec<usize>,
    /// Connected part of each step, and its index inside the part.
    part: Vec<usize>,
    local: Vec<usize>,
    /// Per step: where its ancestor bitset (local indices within its part) starts in `bits`.
    offset: Vec<usize>,
    bits: Vec<u64>,
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

impl Reach {
    fn new(plan: &Plan) -> Reach {
        let n = plan.steps.len();
        let valid = |i: usize, d: usize| d < i && plan.steps[d].stage == plan.steps[i].stage;
        let mut parent: Vec<usize> = (0..n).collect();
        for (i, s) in plan.steps.iter().enumerate() {
            for &d in &s.after {
                if valid(i, d) {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, d));
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
        let mut part = vec![0usize; n];
        let mut local = vec![0usize; n];
        let mut size = vec![0usize; n];
        for i in 0..n {
            let root = find(&mut parent, i);
            part[i] = root;
            local[i] = size[root];
            size[root] += 1;
        }
        let mut offset = Vec::with_capacity(n + 1);
        let mut total = 0usize;
        for i in 0..n {
            offset.push(total);
            total += size[part[i]].div_ceil(64);
        }
        offset.push(total);
        let mut bits = vec![0u64; total];
        for (i, s) in plan.steps.iter().enumerate() {
            let (o, words) = (offset[i], offset[i + 1] - offset[i]);
            for &d in &s.after {
                if valid(i, d) {
                    let l = local[d];
                    bits[o + l / 64] |= 1 << (l % 64);
                    let od = offset[d];
                    for w in 0..words {
                        bits[o + w] |= bits[od + w];
                    }
                }
            }
        }
        Reach {
            stage_of: plan.steps.iter().map(|s| s.stage).collect(),
            part,
            local,
            offset,
            bits,
        }
    }

    /// Whether step `later` comes after step `earlier` in every run: a later stage, or a path
    /// of `after` edges within the stage.
    fn after(&self, later: StepIndex, earlier: StepIndex) -> bool {
        if self.stage_of[earlier] != self.stage_of[later] {
            return self.stage_of[earlier] < self.stage_of[later];
        }
        if self.part[earlier] != self.part[later] {
            return false;
        }
        let l = self.local[earlier];
        self.bits[self.offset[later] + l / 64] & (1 << (l % 64)) != 0
    }
}

fn v(rule: impl Into<String>, steps: &[&PlannedStep], message: String) -> RuleViolation {
    RuleViolation {
        rule: rule.into(),
        steps: steps.iter().map(|s| s.id.clone()).collect(),
        message,
    }
}

fn is_target_install(a: &Action) -> bool {
    matches!(
        a,
        Action::Install {
            prerequisite: None,
            ..
        }
    )
}

/// Checks every rule on `plan` (made from `fleet`); empty when the plan keeps them all.
///
/// Active nodes are the inventory's; [`check_rules_with_owners`] takes the live owners the plan
/// was made with.
pub fn check_rules(plan: &Plan, fleet: &Fleet) -> Vec<RuleViolation> {
    check_rules_with_owners(plan, fleet, &BTreeMap::new())
}

/// [`check_rules`] with live group owners (`PlanOptions::owners`: `GROUP` or `CLUSTER/GROUP` to
/// node) deciding which node is active, as the planner saw it.
pub fn check_rules_with_owners(
    plan: &Plan,
    fleet: &Fleet,
    owners: &BTreeMap<String, String>,
) -> Vec<RuleViolation> {
    let mut out = Vec::new();
    check_dag(plan, &mut out);
    let reach = Reach::new(plan);
    check_front_ends_first(plan, fleet, &reach, &mut out);
    check_pool_lockstep(plan, &reach, &mut out);
    check_clusters(plan, fleet, owners, &reach, &mut out);
    out
}

/// Owner of `group` of `cluster`: a live override (`CLUSTER/GROUP`, or `GROUP` naming a node of
/// this cluster), else the inventory's.
fn owner_of<'c>(
    cluster: &'c lockstep_core::Cluster,
    group: &lockstep_core::Name,
    inventory: &'c lockstep_core::Name,
    owners: &'c BTreeMap<String, String>,
) -> &'c str {
    let live = owners
        .iter()
        .find(|(k, _)| {
            k.split_once('/')
                .is_some_and(|(c, g)| cluster.name.eq_ignore_case(c) && group.eq_ignore_case(g))
        })
        .or_else(|| {
            owners.iter().find(|(k, v)| {
                group.eq_ignore_case(k) && cluster.nodes.iter().any(|n| n.eq_ignore_case(v))
            })
        })
        .map(|(_, v)| v.as_str());
    live.unwrap_or(inventory.as_str())
}

/// PLAN-ID, PLAN-DAG, PLAN-STAGE: unique ids, topological order, edges within a stage, stages
/// in order, each step's site in its stage.
fn check_dag(plan: &Plan, out: &mut Vec<RuleViolation>) {
    let mut seen = HashSet::new();
    let mut last_stage = 0usize;
    for (i, s) in plan.steps.iter().enumerate() {
        if !seen.insert(s.id.as_str()) {
            out.push(v(
                "PLAN-ID",
                &[s],
                format!("step id `{}` is not unique", s.id),
            ));
        }
        if s.stage >= plan.stages.len() {
            out.push(v(
                "PLAN-STAGE",
                &[s],
                format!(
                    "step `{}` is in stage {} of {}",
                    s.id,
                    s.stage,
                    plan.stages.len()
                ),
            ));
            continue;
        }
        if s.stage < last_stage {
            out.push(v(
                "PLAN-STAGE",
                &[s],
                format!(
                    "step `{}` of an earlier stage comes after a later stage's steps",
                    s.id
                ),
            ));
        }
        last_stage = last_stage.max(s.stage);
        if !plan.stages[s.stage].sites.contains(&s.site) {
            out.push(v(
                "PLAN-STAGE",
                &[s],
                format!(
                    "step `{}` is at site `{}`, which stage `{}` does not list",
                    s.id, s.site, plan.stages[s.stage].name
                ),
            ));
        }
        for &d in &s.after {
            if d >= i {
                out.push(v(
                    "PLAN-DAG",
                    &[s],
                    format!(
                        "step `{}` waits for step #{d}, which is not before it",
                        s.id
                    ),
                ));
            } else if plan.steps[d].stage != s.stage {
                out.push(v(
                    "PLAN-STAGE",
                    &[s, &plan.steps[d]],
                    format!(
                        "step `{}` waits for `{}` of another stage (stage order is the engine's)",
                        s.id, plan.steps[d].id
                    ),
                ));
            }
        }
    }
}

/// Tier order (`shape.tiers`): every host of the first tier before any of the second (of the
/// organisation, or of the site when the inventory scopes the rule per site).
fn check_front_ends_first(plan: &Plan, fleet: &Fleet, reach: &Reach, out: &mut Vec<RuleViolation>) {
    let [first_tier, second_tier, ..] = plan.shape.tiers[..] else {
        return;
    };
    let rule = cited(&plan.invariants, Invariant::TierOrder);
    let per_site = fleet.front_end_scope == FrontEndScope::Site;
    fn scope_key(s: &PlannedStep, per_site: bool) -> &str {
        if per_site {
            s.site.as_str()
        } else {
            ""
        }
    }
    let key = |s| scope_key(s, per_site);
    let standalone = |s: &PlannedStep, r| s.role == r && s.cluster.is_none();
    // Per scope: the last stage holding a front-end step, and the front-end steps per stage.
    let mut last_fe_stage: HashMap<&str, usize> = HashMap::new();
    let mut fe_by_stage: HashMap<(&str, usize), Vec<usize>> = HashMap::new();
    for (i, s) in plan.steps.iter().enumerate() {
        if standalone(s, first_tier) {
            let k = key(s);
            let e = last_fe_stage.entry(k).or_insert(s.stage);
            *e = (*e).max(s.stage);
            fe_by_stage.entry((k, s.stage)).or_default().push(i);
        }
    }
    for (b, sb) in plan.steps.iter().enumerate() {
        if !standalone(sb, second_tier) {
            continue;
        }
        let k = key(sb);
        let late = last_fe_stage
            .get(k)
            .filter(|&&st| st > sb.stage)
            .and_then(|&st| fe_by_stage.get(&(k, st)))
            .and_then(|v| v.first().copied());
        let same = fe_by_stage
            .get(&(k, sb.stage))
            .and_then(|v| v.iter().copied().find(|&f| !reach.after(b, f)));
        if let Some(f) = late.or(same) {
            let sf = &plan.steps[f];
            out.push(v(
                rule,
                &[sf, sb],
                format!(
                    "back-end step `{}` may run before front-end step `{}` is done",
                    sb.id, sf.id
                ),
            ));
            return;
        }
    }
}

/// `pool-together`: in a load-balanced pool, every member does step N before any member does
/// step N+1 (always checked; a violation cites the playbook's rule for it).
fn check_pool_lockstep(plan: &Plan, reach: &Reach, out: &mut Vec<RuleViolation>) {
    let rule = cited(&plan.invariants, Invariant::PoolTogether);
    let mut pools: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in plan.steps.iter().enumerate() {
        if let Some(p) = &s.pool {
            pools.entry(p.as_str()).or_default().push(i);
        }
    }
    for (pool, idx) in pools {
        // Rank of a step = position of (spec, n-th occurrence on its host) in the pool's order.
        let mut occurrence: HashMap<(&str, &str), usize> = HashMap::new();
        let mut rank_of_key: HashMap<(&str, usize), usize> = HashMap::new();
        let mut rank = Vec::with_capacity(idx.len());
        for &i in &idx {
            let s = &plan.steps[i];
            let o = occurrence
                .entry((s.host.as_str(), s.spec.as_str()))
                .or_insert(0);
            *o += 1;
            let next = rank_of_key.len();
            rank.push(*rank_of_key.entry((s.spec.as_str(), *o)).or_insert(next));
        }
        for (x, &a) in idx.iter().enumerate() {
            for (y, &b) in idx.iter().enumerate() {
                if rank[x] < rank[y] && !reach.after(b, a) {
                    let (sa, sb) = (&plan.steps[a], &plan.steps[b]);
                    out.push(v(
                        rule,
                        &[sa, sb],
                        format!(
                            "pool `{pool}`: `{}` may start before `{}` is done on every member",
                            sb.id, sa.id
                        ),
                    ));
                    return;
                }
            }
        }
    }
}

/// Per cluster: `one-node-out-per-cluster` (one node out of service at a time, every change
/// inside a window; always checked, citing the playbook's rule for it); the
/// declared node order where it names the active node (`active-last`, `active-first`); no
/// group moves with `failover: false`; and, when declared, the virtual-server upgrade (each
/// upgraded after the first node's install, before any other node goes out of service, on the
/// upgraded node).
fn check_clusters(
    plan: &Plan,
    fleet: &Fleet,
    owners: &BTreeMap<String, String>,
    reach: &Reach,
    out: &mut Vec<RuleViolation>,
) {
    let mut clusters: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in plan.steps.iter().enumerate() {
        if let Some(c) = &s.cluster {
            clusters.entry(c.as_str()).or_default().push(i);
        }
    }
    let one_out = cited(&plan.invariants, Invariant::OneNodeOutPerCluster);
    let by_name: HashMap<String, &lockstep_core::Cluster> = fleet
        .clusters
        .iter()
        .map(|c| (c.name.as_str().to_ascii_lowercase(), c))
        .collect();
    for (name, idx) in clusters {
        let steps = |i: usize| &plan.steps[i];
        // Out-of-service windows per node, in order of first appearance.
        let mut windows: Vec<(&str, usize, usize)> = Vec::new();
        let mut installs: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for &i in &idx {
            let s = steps(i);
            if s.out_of_service {
                match windows.iter_mut().find(|w| w.0 == s.host.as_str()) {
                    Some(w) => w.2 = i,
                    None => windows.push((s.host.as_str(), i, i)),
                }
            } else if matches!(
                s.action.availability(),
                Availability::TakesOut | Availability::WhileRunning
            ) {
                out.push(v(
                    one_out,
                    &[s],
                    format!(
                        "`{}` ({}) changes node `{}` but is not inside its out-of-service window",
                        s.id,
                        s.action.kind(),
                        s.host
                    ),
                ));
            }
            if is_target_install(&s.action) {
                installs.entry(s.host.as_str()).or_default().push(i);
            }
            if let Action::EvacuateNode { node, .. } = &s.action {
                if *node != s.host {
                    out.push(v(
                        "DOUBLE-HOP",
                        &[s],
                        format!("`{}` empties `{node}` but runs on `{}`", s.id, s.host),
                    ));
                }
            }
        }
        for (x, a) in windows.iter().enumerate() {
            for b in &windows[x + 1..] {
                if !(reach.after(b.1, a.2) || reach.after(a.1, b.2)) {
                    out.push(v(
                        one_out,
                        &[steps(a.1), steps(b.1)],
                        format!(
                            "cluster `{name}`: nodes `{}` and `{}` may be out of service at the same time",
                            a.0, b.0
                        ),
                    ));
                }
            }
        }
        let Some(&cluster) = by_name.get(&name.to_ascii_lowercase()) else {
            continue;
        };
        // Every node of a cluster that installs gets the target exactly once.
        if !installs.is_empty() {
            for n in &cluster.nodes {
                let k = installs.get(n.as_str()).map_or(0, Vec::len);
                if k != 1 {
                    out.push(v(
                        one_out,
                        &[],
                        format!(
                            "cluster `{name}`: node `{n}` installs the target {k} times, not once"
                        ),
                    ));
                }
            }
        }
        check_node_order(plan, cluster, owners, &installs, reach, out);
        if !plan.shape.failover {
            check_no_failover(plan, name, &idx, out);
        }
        if plan
            .invariants
            .contains_key(&Invariant::VirtualServerUpgrade)
        {
            check_virtual_server_upgrade(plan, cluster, &idx, &installs, &windows, reach, out)
        }
    }
}

/// The declared node order where it names the active node (owner of the most virtual-server
/// groups; ties: inventory order): `active-last` upgrades it after every other node,
/// `active-first` before every other.
fn check_node_order(
    plan: &Plan,
    cluster: &lockstep_core::Cluster,
    owners: &BTreeMap<String, String>,
    installs: &BTreeMap<&str, Vec<usize>>,
    reach: &Reach,
    out: &mut Vec<RuleViolation>,
) {
    let active_first = match plan.shape.node_order {
        Some(NodeOrderKind::ActiveFirst) => true,
        Some(NodeOrderKind::ActiveLast) => false,
        _ => return,
    };
    let name = cluster.name.as_str();
    let rule = cited(&plan.invariants, Invariant::NodeOrder);
    let install_of = |n: &str| installs.get(n).and_then(|v| v.first()).copied();
    let mut counts: Vec<usize> = vec![0; cluster.nodes.len()];
    for vs in &cluster.virtual_servers {
        let o = owner_of(cluster, &vs.group, &vs.owner, owners);
        if let Some(p) = cluster.nodes.iter().position(|n| n.eq_ignore_case(o)) {
            counts[p] += 1;
        }
    }
    let Some(active) = (0..cluster.nodes.len())
        .min_by_key(|&i| (std::cmp::Reverse(counts[i]), i))
        .map(|i| cluster.nodes[i].as_str())
    else {
        return;
    };
    let Some(a) = install_of(active) else { return };
    for n in cluster.nodes.iter().filter(|n| n.as_str() != active) {
        let Some(p) = install_of(n.as_str()) else {
            continue;
        };
        let (first, then) = if active_first { (a, p) } else { (p, a) };
        if !reach.after(then, first) {
            let (first_node, then_node) = if active_first {
                (
                    format!("active node `{active}`"),
                    format!("passive node `{n}`"),
                )
            } else {
                (
                    format!("passive node `{n}`"),
                    format!("active node `{active}`"),
                )
            };
            out.push(v(
                rule,
                &[&plan.steps[first], &plan.steps[then]],
                format!("cluster `{name}`: {then_node} is not upgraded after {first_node}"),
            ));
        }
    }
}

/// `failover: false`: no step of the cluster moves a group.
fn check_no_failover(plan: &Plan, name: &str, idx: &[usize], out: &mut Vec<RuleViolation>) {
    let rule = cited(&plan.invariants, Invariant::NoFailover);
    for &i in idx {
        let s = &plan.steps[i];
        if s.action.descriptor().moves_groups() {
            out.push(v(
                rule,
                &[s],
                format!(
                    "cluster `{name}`: `{}` moves a group; the shape has `failover: false`",
                    s.id
                ),
            ));
        }
    }
}

/// The virtual-server upgrade, when declared (`virtual-server-upgrade`).
fn check_virtual_server_upgrade(
    plan: &Plan,
    cluster: &lockstep_core::Cluster,
    idx: &[usize],
    installs: &BTreeMap<&str, Vec<usize>>,
    windows: &[(&str, usize, usize)],
    reach: &Reach,
    out: &mut Vec<RuleViolation>,
) {
    let name = cluster.name.as_str();
    let rule = cited(&plan.invariants, Invariant::VirtualServerUpgrade);
    let Some(&first_install) = installs.values().flatten().min() else {
        return;
    };
    let service_pack = matches!(
        plan.steps[first_install].action,
        Action::Install {
            kind: PackageKind::ServicePack,
            ..
        }
    );
    let first = plan.steps[first_install].host.as_str();
    for vs in &cluster.virtual_servers {
        let ups: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| {
                matches!(&plan.steps[i].action,
                    Action::UpgradeVirtualServer { group, .. } if *group == vs.group)
            })
            .collect();
        if !service_pack {
            if let Some(&u) = ups.first() {
                out.push(v(
                    rule,
                    &[&plan.steps[u]],
                    format!(
                        "cluster `{name}`: EVS `{}` is upgraded although the package is a hotfix",
                        vs.name
                    ),
                ));
            }
            continue;
        }
        let [u] = ups.as_slice() else {
            out.push(v(
                rule,
                &[],
                format!(
                    "cluster `{name}`: EVS `{}` is upgraded {} times, not once",
                    vs.name,
                    ups.len()
                ),
            ));
            continue;
        };
        let su = &plan.steps[*u];
        if !reach.after(*u, first_install) || su.host.as_str() != first {
            out.push(v(
                rule,
                &[&plan.steps[first_install], su],
                format!(
                    "cluster `{name}`: EVS `{}` must be upgraded on `{first}` after its install",
                    vs.name
                ),
            ));
        }
        for w in windows.iter().filter(|w| w.0 != first) {
            if !reach.after(w.1, *u) {
                out.push(v(
                    rule,
                    &[su, &plan.steps[w.1]],
                    format!(
                        "cluster `{name}`: node `{}` goes out of service before EVS `{}` is upgraded",
                        w.0, vs.name
                    ),
                ));
            }
        }
    }
}
