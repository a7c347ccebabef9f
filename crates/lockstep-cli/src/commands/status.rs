//! `lockstep status` and `lockstep approve`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Result;
use lockstep_core::{RunRecord, RunStatus, StepState};

use crate::args::{ApproveArgs, Format, GlobalArgs, ReportArgs, ReportFormat, StatusArgs};
use crate::commands::run::pick_run;
use crate::exit::ExitStatus;
use crate::wiring;

fn status_word(s: &RunStatus) -> String {
    match s {
        RunStatus::Running => "running".into(),
        RunStatus::Waiting { reason } => format!("waiting: {reason}"),
        RunStatus::Halted { class, reason } => format!("halted ({class}): {reason}"),
        RunStatus::Finished => "finished".into(),
    }
}

/// Renders one run per stage, site, cluster (or pool) and node with step counts, and every step
/// that is not pending or done in full.
pub fn render_run(r: &RunRecord) -> String {
    let mut out = String::new();
    let plan = &r.plan;
    let _ = writeln!(
        out,
        "run {}  playbook {}  plan {}  {}",
        r.id,
        plan.playbook,
        plan.hash.short(),
        status_word(&r.status)
    );
    let state_of: BTreeMap<&str, StepState> =
        r.steps.iter().map(|s| (s.step.as_str(), s.state)).collect();
    for (si, stage) in plan.stages.iter().enumerate() {
        let steps: Vec<_> = plan.steps.iter().filter(|s| s.stage == si).collect();
        if steps.is_empty() {
            continue;
        }
        let done = steps
            .iter()
            .filter(|s| {
                state_of
                    .get(s.id.as_str())
                    .is_some_and(|st| st.is_complete())
            })
            .count();
        let _ = writeln!(out, "stage {}  {done}/{}", stage.name, steps.len());
        let mut units: BTreeMap<(String, String, String), Vec<&lockstep_core::PlannedStep>> =
            BTreeMap::new();
        for s in &steps {
            let unit = s
                .cluster
                .as_ref()
                .or(s.pool.as_ref())
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into());
            units
                .entry((s.site.to_string(), unit, s.host.to_string()))
                .or_default()
                .push(s);
        }
        let mut last_site = String::new();
        for ((site, unit, host), list) in &units {
            if *site != last_site {
                let _ = writeln!(out, "  site {site}");
                last_site = site.clone();
            }
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            let mut current = None;
            for s in list {
                let st = state_of
                    .get(s.id.as_str())
                    .copied()
                    .unwrap_or(StepState::Pending);
                *counts.entry(st.as_str()).or_default() += 1;
                if current.is_none() && !st.is_complete() {
                    current = Some((st, s));
                }
            }
            let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
            let now = match current {
                Some((st, s)) if st != StepState::Pending => {
                    format!("  <- {} [{}] {}", st.as_str(), s.rule, s.id)
                }
                Some((_, s)) => format!("  next [{}] {}", s.rule, s.id),
                None => String::new(),
            };
            let unit = if unit == "-" {
                String::new()
            } else {
                format!("{unit} ")
            };
            let _ = writeln!(out, "    {unit}{host}: {}{now}", summary.join(", "));
        }
    }
    for s in &r.steps {
        if matches!(s.state, StepState::Failed | StepState::Waiting) {
            let _ = writeln!(out, "{} {}: {}", s.state.as_str(), s.step, s.message);
        }
    }
    out
}

