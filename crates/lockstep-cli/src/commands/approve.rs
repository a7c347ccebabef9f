//! `lockstep approve`: the operator's word on what waits (acknowledgements, a gate, or a step
//! performed by hand, named).

use std::io::Write as _;

use anyhow::Result;

use crate::args::ApproveArgs;
use crate::commands::run::pick_run;
use crate::exit::{BadInput, ExitStatus};
use crate::settings::Settings;
use crate::wiring;
use lockstep_core::StepState;

/// `lockstep approve`: records approvals; `resume` acts on them.
pub fn approve(args: &ApproveArgs, settings: &Settings) -> Result<ExitStatus> {
    let store = wiring::store(settings)?;
    let run = pick_run(store.as_ref(), &args.run)?;
    let what = args.step.as_deref().or(args.what.as_deref());
    let approved = match lockstep_engine::approve(store.as_ref(), &run, what) {
        Ok(a) => a,
        Err(lockstep_engine::EngineError::NothingToApprove { .. }) => Vec::new(),
        Err(
            e @ (lockstep_engine::EngineError::UnknownApproval { .. }
            | lockstep_engine::EngineError::NotWaiting { .. }),
        ) => return Err(anyhow::Error::new(BadInput(format!("error: {e}")))),
        Err(e) => return Err(e.into()),
    };
    let mut out = std::io::stdout().lock();
    if approved.is_empty() {
        // Steps someone must perform are approved only by name: say which.
        let record = store.load_run(&run)?;
        let named: Vec<&str> = record
            .steps
            .iter()
            .filter(|s| s.state == StepState::Waiting)
            .filter(|s| {
                record
                    .plan
                    .step(&s.step)
                    .is_some_and(|(_, p)| p.action.needs_named_approval())
            })
            .map(|s| s.step.as_str())
            .collect();
        if named.is_empty() {
            writeln!(out, "nothing of run {run} is waiting for approval")?;
        }
        for step in named {
            writeln!(
                out,
                "step {step} waits for the operator to perform it; once done: lockstep approve {run} {step}"
            )?;
        }
    }
    for a in approved {
        writeln!(out, "approved {a}")?;
    }
    Ok(ExitStatus::Success)
}
