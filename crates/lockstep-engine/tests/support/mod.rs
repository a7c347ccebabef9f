//! In-memory fakes for the engine's tests and benchmark: a [`MemStore`] implementing the core
//! `StateStore` faithfully, a scripted [`FakeRunner`] that models nodes (a step's effect is applied
//! when the runner starts it, as a real installer keeps running when the controller dies), and a
//! [`PlanBuilder`].
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lockstep_core::{
    Action, Auth, Connection, Edition, Event, EventSink, Exchange, Fact, FailureBudget, Gate,
    HaltClass, Host, Name, PackageKind, Plan, PlanHash, PlannedStage, PlannedStep, Product,
    RebootPolicy, Role, RunId, RunLock, RunMeta, RunRecord, RunStatus, RunSummary, Scheme,
    SecretSource, StateStore, StepRecord, StepState, StoreError, Version, WindowsRelease,
};
use lockstep_engine::{FactOut, Outcome, Probe, StageHalt, StepError, StepRunner};

/// The target build of the test plans (Exchange 2003 SP2).
pub const TARGET: Version = Version::new(6, 5, 7638, 2);

/// A shared, ordered log of store writes and runner calls.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, s: String) {
        self.0.lock().unwrap().push(s);
    }
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------- store

#[derive(Default)]
struct StoreInner {
    runs: BTreeMap<RunId, RunRecord>,
    /// Step id to position in `RunRecord::steps`, per run (the real store has an index too).
    index: HashMap<RunId, HashMap<String, usize>>,
    locked: HashSet<RunId>,
    next: u64,
}

/// An in-memory `StateStore`.
#[derive(Clone, Default)]
pub struct MemStore {
    inner: Arc<Mutex<StoreInner>>,
    pub log: Log,
    /// Whether to log writes (off in the benchmark).
    pub quiet: bool,
}

struct MemLock {
    inner: Arc<Mutex<StoreInner>>,
    run: RunId,
}

impl RunLock for MemLock {}

impl Drop for MemLock {
    fn drop(&mut self) {
        self.inner.lock().unwrap().locked.remove(&self.run);
    }
}

impl MemStore {
    pub fn new(log: Log) -> Self {
        MemStore {
            inner: Arc::default(),
            log,
            quiet: false,
        }
    }

    pub fn record(&self, run: &RunId) -> RunRecord {
        self.load_run(run).unwrap()
    }

    pub fn state_of(&self, run: &RunId, step: &str) -> StepState {
        self.record(run)
            .steps
            .iter()
            .find(|r| r.step == step)
            .unwrap()
            .state
    }

    fn with_run<T>(
        &self,
        run: &RunId,
        f: impl FnOnce(&mut RunRecord) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut g = self.inner.lock().unwrap();
        let rec = g
            .runs
            .get_mut(run)
            .ok_or_else(|| StoreError::NoSuchRun(run.clone()))?;
        f(rec)
    }
}

impl StateStore for MemStore {
    fn create_run(&self, plan: &Plan, meta: &RunMeta) -> Result<RunId, StoreError> {
        let mut g = self.inner.lock().unwrap();
        g.next += 1;
        let id = RunId(format!("r{:04}", g.next));
        let rec = RunRecord {
            id: id.clone(),
            plan: plan.clone(),
            meta: meta.clone(),
            status: RunStatus::Running,
            steps: plan
                .steps
                .iter()
                .map(|s| StepRecord::pending(&s.id))
                .collect(),
            facts: Vec::new(),
            approvals: Vec::new(),
            created_ms: lockstep_core::now_ms(),
        };
        g.index.insert(id.clone(), index_of(&rec));
        g.runs.insert(id.clone(), rec);
        Ok(id)
    }

    fn load_run(&self, run: &RunId) -> Result<RunRecord, StoreError> {
        self.with_run(run, |r| Ok(r.clone()))
    }

    fn latest_run(&self) -> Result<Option<RunId>, StoreError> {
        Ok(self.inner.lock().unwrap().runs.keys().last().cloned())
    }

