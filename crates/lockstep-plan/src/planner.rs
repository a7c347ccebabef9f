//! The planner: selection, stages, expansion of phases per unit, validation of every rendered
//! value, the KB 328839 state checks (owners, Cluster service, upgraded nodes) and the
//! out-of-service windows.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use lockstep_core::{
    probe::EXCHANGE_BUILD, Action, ActionSpec, Availability, Batch, Cluster, Condition, FactDef,
    FactProbe, Fleet, FrontEndScope, Gate, HaltClass, Host, Name, NameKind, PackageKind, Phase,
    Plan, PlanHash, PlannedStage, PlannedStep, Playbook, PreflightCheck, Product, RebootPolicy,
    Role, Scope, StepIndex, StepSpec, Target,
};
use minijinja::value::Value;

use crate::cluster::{ClusterLayers, ClusterState};

/// The name `that:`/`unless:` use for the playbook's target.
pub(crate) const TARGET: &str = "target";
use crate::error::{PlanError, PlanErrors};
use crate::estimate::{default_timeout_secs, estimate_secs};
use crate::options::PlanOptions;
use crate::order::NodeOrder;
use crate::select::{Selection, Selector};
use crate::template::{Ctx, Layer, RenderError, Templates};

/// Which pass of a front-end/back-end rollout a unit belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Cluster and standalone procedures: one pass.
    Only,
    /// Front-ends (pools and single front-ends).
    FrontEnds,
    /// Back-ends.
    BackEnds,
}

/// What a unit of expansion is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnitKind {
    /// A cluster, by index in [`Fleet::clusters`].
    Cluster(usize),
    /// A pool, by index in [`Fleet::pools`].
    Pool(usize),
    /// A non-clustered host, by index in [`Fleet::hosts`].
    Host(usize),
}

/// A stage as planned: its sites in order and the units of `rollout.stages[base]` it takes
/// (of one pass of a front-end/back-end rollout).
#[derive(Debug, Clone)]
struct StagePlan {
    name: String,
    sites: Vec<usize>,
    gate: lockstep_core::Gate,
    max_parallel: u32,
    pass: Pass,
    failure_budget: Option<lockstep_core::FailureBudget>,
    base: usize,
}

/// Whether `s` names a site that stage `si` holds by name.
fn named_site(fleet: &Fleet, s: &Name, named: &[Option<usize>], si: usize) -> bool {
    fleet
        .sites
        .iter()
        .position(|x| x.name.eq_ignore_case(s.as_str()))
        .is_some_and(|i| named[i] == Some(si))
}

#[derive(Debug, Clone)]
struct Unit {
    kind: UnitKind,
    site: usize,
    pass: Pass,
}

/// Where a step sits in its unit (decides its id, host and template context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// Cluster-wide, not tied to an EVS.
    Cluster,
    /// One EVS (index in the cluster's `virtual_servers`).
    Evs(usize),
    /// One node or host (host index).
    Node(usize),
}

fn role_str(r: Role) -> &'static str {
    match r {
        Role::FrontEnd => "front-end",
        Role::BackEnd => "back-end",
        Role::Standalone => "standalone",
        Role::Sbs => "sbs",
    }
}

fn product_str(p: Product) -> &'static str {
    match p {
        Product::Exchange55 => "5.5",
        Product::Exchange2000 => "2000",
        Product::Exchange2003 => "2003",
    }
}

fn scope_str(s: Scope) -> &'static str {
    match s {
        Scope::Cluster => "cluster",
        Scope::AllNodes => "all-nodes",
        Scope::FirstNode => "first-node",
        Scope::OtherNodes => "other-nodes",
        Scope::EachNode => "each-node",
        Scope::EachVirtualServer => "each-virtual-server",
        Scope::EachHost => "each-host",
        Scope::Pool => "pool",
    }
}

/// Actions that act on the node they run on (double hop: only on the node itself), from the
/// action's descriptor.
fn is_node_local(a: &ActionSpec) -> bool {
    a.descriptor().node_local
}

/// Actions that only make sense on a failover cluster (descriptor).
fn is_cluster_action(a: &ActionSpec) -> bool {
    a.descriptor().cluster_only
}

fn is_read_only(a: &ActionSpec) -> bool {
    a.is_read_only()
}

/// The planner of one `plan()` call.
pub(crate) struct Planner<'a> {
    fleet: &'a Fleet,
    pb: &'a Playbook,
    opts: &'a PlanOptions,
    selector: Selector<'a>,
    tpl: Templates,
    playbook_vars: Arc<BTreeMap<String, String>>,
    extra_vars: Arc<BTreeMap<String, String>>,
    host_vars: Vec<Option<Arc<BTreeMap<String, String>>>>,
    errors: Vec<PlanError>,
    steps: Vec<PlannedStep>,
    /// Phase-expansion block of each step of the current unit (for out-of-service windows).
    blocks: Vec<u32>,
    ids: HashMap<String, u32>,
    ctx_cache: Option<((usize, At), Arc<Ctx>)>,
    /// `kind`, `target_build`.
    plan_layer: Layer,
    host_layers: Vec<Option<Layer>>,
}

impl<'a> Planner<'a> {
    pub(crate) fn new(fleet: &'a Fleet, pb: &'a Playbook, opts: &'a PlanOptions) -> Self {
        Planner {
            fleet,
            pb,
            opts,
            selector: Selector::new(fleet),
            tpl: Templates::new(),
            playbook_vars: Arc::new(pb.vars.clone()),
            extra_vars: Arc::new(opts.extra_vars.clone()),
            host_vars: vec![None; fleet.hosts.len()],
            errors: Vec::new(),
            steps: Vec::new(),
            blocks: Vec::new(),
            ids: HashMap::new(),
            ctx_cache: None,
            plan_layer: Arc::from(
                pb.target
                    .iter()
                    .flat_map(|t| {
                        [
                            (
                                "kind",
                                Value::from(match t.kind {
                                    PackageKind::ServicePack => "service-pack",
                                    PackageKind::Hotfix => "hotfix",
                                }),
                            ),
                            ("target_build", Value::from(t.build.to_string())),
                        ]
                    })
                    .collect::<Vec<_>>(),
            ),
            host_layers: vec![None; fleet.hosts.len()],
        }
    }

    /// Runs the whole planning; every error found is returned.
    pub(crate) fn run(mut self) -> Result<Plan, PlanErrors> {
        let fleet = self.fleet;
        let pb = self.pb;
        let by_playbook = self
            .selector
            .select_with(&pb.hosts, false, true, &mut self.errors);
        let by_limit = self
            .selector
            .select(&self.opts.limit, true, &mut self.errors);
        let selected = Selection(
            by_playbook
                .0
                .iter()
                .zip(&by_limit.0)
                .map(|(a, b)| *a && *b)
                .collect(),
        );
        self.check_phases();
        let units = self.units(&selected);
        self.check_owner_overrides();
        self.check_front_ends_taken(&units, &selected);
        self.check_kb_hosts(&selected);
        if units.is_empty() && self.errors.is_empty() {
            self.errors.push(PlanError::NothingSelected {
                playbook: pb.name.to_string(),
                procedure: pb.procedure.clone(),
            });
        }
        let planned = if pb.rollout.serial.is_empty() {
            self.staged(&units)
        } else {
            self.waves(&units)
        };
        if !self.errors.is_empty() {
            return Err(PlanErrors(self.errors));
        }
        let mut plan = Plan {
            playbook: pb.name.clone(),
            procedure: pb.procedure.clone(),
            shape: pb.shape.clone(),
            invariants: pb.invariants.clone(),
            target: pb.target.as_ref().map(|t| t.build),
            stages: planned,
            steps: self.steps,
            max_parallel_per_site: pb.rollout.max_parallel_per_site,
            failure_budget: pb.rollout.failure_budget,
            hash: PlanHash(String::new()),
        };
        // Belt and braces: whatever the playbook, a plan that leaves here keeps every rule
        // the independent checkers prove (with the owners it was planned with).
        let broken = crate::rules::check_rules_with_owners(&plan, fleet, &self.opts.owners);
        if !broken.is_empty() {
            return Err(PlanErrors(
                broken
                    .into_iter()
                    .map(|v| PlanError::RuleBroken {
                        rule: v.rule,
                        message: v.message,
                    })
                    .collect(),
            ));
        }
        plan.hash = crate::hash::plan_hash(&plan);
        Ok(plan)
    }

