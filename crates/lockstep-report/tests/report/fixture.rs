//! Runs of the shipped e3-cluster playbook, planned by the real planner over clusters of N
//! nodes, "executed" by a deterministic simulation (fixed start time, durations per action, no
//! clock), with facts and outputs as the actions record them.

use std::collections::{BTreeMap, BTreeSet};

use lockstep_core::{
    Action, ClusterMode, Fact, Gate, HaltClass, Locale, Plan, PlannedStep, Product, RunId, RunMeta,
    RunRecord, RunStatus, Stage, StepRecord, StepState, Version,
};
use lockstep_testkit::{name_i, shipped, Evs, FleetBuilder};

/// 2026-11-21 08:00:00 UTC.
pub const T0: u64 = 1_795_248_000_000;
pub const SP1: Version = Version::new(6, 5, 7226, 6);
pub const SP2: Version = Version::new(6, 5, 7638, 2);

/// A cluster to plan for.
pub struct ClusterSpec {
    pub site: String,
    pub cluster: String,
    pub nodes: Vec<String>,
    pub evs: Vec<String>,
    pub stage: usize,
}

impl ClusterSpec {
    pub fn new(site: &str, cluster: &str, nodes: &[&str], evs: &[&str], stage: usize) -> Self {
        ClusterSpec {
            site: site.into(),
            cluster: cluster.into(),
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            evs: evs.iter().map(|s| s.to_string()).collect(),
            stage,
        }
    }
}

/// The shipped `playbooks/e3-cluster.yml`, planned by the real planner over these clusters
/// (each a site's; its last node owns every group, so its first node, passive, goes first), with one stage
/// per name: stage `i` takes the sites of the clusters whose `stage` is `i`.
pub fn plan(clusters: &[ClusterSpec], stages: &[&str]) -> Plan {
    let mut b = FleetBuilder::new();
    let sites: BTreeSet<&str> = clusters.iter().map(|c| c.site.as_str()).collect();
    for site in &sites {
        b = b.site(site, Locale::CS_CZ);
    }
    for c in clusters {
        let nodes: Vec<&str> = c.nodes.iter().map(String::as_str).collect();
        let groups: Vec<String> = c.evs.iter().map(|e| format!("{e} Group")).collect();
        let evs: Vec<Evs<'_>> = c
            .evs
            .iter()
            .zip(&groups)
            .map(|(e, g)| (e.as_str(), g.as_str(), nodes[nodes.len() - 1]))
            .collect();
        b = b.cluster(
            &c.cluster,
            &c.site,
            Product::Exchange2003,
            ClusterMode::ActivePassive,
            &nodes,
            nodes[nodes.len() - 1],
            &evs,
        );
    }
    let fleet = b.build();
    let mut pb = shipped("e3-cluster", &fleet);
    pb.rollout.stages = stages
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let sites: BTreeSet<&str> = clusters
                .iter()
                .filter(|c| c.stage == i)
                .map(|c| c.site.as_str())
                .collect();
            Stage::of_sites(
                name_i(name),
                sites.into_iter().map(name_i).collect(),
                if i == 0 { Gate::None } else { Gate::Approval },
            )
        })
        .collect();
    lockstep_plan::plan(&fleet, &pb, &lockstep_plan::PlanOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// How a simulated step ends.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The install leaves the old build behind: a version mismatch, the run halts.
    WrongBuild,
    /// The step waits for the operator; the run waits.
    Wait,
}

fn secs_for(a: &Action, id: &str) -> u64 {
    let jitter = id.bytes().map(u64::from).sum::<u64>() % 17;
    jitter
        + match a {
            Action::Confirm { .. } => 95,
            Action::Preflight { .. } => 9,
            Action::EvacuateNode { .. } => 48,
            Action::Install {
                prerequisite: Some(_),
                ..
            } => 380,
            Action::Install { .. } => 1_560,
            Action::StopServices { .. } | Action::StartServices { .. } => 14,
            Action::StopClusterService | Action::StartClusterService => 26,
            Action::EvsResourcesOffline { .. } | Action::EvsResourcesOnline { .. } => 31,
            Action::MoveGroup { .. } => 42,
            Action::UpgradeVirtualServer { .. } => 240,
            Action::FailoverTest { .. } => 170,
            _ => 4,
        }
}

