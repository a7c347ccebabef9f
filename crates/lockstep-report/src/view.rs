//! [`RunView`]: what both renderers read, derived once from a [`RunRecord`]: each step record
//! with its planned step, the timeline's rows grouped by site and cluster/pool, the versions
//! per node and the time span. Deterministic: it reads no clock.

use std::collections::{BTreeMap, HashMap};

use lockstep_core::{
    Fact, PlannedStep, Product, RunRecord, RunStatus, StepRecord, StepState, Version,
};

/// A step record with the planned step it belongs to (absent when a replan dropped the id).
#[derive(Debug, Clone, Copy)]
pub struct StepRow<'a> {
    /// Position in [`RunRecord::steps`] (plan order).
    pub index: usize,
    /// The latest record.
    pub rec: &'a StepRecord,
    /// The planned step with the same id.
    pub plan: Option<&'a PlannedStep>,
}

impl StepRow<'_> {
    /// The host, or `?` when the step is not in the plan.
    pub fn host(&self) -> &str {
        self.plan.map_or("?", |p| p.host.as_str())
    }

    /// The rule id, or empty.
    pub fn rule(&self) -> &str {
        self.plan.map_or("", |p| p.rule.as_str())
    }

    /// Where the step's bar starts and ends; a step without an end runs to `last_ms`.
    pub fn span(&self, last_ms: u64) -> Option<(u64, u64)> {
        let start = self.rec.started_ms?;
        let end = self.rec.finished_ms.unwrap_or(last_ms).max(start);
        Some((start, end))
    }
}

/// One row of hosts in the timeline, under a group header.
#[derive(Debug, Clone)]
pub struct HostRow<'a> {
    /// The host name.
    pub host: &'a str,
    /// Indexes into [`RunView::steps`] of the steps run on it.
    pub steps: Vec<usize>,
}

/// A group of hosts: a site and a cluster or pool (or the site's standalone hosts).
#[derive(Debug, Clone)]
pub struct Group<'a> {
    /// Site.
    pub site: &'a str,
    /// `cluster PRGCL1`, `pool OWA`, or `standalone`.
    pub label: String,
    /// Hosts in plan order.
    pub hosts: Vec<HostRow<'a>>,
}

/// How a node's build compares with the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtTarget {
    /// The build after equals the target.
    Yes,
    /// The build after is known and differs from the target.
    No,
    /// No build after is known.
    Unknown,
}

/// A node's builds before and after.
#[derive(Debug, Clone)]
pub struct NodeVersions<'a> {
    /// Host.
    pub host: &'a str,
    /// Site (empty when the host appears only in facts).
    pub site: &'a str,
    /// Cluster or pool label (empty for none).
    pub group: String,
    /// Build before (fact `build.before`, else the earliest build-like fact).
    pub before: Option<&'a Fact>,
    /// Build after (fact `build.after`, else a later build-like fact).
    pub after: Option<&'a Fact>,
    /// Compared with the target.
    pub at_target: AtTarget,
}

/// Everything the renderers need, derived from one run.
#[derive(Debug, Clone)]
pub struct RunView<'a> {
    /// The run.
    pub run: &'a RunRecord,
    /// The Exchange product line of the target build, if it is one.
    pub product: Option<Product>,
    /// Every step record, in plan order.
    pub steps: Vec<StepRow<'a>>,
    /// Timeline rows.
    pub groups: Vec<Group<'a>>,
    /// Versions per node.
    pub versions: Vec<NodeVersions<'a>>,
    /// The earliest time known (run creation or first start), ms.
    pub first_ms: u64,
    /// The latest time known (any start, end or fact), ms.
    pub last_ms: u64,
    /// The step the run halted on: the last failed step, by end time (index into `steps`).
    pub halt_step: Option<usize>,
}

/// The order states are counted and shown in.
pub const STATE_ORDER: [StepState; 6] = [
    StepState::Done,
    StepState::Skipped,
    StepState::Failed,
    StepState::Waiting,
    StepState::Running,
    StepState::Pending,
];