    /// Plan-time refusals of KB 328839 that no run can fix: E2-ED (a target past Conferencing
    /// Server's last service pack) and E3-C2 (a service pack on a cluster moved from Exchange
    /// 2000 by clean install while a virtual server is still older than Exchange 2003).
    fn check_kb_hosts(&mut self, selected: &Selection) {
        let fleet = self.fleet;
        let Some(target) = &self.pb.target else {
            return;
        };
        let conferencing_last = lockstep_core::Version::new(6, 0, 6249, 0);
        let mut clusters: Vec<&Name> = Vec::new();
        for (hi, h) in fleet.hosts.iter().enumerate() {
            if !selected.contains(hi) {
                continue;
            }
            // Only the playbook's product: `hosts: [all]` also selects servers it leaves alone.
            if !h.runs(target.product) {
                continue;
            }
            if h.runs(Product::Exchange2000)
                && h.edition() == Some(lockstep_core::Edition::Conferencing)
                && target.build > conferencing_last
            {
                self.errors.push(PlanError::ConferencingPastSp3 {
                    host: h.name.to_string(),
                    target: target.build.to_string(),
                });
            }
            let migrated = h
                .vars
                .get("exchange_migrated_by_clean_install")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
            if let (true, PackageKind::ServicePack, Some(c)) = (migrated, target.kind, &h.cluster) {
                if !clusters.contains(&c) {
                    clusters.push(c);
                }
            }
        }
        for c in clusters {
            let Some(cluster) = fleet.cluster(c.as_str()) else {
                continue;
            };
            for evs in &cluster.virtual_servers {
                if let Some(b) = evs.build.filter(|b| (b.major, b.minor) < (6, 5)) {
                    self.errors.push(PlanError::EvsOlderAfterCleanInstall {
                        cluster: cluster.name.to_string(),
                        evs: evs.name.to_string(),
                        evs_build: b.to_string(),
                    });
                }
            }
        }
    }

    /// Stages (`rollout.stages`), each stage's units site by site.
    fn staged(&mut self, units: &[Unit]) -> Vec<PlannedStage> {
        let fleet = self.fleet;
        let (stages, unit_stage) = self.stages(units);
        let mut planned = Vec::new();
        for st in stages {
            let stage_idx = planned.len();
            let mut kept_sites = Vec::new();
            for &site in &st.sites {
                let site_units: Vec<&Unit> = units
                    .iter()
                    .enumerate()
                    .filter(|(ui, u)| {
                        unit_stage[*ui] == Some(st.base)
                            && u.site == site
                            && (st.pass == Pass::Only || u.pass == st.pass)
                    })
                    .map(|(_, u)| u)
                    .collect();
                if site_units.is_empty() {
                    continue;
                }
                // A site whose units get no step (no phase for their scope) is not in the stage.
                let before = self.steps.len();
                self.emit_site(stage_idx, &site_units);
                if self.steps.len() > before {
                    kept_sites.push(fleet.sites[site].name.clone());
                }
            }
            if kept_sites.is_empty() {
                continue;
            }
            planned.push(PlannedStage {
                name: st.name,
                sites: kept_sites,
                gate: st.gate,
                max_parallel_sites: st.max_parallel,
                failure_budget: st.failure_budget,
            });
        }
        planned
    }

    /// Waves (`rollout.serial`): the planned units in inventory order cut into batches; before
    /// every wave but the first, its gate and, with `wave_health`, a stage of read-only checks
    /// on every host of the previous wave (a stage of its own, so no site waits on another).
    fn waves(&mut self, units: &[Unit]) -> Vec<PlannedStage> {
        let pb = self.pb;
        let fleet = self.fleet;
        if pb.shape.is_tiered() {
            self.errors.push(PlanError::WavesWithTiers {
                playbook: pb.name.to_string(),
            });
            return Vec::new();
        }
        let health = pb.rollout.wave_health.as_ref().map(|h| StepSpec {
            id: Name::ident("wave-health").expect("a valid id"),
            name: format!("`{h}` on {{{{ node }}}} before the next wave"),
            rule: "wave-health".to_owned(),
            action: ActionSpec::Assert {
                that: Some(h.clone()),
            },
            when: None,
            timeout_secs: None,
        });
        let sizes = Batch::sizes(&pb.rollout.serial, units.len());
        let mut planned: Vec<PlannedStage> = Vec::new();
        let mut prev_hosts: Vec<usize> = Vec::new();
        let mut at = 0;
        for (k, n) in sizes.into_iter().enumerate() {
            let wave = &units[at..at + n];
            at += n;
            let mut gate = if k == 0 {
                Gate::None
            } else {
                pb.rollout.wave_gate.clone()
            };
            if let (Some(spec), true) = (&health, k > 0) {
                let stage_idx = planned.len();
                let mut sites: Vec<Name> = Vec::new();
                for &hi in &prev_hosts {
                    let h = &fleet.hosts[hi];
                    let Some(site) = fleet.sites.iter().position(|s| s.name == h.site) else {
                        continue;
                    };
                    let start = self.steps.len();
                    self.blocks.clear();
                    self.ctx_cache = None;
                    if self
                        .emit(stage_idx, site, spec, hi, At::Node(hi), 0, None, None, &[])
                        .is_some()
                        && !sites.contains(&fleet.sites[site].name)
                    {
                        sites.push(fleet.sites[site].name.clone());
                    }
                    self.mark_out_of_service(start);
                }
                planned.push(PlannedStage {
                    name: format!("health-before-wave-{}", k + 1),
                    sites,
                    gate,
                    max_parallel_sites: pb.rollout.max_parallel_sites,
                    failure_budget: None,
                });
                gate = Gate::None;
            }
            let stage_idx = planned.len();
            let mut site_ids: Vec<usize> = wave.iter().map(|u| u.site).collect();
            site_ids.sort_unstable();
            site_ids.dedup();
            for &site in &site_ids {
                let su: Vec<&Unit> = wave.iter().filter(|u| u.site == site).collect();
                self.emit_site(stage_idx, &su);
            }
            prev_hosts = wave.iter().flat_map(|u| self.unit_hosts(u)).collect();
            planned.push(PlannedStage {
                name: format!("wave-{}", k + 1),
                sites: site_ids
                    .iter()
                    .map(|&i| fleet.sites[i].name.clone())
                    .collect(),
                gate,
                max_parallel_sites: pb.rollout.max_parallel_sites,
                failure_budget: None,
            });
        }
        planned
    }

    /// The hosts of a unit (a host, a pool's members, a cluster's nodes).
    fn unit_hosts(&self, u: &Unit) -> Vec<usize> {
        let fleet = self.fleet;
        let names: Vec<&Name> = match u.kind {
            UnitKind::Host(hi) => return vec![hi],
            UnitKind::Pool(pi) => fleet.pools[pi].members.iter().collect(),
            UnitKind::Cluster(ci) => fleet.clusters[ci].nodes.iter().collect(),
        };
        names
            .into_iter()
            .filter_map(|n| self.selector.host_index(n.as_str()))
            .collect()
    }

    /// Phase scopes the shape uses; read-only `all-nodes` steps.
    fn check_phases(&mut self) {
        let shape = &self.pb.shape;
        for phase in &self.pb.phases {
            let ok = match phase.scope {
                Scope::EachHost => !shape.is_cluster(),
                Scope::Pool => shape.is_tiered(),
                _ => shape.is_cluster(),
            };
            if !ok {
                self.errors.push(PlanError::ScopeNotForShape {
                    phase: phase.name.clone(),
                    scope: scope_str(phase.scope).to_owned(),
                    units: if shape.is_cluster() {
                        "clusters"
                    } else {
                        "hosts"
                    },
                });
            }
            if phase.scope == Scope::AllNodes {
                for s in &phase.steps {
                    if !is_read_only(&s.action) {
                        self.errors.push(PlanError::ChangeOnAllNodes {
                            step: s.id.to_string(),
                            action: ActionSpec::kind(&s.action),
                        });
                    }
                }
            }
        }
    }