fn output_for(p: &PlannedStep) -> (String, Option<i32>) {
    let h = p.host.as_str();
    match &p.action {
        Action::Confirm { .. } => ("bkcheck: last full backup 2026-11-20 23:10, verified\n".into(), Some(0)),
        Action::Preflight { .. } => (
            format!("product-matches: ok (Exchange Server 2003)\nedition-matches: ok (Enterprise)\nno-processes: ok\nno-pending-reboot: ok\ncluster-service-running: ok on {h}\n"),
            None,
        ),
        Action::EvacuateNode { to, .. } => (
            format!("Moving resource group 'EVS1 Group'...\n\nGroup                Node            Status\n-------------------- --------------- ------\nEVS1 Group           {to}          Online\n"),
            Some(0),
        ),
        Action::Install { prerequisite: Some(_), .. } => ("KB831464 setup: installation complete, restart required\nrebooted; WinRM answered after 142 s\n".into(), Some(3010)),
        Action::Install { .. } => (
            format!("Exchange Server 2003 Service Pack 2 setup on {h}\nCopying files...\nUpdating registry...\nSetup completed.\n"),
            Some(0),
        ),
        Action::StopClusterService => ("The Cluster Service service is stopping.\nThe Cluster Service service was stopped successfully.\n".into(), Some(0)),
        Action::StartClusterService => ("The Cluster Service service is starting.\nThe Cluster Service service was started successfully.\n".into(), Some(0)),
        Action::AssertVersion { .. } => ("ServicePackBuild 7638.2\n".into(), None),
        _ => (String::new(), Some(0)),
    }
}

/// Runs the plan in simulation: stages one after the other, the clusters of a stage at once,
/// each cluster's steps one after the other. `outcome(step id)` decides how a step ends; the run
/// stops at the first step that does not end well. `until` (ms after T0) cuts the run short
/// with the step then in flight left running.
pub fn simulate(plan: Plan, outcome: impl Fn(&str) -> Outcome, until: Option<u64>) -> RunRecord {
    let mut records: Vec<StepRecord> = plan
        .steps
        .iter()
        .map(|s| StepRecord::pending(&s.id))
        .collect();
    let mut facts: Vec<Fact> = Vec::new();
    let mut status = RunStatus::Finished;
    let mut approvals = Vec::new();
    let mut stage_start = T0 + 2_000;
    let stages = plan.stages.len().max(1);
    'stages: for stage in 0..stages {
        if stage > 0 {
            approvals.push(lockstep_core::Approval {
                what: format!("gate:{}", plan.stages[stage].name),
                by: "operator".to_owned(),
                at_ms: stage_start + 300_000,
            });
            stage_start += 300_000;
        }
        // Clusters of this stage, each with its own clock.
        let mut clock: BTreeMap<String, u64> = BTreeMap::new();
        let mut stage_end = stage_start;
        let mut stopped = false;
        for (i, p) in plan
            .steps
            .iter()
            .enumerate()
            .filter(|(_, p)| p.stage == stage)
        {
            let key = p
                .cluster
                .as_ref()
                .map_or(p.host.to_string(), |c| c.to_string());
            let t = clock.entry(key.clone()).or_insert(stage_start);
            let start = *t;
            if until.is_some_and(|u| start >= T0 + u) {
                continue;
            }
            let end = start + secs_for(&p.action, &p.id) * 1000;
            let rec = &mut records[i];
            rec.started_ms = Some(start);
            rec.attempts = 1;
            let (output, exit) = output_for(p);
            rec.output = output;
            rec.exit_code = exit;
            let is_sp = matches!(
                &p.action,
                Action::Install {
                    prerequisite: None,
                    ..
                }
            );
            if is_sp {
                facts.push(Fact {
                    host: p.host.clone(),
                    key: "build.before".into(),
                    value: SP1.to_string(),
                    at_ms: start + 1_200,
                });
            }
            if until.is_some_and(|u| end > T0 + u) {
                rec.state = StepState::Running;
                rec.exit_code = None;
                status = RunStatus::Running;
                *t = u64::MAX / 2;
                stopped = true;
                continue;
            }
            let is_iis = matches!(
                &p.action,
                Action::Install {
                    prerequisite: Some(_),
                    ..
                }
            );
            if is_iis && p.host.as_str().ends_with('1') {
                rec.state = StepState::Skipped;
                rec.exit_code = None;
                rec.output = "probe: KB831464 is installed (HKLM\\SOFTWARE\\Microsoft\\Updates\\Windows Server 2003\\SP2\\KB831464)\n".into();
                rec.message = "already done: KB831464 is installed".into();
                rec.finished_ms = Some(start + 2_400);
                *t = start + 2_400 + 500;
                stage_end = stage_end.max(*t);
                continue;
            }
            rec.finished_ms = Some(end);
            *t = end + 1_000;
            stage_end = stage_end.max(*t);
            match outcome(&p.id) {
                Outcome::Ok => {
                    rec.state = StepState::Done;
                    if is_sp {
                        facts.push(Fact {
                            host: p.host.clone(),
                            key: "build.after".into(),
                            value: SP2.to_string(),
                            at_ms: end - 800,
                        });
                    }
                    if matches!(p.action, Action::AssertVersion { .. }) {
                        facts.push(Fact {
                            host: p.host.clone(),
                            key: "build.after".into(),
                            value: SP2.to_string(),
                            at_ms: end,
                        });
                    }
                }
                Outcome::WrongBuild => {
                    rec.state = StepState::Failed;
                    rec.output.push_str("Setup completed with warnings.\nServicePackBuild 7226.6 (unchanged)\nSee C:\\ExchangeSetup.log\n");
                    facts.push(Fact {
                        host: p.host.clone(),
                        key: "build.after".into(),
                        value: SP1.to_string(),
                        at_ms: end - 800,
                    });
                    let reason = format!(
                        "host `{}` reports build 6.5.7226.6 after the install; expected 6.5.7638.2 ({})",
                        p.host, p.rule
                    );
                    rec.message = reason.clone();
                    status = RunStatus::Halted {
                        class: HaltClass::VersionMismatch,
                        reason,
                    };
                    break 'stages;
                }
                Outcome::Wait => {
                    rec.state = StepState::Waiting;
                    rec.finished_ms = None;
                    rec.exit_code = None;
                    rec.message = "run \"Upgrade Exchange Virtual Server\" in Cluster Administrator, then `lockstep approve`".into();
                    status = RunStatus::Waiting {
                        reason: format!("operator step `{}`", p.id),
                    };
                    facts.push(Fact {
                        host: p.host.clone(),
                        key: "boot.time".into(),
                        value: "2026-11-21T08:40:00Z".into(),
                        at_ms: start + 30_000,
                    });
                    break 'stages;
                }
            }
        }
        if stopped {
            break;
        }
        stage_start = stage_end;
    }
    RunRecord {
        id: RunId("r20261121T080000-7k2q".into()),
        plan,
        meta: RunMeta {
            inventory: "inventory/prague.yml\ninventory/milan.yml".into(),
            playbook: "playbooks/e3-cluster.yml".into(),
            started_by: "CORP\\exadmin".into(),
            limit: vec![],
            owners: [("EVS1 Group".to_string(), "PRG-N1".to_string())]
                .into_iter()
                .collect(),
            extra_vars: Default::default(),
        },
        status,
        steps: records,
        facts,
        approvals,
        created_ms: T0,
    }
}