impl<'a> RunView<'a> {
    /// Derives the view.
    pub fn new(run: &'a RunRecord) -> Self {
        let by_id: HashMap<&str, &PlannedStep> =
            run.plan.steps.iter().map(|s| (s.id.as_str(), s)).collect();
        let steps: Vec<StepRow<'a>> = run
            .steps
            .iter()
            .enumerate()
            .map(|(index, rec)| StepRow {
                index,
                rec,
                plan: by_id.get(rec.step.as_str()).copied(),
            })
            .collect();

        let times = steps
            .iter()
            .flat_map(|r| [r.rec.started_ms, r.rec.finished_ms])
            .flatten()
            .chain(run.facts.iter().map(|f| f.at_ms));
        let last_ms = times.fold(run.created_ms, u64::max);
        let first_ms = steps
            .iter()
            .filter_map(|r| r.rec.started_ms)
            .fold(run.created_ms, u64::min);

        let halt_step = match run.status {
            RunStatus::Halted { .. } => steps
                .iter()
                .filter(|r| r.rec.state == StepState::Failed)
                .max_by_key(|r| (r.rec.finished_ms.or(r.rec.started_ms), r.index))
                .map(|r| r.index),
            _ => None,
        };

        let groups = group_hosts(run, &steps);
        let versions = versions(run, &groups);
        RunView {
            run,
            product: run.plan.product(),
            steps,
            groups,
            versions,
            first_ms,
            last_ms,
            halt_step,
        }
    }

    /// When `row`'s node was out of service, ms: each window from the start of the first step
    /// that takes it out (a Cluster service stop, an install, a drain: the plan marks them) to
    /// the end of the last step before it is back, as far as the steps have run (a window still
    /// open ends at the last known time).
    pub fn out_of_service(&self, row: &HostRow<'_>) -> Vec<(u64, u64)> {
        let mut windows: Vec<(u64, u64)> = Vec::new();
        let mut open: Option<(u64, u64)> = None;
        for &i in &row.steps {
            let r = &self.steps[i];
            let marked = r.plan.is_some_and(|p| p.out_of_service);
            match (marked, r.span(self.last_ms)) {
                (true, Some((start, end))) => {
                    open = Some(open.map_or((start, end), |(s, e)| (s.min(start), e.max(end))));
                }
                // A marked step not started yet: the window goes on (or has not begun).
                (true, None) => {}
                (false, _) => windows.extend(open.take()),
            }
        }
        windows.extend(open);
        windows
    }

    /// How many steps are in each state, in [`STATE_ORDER`], zeros left out.
    pub fn counts(&self) -> Vec<(StepState, usize)> {
        STATE_ORDER
            .iter()
            .map(|&s| (s, self.steps.iter().filter(|r| r.rec.state == s).count()))
            .filter(|&(_, n)| n > 0)
            .collect()
    }

    /// `12 done, 1 failed, 9 pending (22 steps)`.
    pub fn counts_sentence(&self) -> String {
        let parts: Vec<String> = self
            .counts()
            .iter()
            .map(|(s, n)| format!("{n} {}", s.as_str()))
            .collect();
        let total = self.steps.len();
        let noun = if total == 1 { "step" } else { "steps" };
        if parts.is_empty() {
            format!("{total} {noun}")
        } else {
            format!("{} ({total} {noun})", parts.join(", "))
        }
    }

    /// Whether the run has ended (finished or halted); a running or waiting run has not.
    pub fn ended(&self) -> bool {
        matches!(
            self.run.status,
            RunStatus::Finished | RunStatus::Halted { .. }
        )
    }

    /// The status word: `finished`, `halted`, `waiting`, `running`.
    pub fn status_word(&self) -> &'static str {
        match self.run.status {
            RunStatus::Running => "running",
            RunStatus::Waiting { .. } => "waiting",
            RunStatus::Halted { .. } => "halted",
            RunStatus::Finished => "finished",
        }
    }

    /// The target as Exchange System Manager shows it (an Exchange build), else as written.
    pub fn target_described(&self) -> String {
        match (self.product, self.run.plan.target) {
            (Some(p), Some(t)) => p.describe(t),
            _ => self.target_text(),
        }
    }

    /// The target build as written, or what stands for it in a playbook without one.
    pub fn target_text(&self) -> String {
        self.run.plan.target.map_or_else(
            || "none (the playbook judges its change by conditions over facts)".to_owned(),
            |t| t.to_string(),
        )
    }

    /// The target's product line as a person reads it (`Exchange Server 2003`), or `Windows`.
    pub fn product_text(&self) -> String {
        self.product
            .map_or_else(|| "Windows".to_owned(), |p| p.to_string())
    }

    /// The stage's name, or `stage N` when the plan has no such stage.
    pub fn stage_name(&self, stage: usize) -> String {
        self.run
            .plan
            .stages
            .get(stage)
            .map_or_else(|| format!("stage {stage}"), |s| s.name.clone())
    }
}

