//! Version and precondition gates: AssertVersion, Preflight (G5, G6, E2-ED,
//! product line, pending reboot, Cluster service running) and the tier order (`tier-order`),
//! judged before the first change from discovery and again, live, before each stage starts.

use lockstep_core::{
    Action, Edition, Fleet, FrontEndScope, HaltClass, Invariant, Name, Plan, PreflightCheck,
    Product, Role, Transport, Version,
};

use crate::parse::SERVICE_RUNNING;
use crate::remote::ServiceState;
use crate::render;
use crate::services::state_word;
use crate::{Ctx, FactOut, Outcome, Probe};
use lockstep_core::StepError;

/// AssertVersion: the installed build must equal `expected` (fact `build.after`), else
/// `VersionMismatch` naming host, found and expected as Exchange System Manager shows them.
pub(crate) async fn assert_version(
    ctx: &Ctx<'_>,
    product: Product,
    expected: Version,
) -> Result<Outcome, StepError> {
    let host = ctx.host();
    let b = ctx.node().build().await?;
    if b.build != expected {
        return Err(StepError::version_mismatch(
            host,
            format!(
                "host `{host}` runs {}, expected {}",
                product.describe(b.build),
                product.describe(expected)
            ),
        ));
    }
    Ok(Outcome::Done {
        output: String::new(),
        exit_code: None,
        facts: vec![FactOut::new(host, "build.after", b.build.to_string())],
        message: format!("host `{host}` runs {}", product.describe(b.build)),
    })
}

/// AssertVersion probe: the build is already the expected one.
pub(crate) async fn probe_version(ctx: &Ctx<'_>, expected: Version) -> Result<Probe, StepError> {
    Ok(if ctx.node().build().await?.build == expected {
        Probe::Done
    } else {
        Probe::NotDone
    })
}

/// Whether `edition` may take a package for `editions` (E2-ED): an empty list means every
/// edition but Conferencing (Conferencing Server has its own service packs).
pub fn edition_allowed(edition: Edition, editions: &[Edition]) -> bool {
    if editions.is_empty() {
        edition != Edition::Conferencing
    } else {
        editions.contains(&edition)
    }
}