    fn list_runs(&self) -> Result<Vec<RunSummary>, StoreError> {
        let g = self.inner.lock().unwrap();
        Ok(g.runs
            .values()
            .rev()
            .map(|r| RunSummary {
                id: r.id.clone(),
                playbook: r.plan.playbook.to_string(),
                status: r.status.clone(),
                complete: r.steps.iter().filter(|s| s.state.is_complete()).count(),
                total: r.steps.len(),
                created_ms: r.created_ms,
            })
            .collect())
    }

    fn lock_run(&self, run: &RunId) -> Result<Box<dyn RunLock>, StoreError> {
        let mut g = self.inner.lock().unwrap();
        if !g.runs.contains_key(run) {
            return Err(StoreError::NoSuchRun(run.clone()));
        }
        if !g.locked.insert(run.clone()) {
            return Err(StoreError::Locked {
                run: run.clone(),
                holder: "another test controller".into(),
            });
        }
        Ok(Box::new(MemLock {
            inner: Arc::clone(&self.inner),
            run: run.clone(),
        }))
    }

    fn put_step(&self, run: &RunId, record: &StepRecord) -> Result<(), StoreError> {
        if !self.quiet {
            self.log
                .push(format!("put {} {}", record.step, record.state.as_str()));
        }
        let mut g = self.inner.lock().unwrap();
        let g = &mut *g;
        let rec = g
            .runs
            .get_mut(run)
            .ok_or_else(|| StoreError::NoSuchRun(run.clone()))?;
        let at = g
            .index
            .get(run)
            .and_then(|ix| ix.get(&record.step))
            .copied()
            .ok_or_else(|| StoreError::NoSuchStep {
                run: run.clone(),
                step: record.step.clone(),
            })?;
        rec.steps[at] = record.clone();
        Ok(())
    }

    fn put_fact(&self, run: &RunId, fact: &Fact) -> Result<(), StoreError> {
        if !self.quiet {
            self.log.push(format!("fact {} {}", fact.host, fact.key));
        }
        self.with_run(run, |r| {
            r.facts.push(fact.clone());
            Ok(())
        })
    }

    fn set_status(&self, run: &RunId, status: &RunStatus) -> Result<(), StoreError> {
        self.with_run(run, |r| {
            r.status = status.clone();
            Ok(())
        })
    }

    fn approve(&self, run: &RunId, what: &str) -> Result<(), StoreError> {
        self.with_run(run, |r| {
            r.approvals.push(lockstep_core::Approval {
                what: what.to_owned(),
                by: "test".to_owned(),
                at_ms: lockstep_core::now_ms(),
            });
            Ok(())
        })
    }

    fn replace_plan(&self, run: &RunId, plan: &Plan) -> Result<(), StoreError> {
        let mut g = self.inner.lock().unwrap();
        let r = g
            .runs
            .get_mut(run)
            .ok_or_else(|| StoreError::NoSuchRun(run.clone()))?;
        let old: HashMap<String, StepRecord> =
            r.steps.drain(..).map(|s| (s.step.clone(), s)).collect();
        r.steps = plan
            .steps
            .iter()
            .map(|s| {
                old.get(&s.id)
                    .cloned()
                    .unwrap_or_else(|| StepRecord::pending(&s.id))
            })
            .collect();
        r.plan = plan.clone();
        let ix = index_of(r);
        g.index.insert(run.clone(), ix);
        Ok(())
    }
}

fn index_of(rec: &RunRecord) -> HashMap<String, usize> {
    rec.steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.step.clone(), i))
        .collect()
}

// ---------------------------------------------------------------- events

/// Keeps every event.
#[derive(Clone, Default)]
pub struct Events(pub Arc<Mutex<Vec<Event>>>);

