//! `lockstep controller`: automatic takeover. Watches the state store for runs still marked
//! running whose lease lapsed (their controller died, hangs, or lost the network), takes each
//! over and resumes it exactly like `lockstep resume` (steps left in flight are probed first;
//! nothing finished runs again). Several may watch one PostgreSQL store from different
//! machines: the lease decides which one drives a run, and its fencing token keeps a revived
//! former holder from sending anything more.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Result;
use lockstep_core::{RunId, RunStatus, StateStore};

use crate::args::{ControllerArgs, ResumeArgs};
use crate::exit::ExitStatus;
use crate::settings::Settings;
use crate::wiring;

/// Runs marked running whose lease lapsed, oldest first, with their last holder.
pub fn orphaned_runs(store: &dyn StateStore) -> Result<Vec<(RunId, String)>> {
    let leases = store.run_leases()?;
    let mut out: Vec<(RunId, String)> = store
        .list_runs()?
        .into_iter()
        .filter(|r| matches!(r.status, RunStatus::Running))
        .filter_map(|r| {
            leases
                .iter()
                .find(|l| l.run == r.id && l.expired && l.expires_ms > 0)
                .map(|l| (r.id.clone(), l.holder.clone()))
        })
        .collect();
    out.reverse();
    Ok(out)
}

/// `lockstep controller`.
pub async fn run(args: &ControllerArgs, settings: &Settings) -> Result<ExitStatus> {
    let store = wiring::store(settings)?;
    // Look again every third of a lease: a lapsed run is taken over within its lease's expiry
    // plus one look.
    let every = Duration::from_millis((settings.lease.as_millis() as u64 / 3).max(200));
    let mut err = std::io::stderr();
    let _ = writeln!(
        err,
        "controller watching {} for runs whose controller stopped (lease {} s)",
        settings.state.shown().display(),
        settings.lease.as_secs()
    );
    loop {
        for (run, holder) in orphaned_runs(store.as_ref())? {
            let _ = writeln!(
                err,
                "taking over run {run}: its controller ({holder}) stopped renewing its lease"
            );
            let resume = ResumeArgs {
                run: Some(run.0.clone()),
                inventories: Vec::new(),
                replan: false,
                yes: args.yes,
                soak_scale: settings.soak_scale,
            };
            match crate::commands::run::resume(&resume, settings).await {
                Ok(status) => {
                    if args.once {
                        return Ok(status);
                    }
                }
                Err(e) => {
                    // Another controller won the race, or the resume failed: say so, go on.
                    let _ = writeln!(err, "{}", crate::exit::render(&e));
                    if args.once {
                        return Err(e);
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitStatus::Success),
        }
    }
}