/// A short label for a build: `SP2`, `RTM`, or empty when the build is not a known release.
pub fn release_label(product: Option<Product>, v: &str) -> &'static str {
    let (Some(product), Ok(v)) = (product, v.parse::<Version>()) else {
        return "";
    };
    if !product.owns(v) {
        return "";
    }
    if v.build == product.rtm().build {
        return "RTM";
    }
    product
        .service_packs()
        .iter()
        .find(|(_, b)| b.build == v.build)
        .map_or("", |(n, _)| n)
}

fn group_label(step: &PlannedStep) -> Option<String> {
    if let Some(c) = &step.cluster {
        Some(format!("cluster {c}"))
    } else {
        step.pool.as_ref().map(|p| format!("pool {p}"))
    }
}

/// Hosts grouped by site and cluster/pool, both in plan order. A host belongs to the group of
/// its first step that names a cluster or pool, else to its site's standalone group.
fn group_hosts<'a>(run: &'a RunRecord, steps: &[StepRow<'a>]) -> Vec<Group<'a>> {
    let mut host_group: HashMap<&str, (&str, String)> = HashMap::new();
    let mut host_order: Vec<&str> = Vec::new();
    for p in &run.plan.steps {
        let host = p.host.as_str();
        match host_group.get(host) {
            None => {
                host_order.push(host);
                let label = group_label(p).unwrap_or_else(|| "standalone".to_owned());
                host_group.insert(host, (p.site.as_str(), label));
            }
            Some((_, label)) if label == "standalone" => {
                if let Some(l) = group_label(p) {
                    host_group.insert(host, (p.site.as_str(), l));
                }
            }
            Some(_) => {}
        }
    }
    let mut steps_of: HashMap<&str, Vec<usize>> = HashMap::new();
    for r in steps {
        if let Some(p) = r.plan {
            steps_of.entry(p.host.as_str()).or_default().push(r.index);
        }
    }
    let mut groups: Vec<Group<'a>> = Vec::new();
    let mut group_at: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for host in host_order {
        let (site, label) = host_group[host].clone();
        let gi = *group_at.entry((site, label.clone())).or_insert_with(|| {
            groups.push(Group {
                site,
                label,
                hosts: Vec::new(),
            });
            groups.len() - 1
        });
        groups[gi].hosts.push(HostRow {
            host,
            steps: steps_of.remove(host).unwrap_or_default(),
        });
    }
    groups
}

fn is_build_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "build" || k.starts_with("build.") || k.ends_with(".build") || k.contains(".build.")
}

fn versions<'a>(run: &'a RunRecord, groups: &[Group<'a>]) -> Vec<NodeVersions<'a>> {
    let mut rows: Vec<NodeVersions<'a>> = Vec::new();
    for g in groups {
        for h in &g.hosts {
            rows.push(NodeVersions {
                host: h.host,
                site: g.site,
                group: if g.label == "standalone" {
                    String::new()
                } else {
                    g.label.clone()
                },
                before: None,
                after: None,
                at_target: AtTarget::Unknown,
            });
        }
    }
    for f in &run.facts {
        if is_build_key(&f.key) && !rows.iter().any(|r| r.host == f.host.as_str()) {
            rows.push(NodeVersions {
                host: f.host.as_str(),
                site: "",
                group: String::new(),
                before: None,
                after: None,
                at_target: AtTarget::Unknown,
            });
        }
    }
    for row in &mut rows {
        // Facts are in the order learnt; `at_ms` breaks nothing when it agrees, and decides
        // when a store returned them otherwise.
        let mut mine: Vec<&'a Fact> = run
            .facts
            .iter()
            .filter(|f| f.host.as_str() == row.host && is_build_key(&f.key))
            .collect();
        mine.sort_by_key(|f| f.at_ms);
        let before = mine
            .iter()
            .find(|f| f.key == "build.before")
            .or_else(|| mine.iter().find(|f| f.key != "build.after"))
            .copied();
        let after = mine
            .iter()
            .rev()
            .find(|f| f.key == "build.after")
            .or_else(|| {
                mine.iter().rev().find(|f| {
                    f.key != "build.before" && !before.is_some_and(|b| std::ptr::eq(**f, b))
                })
            })
            .copied();
        row.before = before;
        row.after = after;
        row.at_target = match after.map(|f| f.value.trim().parse::<Version>()) {
            Some(Ok(v)) if Some(v) == run.plan.target => AtTarget::Yes,
            Some(_) => AtTarget::No,
            None => AtTarget::Unknown,
        };
    }
    rows
}
