//! `lockstep status` and `lockstep approve`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Result;
use lockstep_core::{RunRecord, RunStatus, StateStore, StepState};

use crate::args::{Format, StatusArgs};
use crate::commands::run::pick_run;
use crate::exit::ExitStatus;
use crate::settings::Settings;
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

/// The state of a stored run as a word, telling a live controller's run from a dead one's: a
/// run recorded `running` whose OS lock is free (SQLite), or whose lease lapsed (PostgreSQL),
/// has no controller any more (it was killed).
fn state_of(store: &dyn StateStore, id: &lockstep_core::RunId, s: &RunStatus) -> &'static str {
    match s {
        // Probed without taking the run or its lease from the controller that may drive it.
        RunStatus::Running => {
            let driven = match store.run_driven(id) {
                Ok(Some(d)) => d,
                _ => store
                    .run_leases()
                    .map(|ls| ls.iter().any(|l| &l.run == id && !l.expired))
                    .unwrap_or(true),
            };
            if driven {
                "running"
            } else {
                "interrupted"
            }
        }
        RunStatus::Waiting { .. } => "waiting",
        RunStatus::Halted { .. } => "halted",
        RunStatus::Finished => "finished",
    }
}

/// The reason of a status in at most `max` characters (whole, for `--format json`).
fn reason_of(s: &RunStatus, state: &str) -> String {
    match s {
        RunStatus::Running if state == "interrupted" => {
            "no controller drives it (it was stopped or killed): `lockstep resume`".into()
        }
        RunStatus::Running => String::new(),
        RunStatus::Waiting { reason } => reason.clone(),
        RunStatus::Halted { class, reason } => format!("{class}: {reason}"),
        RunStatus::Finished => String::new(),
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// A run's start, RFC 3339 in UTC to the second (`2026-11-21T08:18:54Z`).
fn started_of(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .unwrap_or(jiff::Timestamp::MAX)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `lockstep status`.
pub fn status(args: &StatusArgs, settings: &Settings) -> Result<ExitStatus> {
    let store = wiring::store(settings)?;
    let mut out = std::io::stdout().lock();
    match &args.run {
        None => {
            let runs = store.list_runs()?;
            // Who holds each run's lease (the controller driving it), when one does.
            let holders: BTreeMap<lockstep_core::RunId, String> = store
                .run_leases()?
                .into_iter()
                .filter(|l| !l.expired)
                .map(|l| (l.run, l.holder))
                .collect();
            let rows: Vec<(lockstep_core::RunSummary, &str, String)> = runs
                .into_iter()
                .map(|r| {
                    let state = state_of(store.as_ref(), &r.id, &r.status);
                    let reason = match holders.get(&r.id) {
                        Some(h) if state == "running" => format!("driven by {h}"),
                        _ => reason_of(&r.status, state),
                    };
                    (r, state, reason)
                })
                .collect();
            match args.format {
                Format::Json => {
                    // Flat: one object per run, plain fields.
                    let flat: Vec<serde_json::Value> = rows
                        .iter()
                        .map(|(r, state, reason)| {
                            let class = match &r.status {
                                RunStatus::Halted { class, .. } => Some(class.as_str()),
                                _ => None,
                            };
                            serde_json::json!({
                                "run": r.id.0,
                                "playbook": r.playbook,
                                "state": state,
                                "class": class,
                                "reason": reason,
                                "complete": r.complete,
                                "total": r.total,
                                "started": started_of(r.created_ms),
                                "controller": holders.get(&r.id),
                            })
                        })
                        .collect();
                    serde_json::to_writer_pretty(&mut out, &flat)?;
                    writeln!(out)?;
                }
                Format::Text => {
                    if rows.is_empty() {
                        writeln!(out, "no runs in {}", settings.state.shown().display())?;
                    } else {
                        writeln!(
                            out,
                            "{:<22}  {:<18} {:<11} {:<20} {:>9}  REASON",
                            "RUN", "PLAYBOOK", "STATE", "STARTED (UTC)", "STEPS"
                        )?;
                    }
                    for (r, state, reason) in rows {
                        writeln!(
                            out,
                            "{:<22}  {:<18} {:<11} {:<20} {:>9}  {}",
                            r.id.0,
                            r.playbook,
                            state,
                            started_of(r.created_ms),
                            format!("{}/{}", r.complete, r.total),
                            shorten(&reason, 72)
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
                    let state = state_of(store.as_ref(), &run, &record.status);
                    if state == "interrupted" {
                        writeln!(out, "interrupted: {}", reason_of(&record.status, state))?;
                    }
                    if !matches!(record.status, RunStatus::Finished) {
                        writeln!(
                            out,
                            "now: {}",
                            crate::commands::run::standing(&record).describe()
                        )?;
                    }
                    let log = crate::logging::run_log_path(&settings.state.log_anchor(), &run.0);
                    if log.exists() {
                        writeln!(out, "log: {}", log.display())?;
                    }
                }
            }
        }
    }
    Ok(ExitStatus::Success)
}