/// Preflight: runs every check, collects every failure into one error: `VersionMismatch` when
/// the edition does not match (E2-ED), else `Precondition`.
pub(crate) async fn preflight(
    ctx: &Ctx<'_>,
    checks: &[PreflightCheck],
    editions: &[Edition],
    product: Option<Product>,
) -> Result<Outcome, StepError> {
    let host = ctx.host();
    let node = ctx.node();
    let mut failures: Vec<String> = Vec::new();
    let mut passed: Vec<&str> = Vec::new();
    let mut edition_mismatch = false;
    let mut build = None;
    for check in checks {
        match check {
            PreflightCheck::ServicesStopped { services } => {
                let mut ok = true;
                for s in services {
                    let name = Name::object(s).map_err(|e| {
                        StepError::precondition(
                            host,
                            format!("preflight service name refused: {e}"),
                        )
                    })?;
                    match node.service_state(&render::sc_query(&name)).await? {
                        ServiceState::Missing => {}
                        ServiceState::State(1) => {}
                        ServiceState::State(st) => {
                            ok = false;
                            failures.push(format!(
                                "service `{s}` is {} (state {st}): stop it before installing",
                                state_word(st)
                            ));
                        }
                    }
                }
                if ok {
                    passed.push("services stopped");
                }
            }
            PreflightCheck::NoProcesses { images } => {
                let default = ["setup.exe", "update.exe", "xcopy.exe"]
                    .map(String::from)
                    .to_vec();
                let images = if images.is_empty() { &default } else { images };
                let procs = node.processes().await?;
                let mut found: Vec<&String> = procs
                    .iter()
                    .filter(|p| images.iter().any(|i| i.eq_ignore_ascii_case(p)))
                    .collect();
                found.sort();
                found.dedup();
                if found.is_empty() {
                    passed.push("no setup programs running");
                } else {
                    failures.push(format!(
                        "{} running: close every Setup, Update and Xcopy first",
                        found
                            .iter()
                            .map(|p| format!("`{p}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            PreflightCheck::EditionMatches => {
                if build.is_none() {
                    build = Some(node.build().await?);
                }
                let live = build.and_then(|b| b.edition);
                let inventory = ctx.fleet.host(host.as_str()).and_then(|h| h.edition());
                match live.or(inventory) {
                    Some(e) if edition_allowed(e, editions) => passed.push("edition matches"),
                    Some(e) => {
                        edition_mismatch = true;
                        let wanted = if editions.is_empty() {
                            "every edition but Conferencing".to_owned()
                        } else {
                            editions.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ")
                        };
                        failures.push(format!(
                            "host `{host}` runs the {e} edition; the package is for {wanted}"
                        ));
                    }
                    None => failures.push(format!(
                        "the Exchange edition of `{host}` is unknown (no `Edition` value, not in the inventory)"
                    )),
                }
            }
            PreflightCheck::ProductMatches => {
                let b = match build {
                    Some(b) => b.build,
                    None => {
                        let nb = node.build().await?;
                        build = Some(nb);
                        nb.build
                    }
                };
                match product {
                    Some(p) if p.owns(b) => passed.push("product matches"),
                    Some(p) => {
                        failures.push(format!("host `{host}` runs build {b}, which is not {p}"))
                    }
                    None => failures.push(format!(
                        "the playbook has no target product to compare `{host}`'s build {b} with"
                    )),
                }
            }
            PreflightCheck::NoPendingReboot => {
                if node.pending_reboot().await? {
                    failures.push(format!(
                        "a restart is pending on `{host}` (`PendingFileRenameOperations`): restart it first"
                    ));
                } else {
                    passed.push("no pending restart");
                }
            }
            PreflightCheck::ClusterServiceRunning => {
                match node.service_state(render::SC_QUERY_CLUSSVC).await? {
                    ServiceState::State(SERVICE_RUNNING) => passed.push("Cluster service running"),
                    ServiceState::State(st) => failures.push(format!(
                        "the Cluster service of `{host}` is {} (state {st}), not running",
                        state_word(st)
                    )),
                    ServiceState::Missing => failures.push(format!(
                        "host `{host}` has no Cluster service (`ClusSvc` is not installed)"
                    )),
                }
            }
        }
    }
    if !failures.is_empty() {
        let class = if edition_mismatch {
            HaltClass::VersionMismatch
        } else {
            HaltClass::Precondition
        };
        return Err(StepError::new(
            class,
            host,
            format!("preflight failed on `{host}`: {}", failures.join("; ")),
        ));
    }
    Ok(Outcome::Done {
        output: String::new(),
        exit_code: None,
        facts: Vec::new(),
        message: format!("preflight passed on `{host}`: {}", passed.join(", ")),
    })
}

/// Front-ends below the target (with their build), and front-ends whose build could not be read
/// (with why).
pub type Shortfall = (Vec<(Name, Version)>, Vec<(Name, String)>);

/// One tier-order requirement of a plan that declares the tier order (`tier-order`, or
/// `shape.tiers`): before stage `stage` installs the target on a back-end, every front-end in
/// `front_ends` (of the organisation, whatever playbook upgrades them) runs `target` or later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierOrder {
    /// The rule the playbook cites for its tier order.
    pub rule: String,
    /// The stage whose back-end installs need it.
    pub stage: usize,
    /// Product line.
    pub product: Product,
    /// The build every front-end must run.
    pub target: Version,
    /// The back-ends of the stage that install the target.
    pub back_ends: Vec<Name>,
    /// The front-ends the rule covers (the organisation's, or the site's with site scope).
    pub front_ends: Vec<Name>,
}

/// The tier-order requirements of `plan` over `fleet`: one per stage, product, target and
/// front-end scope that has a back-end installing the playbook's package.
pub fn tier_order(fleet: &Fleet, plan: &Plan) -> Vec<TierOrder> {
    let mut out: Vec<TierOrder> = Vec::new();
    if !plan.shape.is_tiered() && !plan.invariants.contains_key(&Invariant::TierOrder) {
        return out;
    }
    let rule = lockstep_core::invariant::cited(&plan.invariants, Invariant::TierOrder);
    for step in &plan.steps {
        let Action::Install {
            target: Some(target),
            prerequisite: None,
            product,
            ..
        } = &step.action
        else {
            continue;
        };
        if step.role != Role::BackEnd {
            continue;
        }
        let site = match fleet.front_end_scope {
            FrontEndScope::Organisation => None,
            FrontEndScope::Site => Some(&step.site),
        };
        let front_ends: Vec<Name> = fleet
            .hosts
            .iter()
            .filter(|h| {
                h.has_role(Role::FrontEnd)
                    && h.runs(*product)
                    && site.is_none_or(|s| h.site.eq_ignore_case(s.as_str()))
            })
            .map(|h| h.name.clone())
            .collect();
        if let Some(req) = out.iter_mut().find(|r| {
            r.stage == step.stage
                && r.product == *product
                && r.target == *target
                && r.front_ends == front_ends
        }) {
            if !req.back_ends.contains(&step.host) {
                req.back_ends.push(step.host.clone());
            }
            continue;
        }
        out.push(TierOrder {
            rule: rule.to_owned(),
            stage: step.stage,
            product: *product,
            target: *target,
            back_ends: vec![step.host.clone()],
            front_ends,
        });
    }
    out
}

impl TierOrder {
    /// Whether `plan` itself installs the target on front-end `fe` in a stage before this one
    /// (then the rule is checked again, live, when this stage starts).
    pub fn upgraded_earlier(&self, plan: &Plan, fe: &Name) -> bool {
        plan.steps.iter().any(|s| {
            s.stage < self.stage
                && s.host.eq_ignore_case(fe.as_str())
                && matches!(&s.action, Action::Install { target: Some(t), prerequisite: None, .. } if *t >= self.target)
        })
    }

    /// The front-ends that do not satisfy the rule, given each front-end's build (`Ok(None)`:
    /// not read, `Err`: why it could not be read): those below the target, and those unread.
    /// `skip` names front-ends not to judge.
    pub fn shortfall(
        &self,
        build: impl Fn(&Name) -> Result<Option<Version>, String>,
        skip: impl Fn(&Name) -> bool,
    ) -> Shortfall {
        let mut below = Vec::new();
        let mut unread = Vec::new();
        for fe in self.front_ends.iter().filter(|f| !skip(f)) {
            match build(fe) {
                Ok(Some(v)) if v >= self.target => {}
                Ok(Some(v)) => below.push((fe.clone(), v)),
                Ok(None) => unread.push((fe.clone(), "build not read".to_owned())),
                Err(why) => unread.push((fe.clone(), why)),
            }
        }
        (below, unread)
    }

    /// The halt for a shortfall (`None` when there is none), naming the back-ends held back and
    /// the front-ends grouped by build.
    pub fn halt(
        &self,
        back_ends: &[Name],
        below: &[(Name, Version)],
        unread: &[(Name, String)],
    ) -> Option<(HaltClass, String)> {
        let names = |v: &mut dyn Iterator<Item = &Name>| {
            v.map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        };
        let head = format!(
            "{}: every front-end must run {} before any back-end is upgraded (back-ends held back: {})",
            self.rule,
            self.product.describe(self.target),
            names(&mut back_ends.iter())
        );
        if !below.is_empty() {
            let mut builds: Vec<Version> = below.iter().map(|(_, v)| *v).collect();
            builds.sort();
            builds.dedup();
            let groups: Vec<String> = builds
                .iter()
                .map(|b| {
                    format!(
                        "{} at {}",
                        names(&mut below.iter().filter(|(_, v)| v == b).map(|(n, _)| n)),
                        self.product.describe(*b)
                    )
                })
                .collect();
            Some((
                HaltClass::VersionMismatch,
                format!(
                    "{head}; {} front-end(s) below it: {} (upgrade the front-ends first, e.g. with the front-end/back-end playbook)",
                    below.len(),
                    groups.join("; ")
                ),
            ))
        } else if !unread.is_empty() {
            Some((
                HaltClass::NodeUnreachable,
                format!(
                    "{head}; could not read: {}",
                    unread
                        .iter()
                        .map(|(n, why)| format!("`{n}` ({why})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
        } else {
            None
        }
    }
}

/// The tier-order rule checked live before stage `stage` starts: reads the build of every
/// front-end a back-end install of the stage depends on. `None`: it holds.
pub async fn tier_order_now(
    t: &dyn Transport,
    fleet: &Fleet,
    plan: &Plan,
    stage: usize,
) -> Option<(HaltClass, String)> {
    for req in tier_order(fleet, plan)
        .into_iter()
        .filter(|r| r.stage == stage)
    {
        let mut builds = std::collections::BTreeMap::new();
        for fe in &req.front_ends {
            let b = crate::read_build(t, fe)
                .await
                .map(|b| Some(b.build))
                .map_err(|e| e.message);
            builds.insert(fe.clone(), b);
        }
        let (below, unread) = req.shortfall(|fe| builds[fe].clone(), |_| false);
        if let Some(halt) = req.halt(&req.back_ends, &below, &unread) {
            return Some(halt);
        }
    }
    None
}