/// `lockstep status`.
pub fn status(args: &StatusArgs, global: &GlobalArgs) -> Result<ExitStatus> {
    let store = wiring::store(global)?;
    let mut out = std::io::stdout().lock();
    match &args.run {
        None => {
            let runs = store.list_runs()?;
            let leases: std::collections::BTreeMap<lockstep_core::RunId, lockstep_core::RunLease> =
                store
                    .run_leases()?
                    .into_iter()
                    .map(|l| (l.run.clone(), l))
                    .collect();
            match args.format {
                Format::Json => {
                    // Each run as stored, plus `controller`: who holds its lease (null if none).
                    let mut list = Vec::new();
                    for r in &runs {
                        let mut v = serde_json::to_value(r)?;
                        if let Some(obj) = v.as_object_mut() {
                            let lease = leases
                                .get(&r.id)
                                .filter(|l| l.expires_ms > 0)
                                .map(serde_json::to_value)
                                .transpose()?;
                            obj.insert(
                                "controller".to_owned(),
                                lease.unwrap_or(serde_json::Value::Null),
                            );
                        }
                        list.push(v);
                    }
                    serde_json::to_writer_pretty(&mut out, &list)?;
                    writeln!(out)?;
                }
                Format::Text => {
                    if runs.is_empty() {
                        writeln!(out, "no runs in {}", wiring::state_shown(global).display())?;
                    }
                    for r in runs {
                        writeln!(
                            out,
                            "{}  {:<22} {:>5}/{:<5} {}{}",
                            r.id,
                            r.playbook,
                            r.complete,
                            r.total,
                            status_word(&r.status),
                            controller_note(leases.get(&r.id), &r.status)
                        )?;
                    }
                }
            }
        }
        Some(_) => {
            let run = pick_run(store.as_ref(), &args.run)?;
            let record = store.load_run(&run)?;
            match args.format {
                Format::Json => {
                    serde_json::to_writer_pretty(&mut out, &record)?;
                    writeln!(out)?;
                }
                Format::Text => {
                    out.write_all(render_run(&record).as_bytes())?;
                    let log = crate::logging::run_log_path(&wiring::log_anchor(global), &run.0);
                    if log.exists() {
                        writeln!(out, "log: {}", log.display())?;
                    }
                }
            }
        }
    }
    Ok(ExitStatus::Success)
}

/// Who drives a run, for the run's status line: the live holder of its lease, or a controller
/// that stopped renewing it while the run was running (dead or hung).
fn controller_note(lease: Option<&lockstep_core::RunLease>, status: &RunStatus) -> String {
    match lease {
        Some(l) if l.expires_ms > 0 && !l.expired => format!("  (driven by {})", l.holder),
        Some(l) if l.expires_ms > 0 && matches!(status, RunStatus::Running) => format!(
            "  (its controller, {}, stopped renewing its lease: dead or hung; `lockstep resume {}` or a `lockstep controller` takes it over)",
            l.holder, l.run
        ),
        _ => String::new(),
    }
}

/// `lockstep approve`: records approvals; `resume` acts on them.
pub fn approve(args: &ApproveArgs, global: &GlobalArgs) -> Result<ExitStatus> {
    let store = wiring::store(global)?;
    let run = pick_run(store.as_ref(), &args.run)?;
    let approved = match lockstep_engine::approve(store.as_ref(), &run, args.what.as_deref()) {
        Ok(a) => a,
        Err(lockstep_engine::EngineError::NothingToApprove { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let mut out = std::io::stdout().lock();
    if approved.is_empty() {
        writeln!(out, "nothing of run {run} is waiting for approval")?;
    }
    for a in approved {
        writeln!(out, "approved {a}")?;
    }
    Ok(ExitStatus::Success)
}

/// `lockstep report`: HTML (default) or Markdown, to a file or standard output.
pub fn report(args: &ReportArgs, global: &GlobalArgs) -> Result<ExitStatus> {
    let store = wiring::store(global)?;
    let run = pick_run(store.as_ref(), &args.run)?;
    let record = store.load_run(&run)?;
    let text = match args.format {
        ReportFormat::Html => lockstep_report::html(&record),
        ReportFormat::Md => lockstep_report::markdown(&record),
    };
    match &args.output {
        Some(p) => {
            std::fs::write(p, text)
                .map_err(|e| anyhow::anyhow!("cannot write report `{}`: {e}", p.display()))?;
            writeln!(
                std::io::stderr(),
                "report of run {run} written to {}",
                p.display()
            )?;
        }
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(ExitStatus::Success)
}