impl EventSink for Events {
    fn emit(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Events {
    pub fn all(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------- runner

/// What the fake node does when a step's action runs.
#[derive(Debug, Clone)]
pub enum Script {
    /// Fails with this class (nothing changes on the node).
    Fail(HaltClass),
    /// An operator step.
    Wait,
    /// Succeeds and reports these facts (key, value) about the step's host.
    Facts(Vec<(&'static str, &'static str)>),
    /// Sleeps this long before succeeding (for timeouts).
    Sleep(Duration),
    /// A runner bug: panics.
    Panic,
}

#[derive(Default)]
struct RunnerState {
    scripts: HashMap<String, VecDeque<Script>>,
    probes: HashMap<String, VecDeque<Probe>>,
    /// Stages whose `before_stage` check halts, with why.
    stage_halts: HashMap<usize, String>,
    before_stage_calls: Vec<usize>,
    /// Steps whose effect is in place on the node.
    done: HashSet<String>,
    /// Times a step's effect was applied.
    effects: HashMap<String, u32>,
    /// Execute calls per step.
    calls: HashMap<String, u32>,
    probes_made: HashMap<String, u32>,
    running_units: HashMap<String, usize>,
    running_sites: HashMap<String, usize>,
    running_units_per_site: HashMap<String, usize>,
    max_sites: usize,
    max_units_per_site: usize,
    max_steps: usize,
    running: usize,
}

/// A scripted runner that models nodes.
pub struct FakeRunner {
    st: Mutex<RunnerState>,
    log: Log,
    /// Milliseconds slept per second of a step's estimate (0: only yields).
    pub ms_per_sec: f64,
    /// Execute calls so far; `trip` is notified when the count reaches `trip_at`.
    pub calls: AtomicUsize,
    pub trip_at: AtomicUsize,
    pub trip: tokio::sync::Notify,
    /// Benchmark mode: no log, no bookkeeping, just the scaled sleep.
    pub quiet: bool,
}

pub fn unit_of(step: &PlannedStep) -> String {
    if let Some(c) = &step.cluster {
        format!("cluster:{c}")
    } else if let Some(p) = &step.pool {
        format!("pool:{p}")
    } else {
        format!("host:{}", step.host)
    }
}

impl FakeRunner {
    pub fn new(log: Log) -> Self {
        FakeRunner {
            st: Mutex::default(),
            log,
            ms_per_sec: 0.0,
            calls: AtomicUsize::new(0),
            trip_at: AtomicUsize::new(usize::MAX),
            trip: tokio::sync::Notify::new(),
            quiet: false,
        }
    }

    pub fn script(&self, step: &str, s: Script) {
        let mut g = self.st.lock().unwrap();
        g.scripts.entry(step.to_owned()).or_default().push_back(s);
    }

    pub fn probe_answers(&self, step: &str, answers: &[Probe]) {
        let mut g = self.st.lock().unwrap();
        g.probes
            .entry(step.to_owned())
            .or_default()
            .extend(answers.iter().copied());
    }

    /// Makes the live check before stage `stage` halt (`None`: hold again).
    pub fn halt_before_stage(&self, stage: usize, why: Option<&str>) {
        let mut g = self.st.lock().unwrap();
        match why {
            Some(w) => g.stage_halts.insert(stage, w.to_owned()),
            None => g.stage_halts.remove(&stage),
        };
    }

    /// The stages `before_stage` was asked about, in order.
    pub fn before_stage_calls(&self) -> Vec<usize> {
        self.st.lock().unwrap().before_stage_calls.clone()
    }

    /// Marks a step's effect as already in place on the node.
    pub fn mark_done(&self, step: &str) {
        self.st.lock().unwrap().done.insert(step.to_owned());
    }

    pub fn effects(&self, step: &str) -> u32 {
        *self.st.lock().unwrap().effects.get(step).unwrap_or(&0)
    }

    pub fn calls_of(&self, step: &str) -> u32 {
        *self.st.lock().unwrap().calls.get(step).unwrap_or(&0)
    }

    pub fn probes_of(&self, step: &str) -> u32 {
        *self.st.lock().unwrap().probes_made.get(step).unwrap_or(&0)
    }

    pub fn max_sites(&self) -> usize {
        self.st.lock().unwrap().max_sites
    }

    pub fn max_units_per_site(&self) -> usize {
        self.st.lock().unwrap().max_units_per_site
    }

    pub fn max_steps(&self) -> usize {
        self.st.lock().unwrap().max_steps
    }

    fn enter(&self, step: &PlannedStep) {
        let mut g = self.st.lock().unwrap();
        let unit = format!("{}/{}", step.site, unit_of(step));
        let site = step.site.to_string();
        let u = g.running_units.entry(unit).or_default();
        *u += 1;
        if *u == 1 {
            *g.running_units_per_site.entry(site.clone()).or_default() += 1;
        }
        *g.running_sites.entry(site.clone()).or_default() += 1;
        g.running += 1;
        let sites = g.running_sites.values().filter(|&&n| n > 0).count();
        let units = g.running_units_per_site[&site];
        g.max_sites = g.max_sites.max(sites);
        g.max_units_per_site = g.max_units_per_site.max(units);
        g.max_steps = g.max_steps.max(g.running);
    }

    fn leave(&self, step: &PlannedStep) {
        let mut g = self.st.lock().unwrap();
        let unit = format!("{}/{}", step.site, unit_of(step));
        let site = step.site.to_string();
        let u = g.running_units.get_mut(&unit).unwrap();
        *u -= 1;
        if *u == 0 {
            *g.running_units_per_site.get_mut(&site).unwrap() -= 1;
        }
        *g.running_sites.get_mut(&site).unwrap() -= 1;
        g.running -= 1;
    }
}

/// Leaves the concurrency counters even if the task is aborted mid-step.
struct Running<'a>(&'a FakeRunner, &'a PlannedStep);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.leave(self.1);
    }
}

#[async_trait]
impl StepRunner for FakeRunner {
    async fn execute(&self, step: &PlannedStep, _timeout: Duration) -> Result<Outcome, StepError> {
        if self.quiet {
            // Benchmark mode: a node with no bookkeeping beyond the step's duration.
            let ms = step.estimate_secs as f64 * self.ms_per_sec;
            tokio::time::sleep(Duration::from_micros((ms * 1000.0) as u64)).await;
            return Ok(Outcome::Done {
                output: String::new(),
                exit_code: Some(0),
                facts: Vec::new(),
                message: String::new(),
            });
        }
        self.log.push(format!("exec {}", step.id));
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.trip_at.load(Ordering::SeqCst) {
            self.trip.notify_one();
        }
        self.enter(step);
        let _guard = Running(self, step);
        let script = {
            let mut g = self.st.lock().unwrap();
            *g.calls.entry(step.id.clone()).or_default() += 1;
            g.scripts.get_mut(&step.id).and_then(|q| q.pop_front())
        };
        // The command's way to the node: a few await points where a dying controller may cut it.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        let mut facts = Vec::new();
        match script {
            Some(Script::Fail(class)) => {
                tokio::task::yield_now().await;
                return Err(StepError {
                    class,
                    host: step.host.clone(),
                    message: format!("scripted failure of `{}`", step.id),
                    output: format!("output of `{}`\nexit 1603", step.id),
                    exit_code: Some(1603),
                    transport: None,
                });
            }
            Some(Script::Wait) => {
                tokio::task::yield_now().await;
                return Ok(Outcome::Waiting {
                    instructions: format!("operator: do `{}` by hand", step.id),
                });
            }
            Some(Script::Facts(f)) => {
                facts = f
                    .into_iter()
                    .map(|(k, v)| FactOut {
                        host: step.host.clone(),
                        key: k.to_owned(),
                        value: v.to_owned(),
                    })
                    .collect();
            }
            Some(Script::Sleep(d)) => tokio::time::sleep(d).await,
            Some(Script::Panic) => panic!("runner bug on `{}`", step.id),
            None => {}
        }
        // The node applies the effect as soon as the command starts (an installer keeps running
        // if the controller dies).
        {
            let mut g = self.st.lock().unwrap();
            *g.effects.entry(step.id.clone()).or_default() += 1;
            g.done.insert(step.id.clone());
        }
        if self.ms_per_sec > 0.0 {
            let ms = step.estimate_secs as f64 * self.ms_per_sec;
            tokio::time::sleep(Duration::from_micros((ms * 1000.0) as u64)).await;
        } else {
            tokio::task::yield_now().await;
        }
        Ok(Outcome::Done {
            output: format!("ran `{}`", step.id),
            exit_code: Some(0),
            facts,
            message: String::new(),
        })
    }

    async fn probe(&self, step: &PlannedStep) -> Result<Probe, StepError> {
        if !self.quiet {
            self.log.push(format!("probe {}", step.id));
        }
        let mut g = self.st.lock().unwrap();
        *g.probes_made.entry(step.id.clone()).or_default() += 1;
        if let Some(p) = g.probes.get_mut(&step.id).and_then(|q| q.pop_front()) {
            return Ok(p);
        }
        Ok(if g.done.contains(&step.id) {
            Probe::Done
        } else {
            Probe::NotDone
        })
    }

    async fn before_stage(&self, _plan: &Plan, stage: usize) -> Result<(), StageHalt> {
        let mut g = self.st.lock().unwrap();
        g.before_stage_calls.push(stage);
        match g.stage_halts.get(&stage) {
            Some(why) => Err(StageHalt {
                class: HaltClass::VersionMismatch,
                reason: why.clone(),
            }),
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------- plans

/// The action of a step kind (`install`, `reboot`, ...).
pub fn action(kind: &str) -> Action {
    match kind {
        "install" => Action::Install {
            package: Name::path("D:\\SP2\\update.exe").unwrap(),
            args: Name::args("/q").unwrap(),
            kind: PackageKind::ServicePack,
            prerequisite: None,
            product: Product::Exchange2003,
            target: Some(TARGET),
            reboot: RebootPolicy::IfRequired,
        },
        "reboot" => Action::Reboot,
        "stop" => Action::StopClusterService,
        "start" => Action::StartClusterService,
        "assert" => Action::AssertVersion {
            product: Product::Exchange2003,
            expected: TARGET,
        },
        "preflight" => Action::Preflight {
            checks: vec![],
            editions: vec![],
            product: Some(Product::Exchange2003),
        },
        "confirm" => Action::Confirm {
            message: "check the backups (G1)".into(),
            command: None,
        },
        "upgrade-evs" => Action::UpgradeVirtualServer {
            group: Name::object("EVS1 Group").unwrap(),
            evs: Name::host("EVS1").unwrap(),
            command: None,
        },
        other => panic!("unknown kind {other}"),
    }
}

/// Builds plans step by step.
pub struct PlanBuilder {
    pub plan: Plan,
}

/// Which unit a chain belongs to.
#[derive(Clone, Copy)]
pub enum Unit<'a> {
    Host,
    Cluster(&'a str),
    Pool(&'a str),
}

impl Default for PlanBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PlanBuilder {
    pub fn new() -> Self {
        PlanBuilder {
            plan: Plan {
                playbook: Name::ident("test").unwrap(),
                procedure: "E3-NC".into(),
                shape: Default::default(),
                invariants: Default::default(),
                target: Some(TARGET),
                stages: vec![],
                steps: vec![],
                max_parallel_per_site: 0,
                failure_budget: FailureBudget {
                    max_failed_hosts: 0,
                },
                hash: PlanHash(String::new()),
            },
        }
    }

    pub fn stage(mut self, name: &str, sites: &[&str], gate: Gate, max_sites: u32) -> Self {
        self.plan.stages.push(PlannedStage {
            name: name.to_owned(),
            sites: sites.iter().map(|s| Name::ident(s).unwrap()).collect(),
            gate,
            max_parallel_sites: max_sites,
            failure_budget: None,
        });
        self
    }

    pub fn per_site(mut self, n: u32) -> Self {
        self.plan.max_parallel_per_site = n;
        self
    }

    pub fn budget(mut self, n: u32) -> Self {
        self.plan.failure_budget.max_failed_hosts = n;
        self
    }

    /// A chain of steps on `host`, each after the previous: `(kind, estimate_secs)`. Step ids
    /// are `HOST/kind`. Returns their indices.
    pub fn chain(
        &mut self,
        stage: usize,
        site: &str,
        unit: Unit<'_>,
        host: &str,
        role: Role,
        kinds: &[(&str, u64)],
    ) -> Vec<usize> {
        let mut prev: Option<usize> = None;
        let mut out = Vec::new();
        for (kind, est) in kinds {
            let i = self.plan.steps.len();
            self.plan.steps.push(PlannedStep {
                id: format!("{host}/{kind}"),
                spec: Name::ident(kind).unwrap(),
                name: format!("{kind} on {host}"),
                rule: "E3-NC".into(),
                stage,
                site: Name::ident(site).unwrap(),
                cluster: match unit {
                    Unit::Cluster(c) => Some(Name::host(c).unwrap()),
                    _ => None,
                },
                pool: match unit {
                    Unit::Pool(p) => Some(Name::ident(p).unwrap()),
                    _ => None,
                },
                host: Name::host(host).unwrap(),
                role,
                out_of_service: *kind == "install",
                action: action(kind),
                after: prev.into_iter().collect(),
                timeout_secs: 3600,
                estimate_secs: *est,
            });
            prev = Some(i);
            out.push(i);
        }
        out
    }

    pub fn build(mut self) -> Plan {
        rehash(&mut self.plan);
        self.plan
    }
}

/// Recomputes a test plan's hash (a stand-in for the planner's SHA-256).
pub fn rehash(plan: &mut Plan) {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for s in &plan.steps {
        s.id.hash(&mut h);
        s.after.hash(&mut h);
        s.stage.hash(&mut h);
    }
    plan.stages.len().hash(&mut h);
    plan.hash = PlanHash(format!("{:016x}{:016x}", h.finish(), plan.steps.len()));
}

/// The standard host chain of the tests.
pub const CHAIN: &[(&str, u64)] = &[
    ("preflight", 5),
    ("stop", 10),
    ("install", 600),
    ("reboot", 120),
    ("start", 10),
    ("assert", 5),
];

/// `sites` sites of `hosts` standalone hosts each, in one stage per entry of `stages` (site
/// names `s0`, `s1`...; hosts `S0-H0`...).
pub fn fleet_plan(stages: &[(&str, Vec<usize>, Gate, u32)], hosts: usize) -> Plan {
    let mut b = PlanBuilder::new();
    for (name, sites, gate, max) in stages {
        let names: Vec<String> = sites.iter().map(|s| format!("s{s}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        b = b.stage(name, &refs, gate.clone(), *max);
    }
    for (k, (_, sites, _, _)) in stages.iter().enumerate() {
        for &s in sites {
            for h in 0..hosts {
                b.chain(
                    k,
                    &format!("s{s}"),
                    Unit::Host,
                    &format!("S{s}-H{h}"),
                    Role::Standalone,
                    CHAIN,
                );
            }
        }
    }
    b.build()
}

/// A host for test fleets.
pub fn host(name: &str, site: &str, role: Role) -> Host {
    Host {
        name: Name::host(name).unwrap(),
        site: Name::ident(site).unwrap(),
        exchange: Some(Exchange {
            role,
            product: Product::Exchange2003,
            edition: Edition::Enterprise,
            build: None,
        }),
        windows: Some(WindowsRelease::Windows2003),
        os_build: None,
        cluster: None,
        pool: None,
        connection: Connection {
            address: name.to_owned(),
            port: 5985,
            scheme: Scheme::Http,
            auth: Auth::Ntlm,
            user: "admin".into(),
            password: SecretSource::Env("PW".into()),
            verify_tls: true,
            allow_basic_over_http: false,
            codepage: None,
            ca_trust_path: None,
        },
        groups: vec![],
        vars: BTreeMap::new(),
    }
}