/// The two-node PRGCL1 cluster with one EVS.
pub fn two_node() -> Vec<ClusterSpec> {
    vec![ClusterSpec::new(
        "prague",
        "PRGCL1",
        &["PRG-N1", "PRG-N2"],
        &["EVS1"],
        0,
    )]
}

/// A two-node E3-CLUSTER run that halted on a version mismatch at the second node's install.
pub fn halted_two_node() -> RunRecord {
    simulate(
        plan(&two_node(), &["canary"]),
        |id| {
            if id == "PRG-N2/install-sp" {
                Outcome::WrongBuild
            } else {
                Outcome::Ok
            }
        },
        None,
    )
}

/// The same run, finished.
pub fn finished_two_node() -> RunRecord {
    simulate(plan(&two_node(), &["canary"]), |_| Outcome::Ok, None)
}

/// A fleet of `n` clusters of `per` nodes, over five sites and two stages (the first site's
/// clusters are the canary).
pub fn fleet(n: usize, per: usize) -> Vec<ClusterSpec> {
    let sites = ["prague", "milan", "seattle", "tokyo", "amsterdam"];
    (0..n)
        .map(|i| {
            let site = sites[i % sites.len()];
            let cl = format!("{}CL{}", &site[..3].to_uppercase(), i + 1);
            let nodes: Vec<String> = (1..=per).map(|k| format!("{}-N{k}", cl)).collect();
            let nodes: Vec<&str> = nodes.iter().map(|s| s.as_str()).collect();
            // The first site is the canary stage, every other site the second stage.
            ClusterSpec::new(
                site,
                &cl,
                &nodes,
                &["EVS1", "EVS2"],
                usize::from(site != sites[0]),
            )
        })
        .collect()
}