    /// What the shape takes of the selected hosts, in fleet order.
    fn units(&mut self, selected: &Selection) -> Vec<Unit> {
        let selector = &self.selector;
        let fleet = self.fleet;
        let shape = &self.pb.shape;
        let product = self.pb.target.as_ref().map(|t| t.product);
        // `exchange: false`: plain Windows hosts only; else the target's Exchange product.
        let exchange = self.pb.exchange;
        if exchange && product.is_none() {
            self.errors.push(PlanError::NoTarget {
                playbook: self.pb.name.to_string(),
                what: "`exchange: true` (the playbook changes Exchange servers)".to_owned(),
            });
            return Vec::new();
        }
        let fits_product = |h: &lockstep_core::Host| match product {
            Some(p) if exchange => h.runs(p),
            _ => h.exchange.is_none(),
        };
        let site_of = |name: &Name| fleet.sites.iter().position(|s| s.name == *name);
        let mut units = Vec::new();
        let members = |what: &'static str,
                       unit: &Name,
                       names: &[Name],
                       errors: &mut Vec<PlanError>|
         -> Option<Vec<usize>> {
            let mut out = Vec::with_capacity(names.len());
            for n in names {
                match selector.host_index(n.as_str()) {
                    Some(i) => out.push(i),
                    None => {
                        errors.push(PlanError::UnknownMember {
                            what,
                            unit: unit.to_string(),
                            member: n.to_string(),
                        });
                        return None;
                    }
                }
            }
            Some(out)
        };
        // A unit is taken when every member is selected; partly selected is an error.
        let taken =
            |what: &'static str, unit: &Name, idx: &[usize], errors: &mut Vec<PlanError>| -> bool {
                let n_sel = idx.iter().filter(|&&i| selected.contains(i)).count();
                if n_sel > 0 && n_sel < idx.len() {
                    let missing = idx.iter().find(|&&i| !selected.contains(i)).unwrap();
                    errors.push(PlanError::PartlySelected {
                        what,
                        unit: unit.to_string(),
                        missing: fleet.hosts[*missing].name.to_string(),
                    });
                    return false;
                }
                n_sel > 0
            };
        if shape.is_cluster() {
            for (ci, c) in fleet.clusters.iter().enumerate() {
                let Some(idx) = members("cluster", &c.name, &c.nodes, &mut self.errors) else {
                    continue;
                };
                let Some(&n0) = idx.first() else { continue };
                let fits = fits_product(&fleet.hosts[n0])
                    && shape.cluster_mode.is_none_or(|m| c.mode == m);
                if !fits || !taken("cluster", &c.name, &idx, &mut self.errors) {
                    continue;
                }
                if let Some(site) = site_of(&c.site) {
                    units.push(Unit {
                        kind: UnitKind::Cluster(ci),
                        site,
                        pass: Pass::Only,
                    });
                }
            }
            return units;
        }
        let tiers = &shape.tiers;
        let mut in_pool = vec![false; fleet.hosts.len()];
        if shape.is_tiered() {
            let has_pool_phase = self.pb.phases.iter().any(|p| p.scope == Scope::Pool);
            for (pi, p) in fleet.pools.iter().enumerate() {
                let Some(idx) = members("pool", &p.name, &p.members, &mut self.errors) else {
                    continue;
                };
                for &i in &idx {
                    in_pool[i] = true;
                }
                let fits = idx
                    .iter()
                    .all(|&i| fits_product(&fleet.hosts[i]) && fleet.hosts[i].cluster.is_none());
                if !fits || !taken("pool", &p.name, &idx, &mut self.errors) {
                    continue;
                }
                if !has_pool_phase {
                    self.errors.push(PlanError::PoolWithoutPoolPhase {
                        pool: p.name.to_string(),
                    });
                    continue;
                }
                if let Some(site) = site_of(&p.site) {
                    units.push(Unit {
                        kind: UnitKind::Pool(pi),
                        site,
                        pass: Pass::FrontEnds,
                    });
                }
            }
        }
        for (hi, h) in fleet.hosts.iter().enumerate() {
            if !selected.contains(hi) || h.cluster.is_some() || in_pool[hi] {
                continue;
            }
            let role_fits = |h: &lockstep_core::Host| {
                shape.roles.is_empty() || h.role().is_some_and(|r| shape.roles.contains(&r))
            };
            let pass = if !exchange {
                // A plain Windows host has no Exchange role: every host shape takes it.
                if !fits_product(h) {
                    continue;
                }
                Pass::Only
            } else if !fits_product(h) || !role_fits(h) {
                continue;
            } else if shape.is_tiered() {
                match h.role() {
                    Some(r) if Some(&r) == tiers.first() => Pass::FrontEnds,
                    Some(r) if Some(&r) == tiers.get(1) => Pass::BackEnds,
                    _ => continue,
                }
            } else {
                Pass::Only
            };
            if let Some(site) = site_of(&h.site) {
                units.push(Unit {
                    kind: UnitKind::Host(hi),
                    site,
                    pass,
                });
            }
        }
        units
    }

    /// The tier order across a `--limit`: a host of the second tier may be planned only when
    /// every host of the first it must follow (of the organisation, or of its site) is planned
    /// too or, by the inventory, already at the target build.
    /// (Selected front-ends refused for another reason are not reported again.)
    fn check_front_ends_taken(&mut self, units: &[Unit], selected: &Selection) {
        let Some(&first_tier) = self.pb.shape.tiers.first() else {
            return;
        };
        let rule = lockstep_core::invariant::cited(
            &self.pb.invariants,
            lockstep_core::Invariant::TierOrder,
        )
        .to_owned();
        let fleet = self.fleet;
        let mut taken = selected.0.clone();
        for u in units {
            match u.kind {
                UnitKind::Host(hi) => taken[hi] = true,
                UnitKind::Pool(pi) => {
                    for m in &fleet.pools[pi].members {
                        if let Some(i) = self.selector.host_index(m.as_str()) {
                            taken[i] = true;
                        }
                    }
                }
                UnitKind::Cluster(_) => {}
            }
        }
        let per_site = fleet.front_end_scope == FrontEndScope::Site;
        let Some(Target {
            product,
            build: target,
            ..
        }) = self.pb.target
        else {
            return;
        };
        for fe in fleet.hosts.iter().enumerate().filter(|(i, h)| {
            !taken[*i]
                && h.has_role(first_tier)
                && h.cluster.is_none()
                && h.runs(product)
                && h.exchange_build().is_none_or(|b| b < target)
        }) {
            let be = units.iter().find(|u| {
                u.pass == Pass::BackEnds && (!per_site || fleet.sites[u.site].name == fe.1.site)
            });
            if let Some(Unit {
                kind: UnitKind::Host(b),
                ..
            }) = be
            {
                self.errors.push(PlanError::FrontEndLeftBehind {
                    back_end: fleet.hosts[*b].name.to_string(),
                    front_end: fe.1.name.to_string(),
                    rule: rule.clone(),
                });
            }
        }
    }

    /// Every owner override must name a group of a cluster of the fleet (`GROUP`, or
    /// `CLUSTER/GROUP` when several clusters share a group name such as `Cluster Group`) and a
    /// node of such a cluster. Live discovery may report clusters the plan does not take: their
    /// owners are checked against the fleet, and simply not used.
    fn check_owner_overrides(&mut self) {
        for (key, owner) in &self.opts.owners {
            let (qualifier, group) = match key.split_once('/') {
                Some((q, g)) => (Some(q), g),
                None => (None, key.as_str()),
            };
            let mut group_found = false;
            let mut owner_ok = false;
            for c in &self.fleet.clusters {
                if qualifier.is_some_and(|q| !c.name.eq_ignore_case(q)) {
                    continue;
                }
                let has = c.cluster_group.eq_ignore_case(group)
                    || c.virtual_servers
                        .iter()
                        .any(|v| v.group.eq_ignore_case(group))
                    || c.groups.iter().any(|g| g.name.eq_ignore_case(group));
                if has {
                    group_found = true;
                    owner_ok |= c.nodes.iter().any(|n| n.eq_ignore_case(owner));
                }
            }
            if !group_found {
                self.errors
                    .push(PlanError::UnknownOwnerGroup { group: key.clone() });
            } else if !owner_ok {
                self.errors.push(PlanError::OwnerNotNode {
                    cluster: qualifier.unwrap_or_default().to_owned(),
                    group: key.clone(),
                    owner: owner.clone(),
                });
            }
        }
    }

    /// The live owner of `group` of cluster `c` from the overrides: `CLUSTER/GROUP` first, then
    /// `GROUP` when it names a node of this cluster.
    fn live_owner(&self, c: &Cluster, group: &Name) -> Option<&'a str> {
        let owners = &self.opts.owners;
        let qualified = owners.iter().find(|(k, _)| {
            k.split_once('/')
                .is_some_and(|(q, g)| c.name.eq_ignore_case(q) && group.eq_ignore_case(g))
        });
        if let Some((_, v)) = qualified {
            return Some(v.as_str());
        }
        owners
            .iter()
            .find(|(k, v)| group.eq_ignore_case(k) && c.nodes.iter().any(|n| n.eq_ignore_case(v)))
            .map(|(_, v)| v.as_str())
    }

    /// The stage naming each site (`sites: [a, b]`), each site named once, and the stage that
    /// takes what no other does (`sites: rest` or `"*"`).
    fn named_sites(&mut self) -> (Vec<Option<usize>>, Option<usize>) {
        let fleet = self.fleet;
        let rollout = &self.pb.rollout;
        let mut named: Vec<Option<usize>> = vec![None; fleet.sites.len()];
        let mut rest_stage: Option<usize> = None;
        for (si, st) in rollout.stages.iter().enumerate() {
            if st.rest || st.sites.iter().any(|s| s.as_str() == "*") {
                rest_stage.get_or_insert(si);
            }
            for s in st.sites.iter().filter(|s| s.as_str() != "*") {
                let Some(i) = fleet
                    .sites
                    .iter()
                    .position(|x| x.name.eq_ignore_case(s.as_str()))
                else {
                    self.errors.push(PlanError::UnknownStageSite {
                        stage: st.name.to_string(),
                        site: s.to_string(),
                    });
                    continue;
                };
                if let Some(prev) = named[i] {
                    self.errors.push(PlanError::SiteInTwoStages {
                        site: fleet.sites[i].name.to_string(),
                        first: rollout.stages[prev].name.to_string(),
                        second: st.name.to_string(),
                    });
                    continue;
                }
                named[i] = Some(si);
            }
        }
        (named, rest_stage)
    }

    /// The hosts each stage takes by `groups:` and `hosts:` (`None`: the stage takes by site).
    fn stage_members(&mut self) -> Vec<Option<Vec<bool>>> {
        let fleet = self.fleet;
        let rollout = &self.pb.rollout;
        let mut takes: Vec<Option<Vec<bool>>> = Vec::new();
        for st in &rollout.stages {
            if st.groups.is_empty() && st.hosts.is_empty() {
                takes.push(None);
                continue;
            }
            let mut set = vec![false; fleet.hosts.len()];
            for g in &st.groups {
                match fleet
                    .groups
                    .iter()
                    .find(|(k, _)| k.eq_ignore_case(g.as_str()))
                {
                    Some((_, members)) => {
                        for m in members {
                            if let Some(i) = self.selector.host_index(m.as_str()) {
                                set[i] = true;
                            }
                        }
                    }
                    None => self.errors.push(PlanError::UnknownStageMember {
                        stage: st.name.to_string(),
                        what: "group",
                        name: g.to_string(),
                    }),
                }
            }
            for h in &st.hosts {
                match self.selector.host_index(h.as_str()) {
                    Some(i) => set[i] = true,
                    None => self.errors.push(PlanError::UnknownStageMember {
                        stage: st.name.to_string(),
                        what: "host",
                        name: h.to_string(),
                    }),
                }
            }
            takes.push(Some(set));
        }
        takes
    }

    /// The stages, in order (front-end/back-end passes split), and the stage (index in
    /// `rollout.stages`, or 0 for the implicit stage) each unit goes to. A unit goes to the first
    /// stage that takes it: by its site (named, or counted in rollout order), by a group or host
    /// list holding one of its hosts; `rest` takes what no other stage takes.
    fn stages(&mut self, units: &[Unit]) -> (Vec<StagePlan>, Vec<Option<usize>>) {
        let fleet = self.fleet;
        let rollout = &self.pb.rollout;
        let mut base: Vec<StagePlan> = Vec::new();
        let mut unit_stage: Vec<Option<usize>> = vec![None; units.len()];
        if rollout.stages.is_empty() {
            base.push(StagePlan {
                name: "all".to_owned(),
                sites: (0..fleet.sites.len()).collect(),
                gate: lockstep_core::Gate::None,
                max_parallel: rollout.max_parallel_sites,
                pass: Pass::Only,
                failure_budget: None,
                base: 0,
            });
            unit_stage.iter_mut().for_each(|s| *s = Some(0));
        } else {
            let n_sites = fleet.sites.len();
            // Sites named by a stage, and the stage taking the rest.
            let (named, rest_stage) = self.named_sites();
            // `sites: N`: the next N sites in rollout order that no stage names.
            let mut site_stage = named.clone();
            let order = fleet.sites_in_rollout_order();
            let mut free = order.into_iter().filter(|&i| named[i].is_none());
            for (si, st) in rollout.stages.iter().enumerate() {
                for _ in 0..st.site_count.unwrap_or(0) {
                    if let Some(i) = free.next() {
                        site_stage[i] = Some(si);
                    }
                }
            }
            // `groups:` / `hosts:`: the hosts each stage takes.
            let takes = self.stage_members();
            let by_members = takes.iter().any(Option::is_some);
            let mut unstaged_sites: Vec<usize> = Vec::new();
            for (ui, u) in units.iter().enumerate() {
                let hosts = if by_members {
                    self.unit_hosts(u)
                } else {
                    Vec::new()
                };
                let found = (0..rollout.stages.len()).find(|&si| match &takes[si] {
                    Some(set) => hosts.iter().any(|&h| set[h]),
                    None => site_stage[u.site] == Some(si),
                });
                unit_stage[ui] = found.or(rest_stage);
                if unit_stage[ui].is_none() && !unstaged_sites.contains(&u.site) {
                    unstaged_sites.push(u.site);
                }
            }
            unstaged_sites.sort_unstable();
            for i in unstaged_sites {
                self.errors.push(PlanError::SiteInNoStage {
                    site: fleet.sites[i].name.to_string(),
                });
            }
            for (si, st) in rollout.stages.iter().enumerate() {
                // Sites run in the order the stage names them, the others in fleet order
                // (where `"*"` stands, if it is written among names).
                let mine: Vec<usize> = st
                    .sites
                    .iter()
                    .filter_map(|s| {
                        fleet
                            .sites
                            .iter()
                            .position(|x| x.name.eq_ignore_case(s.as_str()))
                    })
                    .filter(|&i| named[i] == Some(si))
                    .collect();
                let others: Vec<usize> = (0..n_sites).filter(|i| !mine.contains(i)).collect();
                let star_at = st
                    .sites
                    .iter()
                    .filter(|s| s.as_str() == "*" || named_site(fleet, s, &named, si))
                    .position(|s| s.as_str() == "*")
                    .unwrap_or(mine.len());
                let mut sites = mine;
                sites.splice(star_at..star_at, others);
                base.push(StagePlan {
                    name: st.name.to_string(),
                    sites,
                    gate: st.gate.clone(),
                    max_parallel: st.max_parallel_sites.unwrap_or(rollout.max_parallel_sites),
                    pass: Pass::Only,
                    failure_budget: st.failure_budget,
                    base: si,
                });
            }
        }
        let fb_org =
            self.pb.shape.is_tiered() && fleet.front_end_scope == FrontEndScope::Organisation;
        let stages = if fb_org {
            let mut out = Vec::new();
            for (prefix, pass) in [
                ("front-ends", Pass::FrontEnds),
                ("back-ends", Pass::BackEnds),
            ] {
                for st in &base {
                    out.push(StagePlan {
                        name: format!("{prefix}/{}", st.name),
                        pass,
                        ..st.clone()
                    });
                }
            }
            out
        } else {
            base
        };
        (stages, unit_stage)
    }

    /// Emits one site's units of one stage. With the front-end rule scoped per site, the site's
    /// back-ends start after all of its front-ends (`tier-order`).
    fn emit_site(&mut self, stage: usize, units: &[&Unit]) {
        let per_site_fb =
            self.pb.shape.is_tiered() && self.fleet.front_end_scope == FrontEndScope::Site;
        let mut fe_ends: Vec<StepIndex> = Vec::new();
        let ordered: Vec<&Unit> = if per_site_fb {
            let mut v: Vec<&Unit> = units
                .iter()
                .copied()
                .filter(|u| u.pass == Pass::FrontEnds)
                .collect();
            v.extend(units.iter().copied().filter(|u| u.pass != Pass::FrontEnds));
            v
        } else {
            units.to_vec()
        };
        for u in ordered {
            let deps = if per_site_fb && u.pass == Pass::BackEnds {
                fe_ends.clone()
            } else {
                Vec::new()
            };
            let start = self.steps.len();
            self.blocks.clear();
            self.ctx_cache = None;
            let ends = match u.kind {
                UnitKind::Cluster(ci) => self.expand_cluster(stage, u.site, ci),
                UnitKind::Pool(pi) => self.expand_pool(stage, u.site, pi, deps),
                UnitKind::Host(hi) => self.expand_host(stage, u.site, hi, deps),
            };
            self.mark_out_of_service(start);
            if u.pass == Pass::FrontEnds {
                fe_ends.extend(ends);
            }
        }
    }

    // ----- expansion -------------------------------------------------------------------------

    fn host_vars(&mut self, hi: usize) -> Arc<BTreeMap<String, String>> {
        self.host_vars[hi]
            .get_or_insert_with(|| Arc::new(self.fleet.hosts[hi].vars.clone()))
            .clone()
    }

    /// The template context of a step running on host `hi`, at `at`.
    fn ctx(&mut self, hi: usize, at: At, cs: Option<&ClusterState<'_>>) -> Arc<Ctx> {
        if let Some((key, c)) = &self.ctx_cache {
            if *key == (hi, at) {
                return c.clone();
            }
        }
        let mut layers: Vec<Layer> = Vec::with_capacity(5);
        if let Some(cs) = cs {
            if let At::Evs(e) = at {
                layers.push(cs.layers.evs[e].clone());
            }
            let pos = cs.pos_of_host(hi).unwrap_or(0);
            layers.push(match at {
                At::Node(_) => cs.layers.peer[pos].clone(),
                _ => cs.layers.wide_peer.clone(),
            });
            layers.push(cs.layers.cluster.clone());
        }
        layers.push(self.host_layer(hi));
        layers.push(self.plan_layer.clone());
        let ctx = Arc::new(Ctx {
            builtins: layers,
            host_vars: self.host_vars(hi),
            playbook_vars: self.playbook_vars.clone(),
            extra_vars: self.extra_vars.clone(),
        });
        self.ctx_cache = Some(((hi, at), ctx.clone()));
        ctx
    }

    /// `node`, `host`, `site`, `locale`, `windows`, `role`, `product` of a host (built once).
    fn host_layer(&mut self, hi: usize) -> Layer {
        let fleet = self.fleet;
        self.host_layers[hi]
            .get_or_insert_with(|| {
                let h: &Host = &fleet.hosts[hi];
                let mut b: Vec<(&'static str, Value)> = vec![
                    ("node", Value::from(h.name.as_str())),
                    ("host", Value::from(h.name.as_str())),
                    ("site", Value::from(h.site.as_str())),
                ];
                if let Some(s) = fleet.site(h.site.as_str()) {
                    b.push(("locale", Value::from(s.locale.tag())));
                }
                b.push((
                    "windows",
                    Value::from(h.windows.map(|w| w.tag()).unwrap_or("")),
                ));
                b.push(("role", Value::from(h.role().map(role_str).unwrap_or(""))));
                b.push((
                    "product",
                    Value::from(h.product().map(product_str).unwrap_or("")),
                ));
                Arc::from(b)
            })
            .clone()
    }

    /// How errors name the unit: `PRGCL1 (node PRG-N2)`, `PRGCL1 (group G, on PRG-N1)`.
    fn unit_label(host: &Name, cluster: Option<&Cluster>, at: At) -> String {
        match (cluster, at) {
            (Some(c), At::Evs(e)) => {
                format!(
                    "{} (group {}, on {host})",
                    c.name, c.virtual_servers[e].group
                )
            }
            (Some(c), At::Cluster) => format!("{} (on {host})", c.name),
            (Some(c), At::Node(_)) => format!("{} (node {host})", c.name),
            (None, _) => host.to_string(),
        }
    }

    fn render(
        &mut self,
        src: &str,
        spec: &StepSpec,
        ctx: &Arc<Ctx>,
        label: &dyn Fn() -> String,
    ) -> Option<String> {
        match self.tpl.render(src, ctx) {
            Ok(s) => Some(s),
            Err(e) => {
                self.push_render_error(e, src, spec, label());
                None
            }
        }
    }

    /// A site-supplied command line (see `Templates::render_command`); a blank result means
    /// "no command": the step waits for the operator.
    fn render_command(
        &mut self,
        src: &str,
        spec: &StepSpec,
        ctx: &Arc<Ctx>,
        label: &dyn Fn() -> String,
    ) -> Option<Option<String>> {
        match self.tpl.render_command(src, ctx) {
            Ok(s) if s.trim().is_empty() => Some(None),
            Ok(s) => Some(Some(s.trim().to_owned())),
            Err(e) => {
                self.push_render_error(e, src, spec, label());
                None
            }
        }
    }

    fn push_render_error(&mut self, e: RenderError, src: &str, spec: &StepSpec, unit: String) {
        self.errors.push(match e {
            RenderError::Undefined(variable) => PlanError::Undefined {
                step: spec.id.to_string(),
                unit,
                variable,
            },
            RenderError::Other(message) => PlanError::Template {
                step: spec.id.to_string(),
                unit,
                template: src.to_owned(),
                message,
            },
        });
    }

    fn name(
        &mut self,
        kind: NameKind,
        src: &str,
        spec: &StepSpec,
        ctx: &Arc<Ctx>,
        label: &dyn Fn() -> String,
    ) -> Option<Name> {
        let value = self.render(src, spec, ctx, label)?;
        let r = if kind == NameKind::Args {
            Name::args(&value)
        } else {
            Name::new(kind, &value)
        };
        match r {
            Ok(n) => Some(n),
            Err(source) => {
                self.errors.push(PlanError::InvalidValue {
                    step: spec.id.to_string(),
                    unit: label(),
                    value,
                    kind,
                    source,
                });
                None
            }
        }
    }

    /// Builds the action of `spec` for a step on host `hi`; `None` after recording errors.
    fn action(
        &mut self,
        spec: &StepSpec,
        hi: usize,
        cs: Option<&ClusterState<'_>>,
        ctx: &Arc<Ctx>,
        label: &dyn Fn() -> String,
    ) -> Option<Action> {
        let pb = self.pb;
        Some(match &spec.action {
            ActionSpec::MoveGroup { group, to } => {
                let group = self.name(NameKind::Object, group, spec, ctx, label);
                let to = self.name(NameKind::Host, to, spec, ctx, label);
                Action::MoveGroup {
                    group: group?,
                    to: to?,
                }
            }
            ActionSpec::EvacuateNode { to } => Action::EvacuateNode {
                node: self.fleet.hosts[hi].name.clone(),
                to: self.name(NameKind::Host, to, spec, ctx, label)?,
            },
            ActionSpec::StopClusterService => Action::StopClusterService,
            ActionSpec::StartClusterService => Action::StartClusterService,
            ActionSpec::EvsResourcesOffline { group } => Action::EvsResourcesOffline {
                group: self.name(NameKind::Object, group, spec, ctx, label)?,
            },
            ActionSpec::EvsResourcesOnline { group } => Action::EvsResourcesOnline {
                group: self.name(NameKind::Object, group, spec, ctx, label)?,
            },
            ActionSpec::UpgradeVirtualServer { group, command } => {
                self.upgrade_virtual_server(spec, group, command.as_deref(), cs, ctx, label)?
            }
            ActionSpec::Stage {
                source,
                sha256,
                dest,
            } => self.stage(spec, (source, sha256, dest), ctx, label)?,
            ActionSpec::Install {
                package,
                args,
                prerequisite,
                reboot,
            } => self.install(spec, (package, args, prerequisite, *reboot), ctx, label)?,
            ActionSpec::Reboot => Action::Reboot,
            ActionSpec::StopServices { services } => Action::StopServices {
                services: self.services(services, spec, ctx, label)?,
            },
            ActionSpec::StartServices { services } => Action::StartServices {
                services: self.services(services, spec, ctx, label)?,
            },
            ActionSpec::AssertVersion => {
                let t = self.target_of(spec)?;
                Action::AssertVersion {
                    product: t.product,
                    expected: t.build,
                }
            }
            ActionSpec::Preflight { checks } => {
                // The edition and product checks compare with the target; the others need none.
                let t = if checks.iter().any(PreflightCheck::compares_with_target) {
                    Some(self.target_of(spec)?)
                } else {
                    pb.target.as_ref()
                };
                Action::Preflight {
                    checks: checks.clone(),
                    editions: t.map(|t| t.editions.clone()).unwrap_or_default(),
                    product: t.map(|t| t.product),
                }
            }
            ActionSpec::FailoverTest { group } => {
                self.failover_test(spec, group, hi, cs, ctx, label)?
            }
            ActionSpec::Confirm { message, command } => {
                let message = self.render(message, spec, ctx, label);
                let command = match command {
                    Some(c) => self.render_command(c, spec, ctx, label)?,
                    None => None,
                };
                Action::Confirm {
                    message: message?,
                    command,
                }
            }
            ActionSpec::NlbDrain => Action::NlbDrain,
            ActionSpec::NlbStart => Action::NlbStart,
            ActionSpec::Command { command, judge }
            | ActionSpec::Powershell {
                script: command,
                judge,
            } => self.generic_command(spec, command, judge, ctx, label)?,
            ActionSpec::WaitUntil { that, every } => {
                self.wait_until(spec, that, every.as_deref())?
            }
            ActionSpec::Assert { that } => self.assert(spec, that.as_deref())?,
        })
    }

    /// An installer of the target's product: the target's package, or a prerequisite of it.
    fn install(
        &mut self,
        spec: &StepSpec,
        (package, args, prerequisite, reboot): (&str, &str, &Option<String>, RebootPolicy),
        ctx: &Arc<Ctx>,
        label: &dyn Fn() -> String,
    ) -> Option<Action> {
        let target = self.target_of(spec)?;
        let package = self.name(NameKind::Path, package, spec, ctx, label);
        let args = self.name(NameKind::Args, args, spec, ctx, label);
        Some(Action::Install {
            package: package?,
            args: args?,
            kind: if prerequisite.is_some() {
                PackageKind::Hotfix
            } else {
                target.kind
            },
            prerequisite: prerequisite.clone(),
            product: target.product,
            target: if prerequisite.is_some() {
                None
            } else {
                Some(target.build)
            },
            reboot,
        })
    }

    /// The services of a stop- or start-services step, each a validated name (all reported).
    fn services(
        &mut self,
        services: &[String],
        spec: &StepSpec,
        ctx: &Arc<Ctx>,
        label: &dyn Fn() -> String,
    ) -> Option<Vec<Name>> {
        let mut out = Vec::with_capacity(services.len());
        let mut ok = true;
        for s in services {
            match self.name(NameKind::Object, s, spec, ctx, label) {
                Some(n) => out.push(n),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// An assertion: its condition (the target's when none is given) and the halt class of a
    /// failure (a version mismatch when it reads the target).
    fn assert(&mut self, spec: &StepSpec, that: Option<&str>) -> Option<Action> {
        let (that, class) = match that {
            Some(t) => {
                let c = self.condition(spec, t)?;
                let on_target = Condition::parse(t)
                    .map(|p| p.facts().contains(TARGET))
                    .unwrap_or(false);
                (
                    c,
                    if on_target {
                        HaltClass::VersionMismatch
                    } else {
                        HaltClass::Precondition
                    },
                )
            }
            None => (
                self.target_of(spec)?.condition(),
                HaltClass::VersionMismatch,
            ),
        };
        let facts = self.fact_defs(spec, &that)?;
        Some(Action::Assert { that, class, facts })
    }

    /// Upgrade Exchange Virtual Server: the group must be one of the cluster's virtual servers.
    fn upgrade_virtual_server(
        &mut self,
        spec: &StepSpec,
        group: &str,
        command: Option<&str>,
        cs: Option<&ClusterState<'_>>,
        ctx: &Arc<Ctx>,
        label: &dyn Fn() -> String,
    ) -> Option<Action> {
        let group = self.name(NameKind::Object, group, spec, ctx, label)?;
        let command = match command {
            Some(c) => self.render_command(c, spec, ctx, label)?,
            None => None,
        };
        let evs = cs
            .and_then(|cs| {
                cs.cluster
                    .virtual_servers
                    .iter()
                    .find(|v| v.group.eq_ignore_case(group.as_str()))
            })
            .map(|v| v.name.clone());
        let Some(evs) = evs else {
            self.errors.push(PlanError::NotAGroup {
                step: spec.id.to_string(),
                unit: label(),
                group: group.to_string(),
                cluster: cs.map(|c| c.cluster.name.to_string()).unwrap_or_default(),
            });
            return None;
        };
        Some(Action::UpgradeVirtualServer {
            group,
            evs,
            command,
        })
    }

    /// The failover test: the group goes to every other node in the cluster's order, then back
    /// to its owner.
    fn failover_test(
        &mut self,
        spec: &StepSpec,
        group: &str,
        hi: usize,
        cs: Option<&ClusterState<'_>>,
        ctx: &Arc<Ctx>,
        label: &dyn Fn() -> String,
    ) -> Option<Action> {
        let group = self.name(NameKind::Object, group, spec, ctx, label)?;
        let nodes = match cs {
            Some(cs) => {
                let g = cs.group_of_name(group.as_str());
                let owner = g.and_then(|g| cs.owner[g]).unwrap_or(cs.first());
                let mut v: Vec<Name> = cs
                    .order
                    .order
                    .iter()
                    .filter(|&&p| p != owner)
                    .map(|&p| cs.cluster.nodes[p].clone())
                    .collect();
                v.push(cs.cluster.nodes[owner].clone());
                v
            }
            None => vec![self.fleet.hosts[hi].name.clone()],
        };
        Some(Action::FailoverTest { group, nodes })
    }

    /// The playbook's target, for a step that compares with it; an error when there is none.
    fn target_of(&mut self, spec: &StepSpec) -> Option<&'a Target> {
        let pb = self.pb;
        if pb.target.is_none() {
            self.errors.push(PlanError::NoTarget {
                playbook: pb.name.to_string(),
                what: format!("step `{}` ({})", spec.id, spec.action.kind()),
            });
        }
        pb.target.as_ref()
    }

    /// A `stage` step: the rendered source, its SHA-256 (64 hex digits) and a local destination
    /// on the node (never a share: the double hop).
    fn stage(
        &mut self,
        spec: &StepSpec,
        (source, sha256, dest): (&str, &str, &str),
        ctx: &Arc<Ctx>,
        label: &dyn Fn() -> String,
    ) -> Option<Action> {
        let source = self.render(source, spec, ctx, label);
        let sha = self.render(sha256, spec, ctx, label);
        let dest = self.name(NameKind::Path, dest, spec, ctx, label);
        let (source, sha, dest) = (source?, sha?, dest?);
        let sha = sha.trim().to_ascii_lowercase();
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            self.errors.push(PlanError::Condition {
                step: spec.id.to_string(),
                message: format!(
                    "`sha256: {sha256}` renders `{sha}` on {}: a SHA-256 is 64 hex digits",
                    label()
                ),
            });
            return None;
        }
        let d = dest.as_str();
        let local = d.len() > 3 && d.as_bytes()[0].is_ascii_alphabetic() && &d[1..3] == ":\\";
        if !local {
            self.errors.push(PlanError::Condition {
                step: spec.id.to_string(),
                message: format!(
                    "`dest: {d}` on {}: the destination must be a local path on the node (`C:\\...`), never a share (the double hop)",
                    label()
                ),
            });
            return None;
        }
        if source.trim().is_empty() {
            self.errors.push(PlanError::Condition {
                step: spec.id.to_string(),
                message: format!("`source` renders empty on {}", label()),
            });
            return None;
        }
        Some(Action::Stage {
            source,
            sha256: sha,
            dest,
        })
    }

    /// A `command` or `powershell` step: its rendered text and how it is judged.
    fn generic_command(
        &mut self,
        spec: &StepSpec,
        command: &str,
        judge: &lockstep_core::JudgeSpec,
        ctx: &Arc<Ctx>,
        label: &dyn Fn() -> String,
    ) -> Option<Action> {
        let text = self.render_command(command, spec, ctx, label)?;
        let Some(text) = text else {
            self.errors.push(PlanError::Condition {
                step: spec.id.to_string(),
                message: format!("`{}` renders empty on {}", command, label()),
            });
            return None;
        };
        let unless = match &judge.unless {
            Some(u) => Some(self.condition(spec, u)?),
            None => None,
        };
        // `expect` reads the step's own JSON output, not declared facts.
        let expect = match &judge.expect {
            Some(e) => Some(self.parse_condition(spec, e)?),
            None => None,
        };
        let facts = match &unless {
            Some(u) => self.fact_defs(spec, u)?,
            None => Vec::new(),
        };
        let judge = lockstep_core::Judge {
            ok_exit_codes: judge.ok_exit_codes.clone(),
            restart_exit_codes: judge.restart_exit_codes.clone(),
            unless,
            expect,
            read_only: judge.read_only,
            availability: judge.availability,
            facts,
        };
        Some(if matches!(spec.action, ActionSpec::Command { .. }) {
            Action::Command {
                command: text,
                judge,
            }
        } else {
            Action::Powershell {
                script: text,
                judge,
            }
        })
    }

    /// A `wait-until` step: its condition, the facts it reads and its poll interval.
    fn wait_until(&mut self, spec: &StepSpec, that: &str, every: Option<&str>) -> Option<Action> {
        let that = self.condition(spec, that)?;
        let facts = self.fact_defs(spec, &that)?;
        let every_secs = match every {
            None => 10,
            Some(e) => match lockstep_core::playbook::parse_duration(e) {
                Some(n) if n > 0 => n,
                _ => {
                    self.errors.push(PlanError::Condition {
                        step: spec.id.to_string(),
                        message: format!("`every: {e}` is not a duration (`30s`, `2m`)"),
                    });
                    return None;
                }
            },
        };
        Some(Action::WaitUntil {
            that,
            every_secs,
            facts,
        })
    }

    fn parse_condition(&mut self, spec: &StepSpec, text: &str) -> Option<Condition> {
        match Condition::parse(text) {
            Ok(c) => Some(c),
            Err(e) => {
                self.errors.push(PlanError::Condition {
                    step: spec.id.to_string(),
                    message: e.to_string(),
                });
                None
            }
        }
    }

    /// A condition over facts with `target` replaced by the playbook's target.
    fn condition(&mut self, spec: &StepSpec, text: &str) -> Option<Condition> {
        let c = self.parse_condition(spec, text)?;
        match &self.pb.target {
            Some(t) => Some(c.substitute(TARGET, &t.condition())),
            None if c.facts().contains(TARGET) => {
                self.errors.push(PlanError::NoTarget {
                    playbook: self.pb.name.to_string(),
                    what: format!("step `{}` reads `{TARGET}`", spec.id),
                });
                None
            }
            None => Some(c),
        }
    }

    /// The probes of the facts `c` reads: the playbook's `facts:` and the built-in
    /// `exchange_build`.
    fn fact_defs(&mut self, spec: &StepSpec, c: &Condition) -> Option<Vec<FactDef>> {
        let mut out = Vec::new();
        for name in c.facts() {
            if let Some(d) = self.pb.facts.iter().find(|d| d.name == name) {
                out.push(d.clone());
            } else if name == EXCHANGE_BUILD {
                out.push(FactDef {
                    name: name.to_owned(),
                    probe: FactProbe::ExchangeBuild,
                });
            } else {
                self.errors.push(PlanError::Condition {
                    step: spec.id.to_string(),
                    message: format!("condition `{c}` reads fact `{name}`, which the playbook does not declare under `facts:`"),
                });
                return None;
            }
        }
        Some(out)
    }

    /// Emits one step (or none: `when` false, or errors recorded). `deps` become its `after`.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        stage: usize,
        site: usize,
        spec: &StepSpec,
        hi: usize,
        at: At,
        block: u32,
        mut cs: Option<&mut ClusterState<'a>>,
        pool: Option<&Name>,
        deps: &[StepIndex],
    ) -> Option<StepIndex> {
        let ctx = self.ctx(hi, at, cs.as_deref());
        let fleet = self.fleet;
        let cluster_ref: Option<&'a Cluster> = cs.as_deref().map(|c| c.cluster);
        let label = move || Self::unit_label(&fleet.hosts[hi].name, cluster_ref, at);
        if let Some(w) = &spec.when {
            match self.tpl.truthy(w, &ctx) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.push_render_error(e, w, spec, label());
                    return None;
                }
            }
        }
        if cs.is_none() && is_cluster_action(&spec.action) {
            self.errors.push(PlanError::ClusterActionOnHost {
                step: spec.id.to_string(),
                unit: label(),
                action: ActionSpec::kind(&spec.action),
            });
            return None;
        }
        if cs.is_some() && !matches!(at, At::Node(_)) && is_node_local(&spec.action) {
            self.errors.push(PlanError::NodeActionOutOfNodeScope {
                step: spec.id.to_string(),
                unit: label(),
                action: ActionSpec::kind(&spec.action),
            });
            return None;
        }
        let Some(mut action) = self.action(spec, hi, cs.as_deref(), &ctx, &label) else {
            // The error is recorded; assume the install happens so later steps are not blamed
            // for an upgrade that only failed to render.
            if let (
                Some(cs),
                ActionSpec::Install {
                    prerequisite: None, ..
                },
            ) = (cs.as_deref_mut(), &spec.action)
            {
                if let Some(p) = cs.pos_of_host(hi) {
                    cs.upgraded[p] = true;
                }
            }
            return None;
        };
        let name = self.render(&spec.name, spec, &ctx, &label);
        let index = self.steps.len();
        if let Some(cs) = cs.as_deref_mut() {
            let errors = cs.apply(&self.pb.shape, spec, hi, &mut action, index, &label);
            if !errors.is_empty() {
                self.errors.extend(errors);
                return None;
            }
        }
        let name = name?;
        let fleet = self.fleet;
        let host = &fleet.hosts[hi];
        let cluster = cs.as_deref().map(|c| c.cluster);
        let base = match (cluster, at) {
            (Some(c), At::Cluster) => format!("{}/{}", c.name, spec.id),
            (Some(c), At::Evs(e)) => {
                format!("{}/{}/{}", c.name, c.virtual_servers[e].group, spec.id)
            }
            _ => format!("{}/{}", host.name, spec.id),
        };
        let n = self.ids.entry(base.clone()).or_insert(0);
        *n += 1;
        let id = if *n == 1 { base } else { format!("{base}#{n}") };
        let estimate_secs = estimate_secs(&action);
        let timeout_secs = spec
            .timeout_secs
            .unwrap_or_else(|| default_timeout_secs(&action));
        self.steps.push(PlannedStep {
            id,
            spec: spec.id.clone(),
            name,
            rule: spec.rule.clone(),
            stage,
            site: fleet.sites[site].name.clone(),
            cluster: cluster.map(|c| c.name.clone()),
            pool: pool.cloned(),
            host: host.name.clone(),
            role: host.role().unwrap_or(Role::Standalone),
            out_of_service: false,
            action,
            after: deps.to_vec(),
            timeout_secs,
            estimate_secs,
        });
        self.blocks.push(block);
        Some(index)
    }

    /// The node a cluster- or EVS-wide step runs on: the first node if its Cluster service is
    /// up, else its peer, else the first node up in procedure order.
    fn wide_host(cs: &ClusterState<'_>) -> Option<usize> {
        let first = cs.first();
        if cs.up[first] {
            return Some(first);
        }
        let peer = cs.first_peer();
        if cs.up[peer] {
            return Some(peer);
        }
        cs.order.order.iter().copied().find(|&p| cs.up[p])
    }

    /// A cluster's state before its first step: its nodes, each group's owner (live
    /// `--owner` overrides first, else the inventory's), the node order the shape declares.
    fn cluster_state(&mut self, ci: usize) -> ClusterState<'a> {
        let fleet = self.fleet;
        let c = &fleet.clusters[ci];
        let nodes: Vec<usize> = c
            .nodes
            .iter()
            .filter_map(|n| self.selector.host_index(n.as_str()))
            .collect();
        let mut groups: Vec<&Name> = vec![&c.cluster_group];
        let mut inventory_owner: Vec<&Name> = vec![&c.cluster_group_owner];
        for v in &c.virtual_servers {
            groups.push(&v.group);
            inventory_owner.push(&v.owner);
        }
        let mut owner = Vec::with_capacity(groups.len());
        for (g, inv) in groups.iter().zip(&inventory_owner) {
            let o = self.live_owner(c, g).unwrap_or(inv.as_str());
            match c.nodes.iter().position(|n| n.eq_ignore_case(o)) {
                Some(p) => owner.push(Some(p)),
                None => {
                    self.errors.push(PlanError::OwnerNotNode {
                        cluster: c.name.to_string(),
                        group: g.to_string(),
                        owner: o.to_owned(),
                    });
                    owner.push(None);
                }
            }
        }
        // The other roles (file servers, SQL Server instances) order the nodes too.
        let roles: Vec<(&Name, Option<usize>)> = c
            .groups
            .iter()
            .map(|g| {
                let o = self.live_owner(c, &g.name).unwrap_or(g.owner.as_str());
                (&g.name, c.nodes.iter().position(|n| n.eq_ignore_case(o)))
            })
            .collect();
        let order = NodeOrder::declared(self.pb.shape.node_order, c, |g| {
            match groups.iter().position(|x| x.eq_ignore_case(g)) {
                Some(i) => owner[i],
                None => roles
                    .iter()
                    .find(|(n, _)| n.eq_ignore_case(g))
                    .and_then(|(_, o)| *o),
            }
        });
        let n = c.nodes.len();
        let layers = ClusterLayers::new(c, &order);
        ClusterState {
            layers,
            cluster: c,
            nodes,
            order,
            evs_upgraded: vec![false; groups.len()],
            groups,
            owner,
            up: vec![true; n],
            upgraded: vec![false; n],
            stopped_by: vec![None; n],
        }
    }

    fn expand_cluster(&mut self, stage: usize, site: usize, ci: usize) -> Vec<StepIndex> {
        let fleet = self.fleet;
        let c = &fleet.clusters[ci];
        let mut cs = self.cluster_state(ci);
        let mut frontier: Vec<StepIndex> = Vec::new();
        let mut block = 0u32;
        let phases: &'a [Phase] = &self.pb.phases;
        let role_ok = |phase: &Phase, hi: usize| {
            phase.roles.is_empty()
                || fleet.hosts[hi]
                    .role()
                    .is_some_and(|r| phase.roles.contains(&r))
        };
        for phase in phases {
            match phase.scope {
                Scope::Cluster | Scope::EachVirtualServer => {
                    let ats: Vec<At> = if phase.scope == Scope::Cluster {
                        vec![At::Cluster]
                    } else {
                        (0..c.virtual_servers.len()).map(At::Evs).collect()
                    };
                    for at in ats {
                        block += 1;
                        for spec in &phase.steps {
                            let Some(pos) = Self::wide_host(&cs) else {
                                self.errors.push(PlanError::NoNodeUp {
                                    step: spec.id.to_string(),
                                    unit: c.name.to_string(),
                                });
                                continue;
                            };
                            let hi = cs.nodes[pos];
                            if let Some(i) = self.emit(
                                stage,
                                site,
                                spec,
                                hi,
                                at,
                                block,
                                Some(&mut cs),
                                None,
                                &frontier,
                            ) {
                                frontier = vec![i];
                            }
                        }
                    }
                }
                Scope::AllNodes => {
                    let mut ends = Vec::new();
                    for k in 0..cs.order.order.len() {
                        let hi = cs.nodes[cs.order.order[k]];
                        if !role_ok(phase, hi) {
                            continue;
                        }
                        block += 1;
                        let mut chain = frontier.clone();
                        for spec in &phase.steps {
                            if let Some(i) = self.emit(
                                stage,
                                site,
                                spec,
                                hi,
                                At::Node(hi),
                                block,
                                Some(&mut cs),
                                None,
                                &chain,
                            ) {
                                chain = vec![i];
                            }
                        }
                        if chain != frontier {
                            ends.extend(chain);
                        }
                    }
                    if !ends.is_empty() {
                        frontier = ends;
                    }
                }
                Scope::FirstNode | Scope::OtherNodes | Scope::EachNode => {
                    let range = match phase.scope {
                        Scope::FirstNode => 0..1.min(cs.order.order.len()),
                        Scope::OtherNodes => 1.min(cs.order.order.len())..cs.order.order.len(),
                        _ => 0..cs.order.order.len(),
                    };
                    for k in range {
                        let hi = cs.nodes[cs.order.order[k]];
                        if !role_ok(phase, hi) {
                            continue;
                        }
                        block += 1;
                        for spec in &phase.steps {
                            if let Some(i) = self.emit(
                                stage,
                                site,
                                spec,
                                hi,
                                At::Node(hi),
                                block,
                                Some(&mut cs),
                                None,
                                &frontier,
                            ) {
                                frontier = vec![i];
                            }
                        }
                    }
                }
                Scope::EachHost | Scope::Pool => {}
            }
        }
        for (pos, s) in cs.stopped_by.iter().enumerate() {
            if let Some(s) = s {
                // (A stop refused for another error was never emitted: nothing to report.)
                if let Some(step) = self.steps.get(*s).filter(|st| st.host == c.nodes[pos]) {
                    self.errors.push(PlanError::NeverRestarted {
                        step: step.id.clone(),
                        unit: c.name.to_string(),
                        node: c.nodes[pos].to_string(),
                    });
                }
            }
        }
        frontier
    }

    fn expand_host(
        &mut self,
        stage: usize,
        site: usize,
        hi: usize,
        deps: Vec<StepIndex>,
    ) -> Vec<StepIndex> {
        let role = self.fleet.hosts[hi].role();
        let mut frontier = deps;
        let mut block = 0u32;
        let phases: &'a [Phase] = &self.pb.phases;
        for phase in phases {
            if phase.scope != Scope::EachHost
                || !(phase.roles.is_empty() || role.is_some_and(|r| phase.roles.contains(&r)))
            {
                continue;
            }
            block += 1;
            for spec in &phase.steps {
                if let Some(i) = self.emit(
                    stage,
                    site,
                    spec,
                    hi,
                    At::Node(hi),
                    block,
                    None,
                    None,
                    &frontier,
                ) {
                    frontier = vec![i];
                }
            }
        }
        frontier
    }

    /// A load-balanced pool in lockstep (`pool-together`): every member does step N before any member
    /// does step N+1.
    fn expand_pool(
        &mut self,
        stage: usize,
        site: usize,
        pi: usize,
        deps: Vec<StepIndex>,
    ) -> Vec<StepIndex> {
        let fleet = self.fleet;
        let pool = &fleet.pools[pi];
        let members: Vec<usize> = pool
            .members
            .iter()
            .filter_map(|n| self.selector.host_index(n.as_str()))
            .collect();
        let mut frontier = deps;
        let mut block = 0u32;
        let phases: &'a [Phase] = &self.pb.phases;
        for phase in phases {
            if !matches!(phase.scope, Scope::EachHost | Scope::Pool) {
                continue;
            }
            block += 1;
            for spec in &phase.steps {
                let mut round = Vec::new();
                for &hi in &members {
                    let role = fleet.hosts[hi].role();
                    if !(phase.roles.is_empty() || role.is_some_and(|r| phase.roles.contains(&r))) {
                        continue;
                    }
                    if let Some(i) = self.emit(
                        stage,
                        site,
                        spec,
                        hi,
                        At::Node(hi),
                        block,
                        None,
                        Some(&pool.name),
                        &frontier,
                    ) {
                        round.push(i);
                    }
                }
                if !round.is_empty() {
                    frontier = round;
                }
            }
        }
        frontier
    }

    /// Sets `out_of_service` on the unit's steps from `start`: per host, from its Cluster service
    /// stop (or its first install or reboot) to the matching start of its Cluster service, from
    /// an NLB drain to the NLB start (load-balanced pools), or to the end of the phase block for a
    /// window opened by an install or reboot.
    fn mark_out_of_service(&mut self, start: usize) {
        #[derive(Clone, Copy, PartialEq, Eq)]
        enum Open {
            Clussvc,
            Nlb,
            Declared,
            Block(u32),
        }
        // (a step of the host, window state): units have a handful of hosts.
        let mut open: Vec<(usize, Open)> = Vec::new();
        for i in start..self.steps.len() {
            let block = self.blocks[i - start];
            let slot = open
                .iter()
                .position(|(j, _)| self.steps[*j].host == self.steps[i].host);
            let state = match slot.map(|k| open[k].1) {
                Some(Open::Block(b)) if b != block => None,
                x => x,
            };
            let s = &mut self.steps[i];
            // Each kind of window is closed only by its own kind (a Cluster service start does
            // not end an NLB drain); the descriptor (or a generic step) says what a step does.
            let family = match &s.action {
                Action::StopClusterService | Action::StartClusterService => Open::Clussvc,
                Action::NlbDrain | Action::NlbStart => Open::Nlb,
                _ => Open::Declared,
            };
            let (oos, next) = match (s.action.availability(), state) {
                (Availability::TakesOut, _) => (true, Some(family)),
                (Availability::BringsBack, Some(o)) if o == family => (true, None),
                (Availability::WhileRunning, None) => (true, Some(Open::Block(block))),
                (_, Some(o)) => (true, Some(o)),
                (_, None) => (false, None),
            };
            s.out_of_service = oos;
            match (slot, next) {
                (Some(k), Some(o)) => open[k].1 = o,
                (Some(k), None) => {
                    open.swap_remove(k);
                }
                (None, Some(o)) => open.push((i, o)),
                (None, None) => {}
            }
        }
    }
}
