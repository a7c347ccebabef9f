//! `lockstep plan`: print the ordered plan.

use std::io::Write as _;

use anyhow::Result;

use crate::args::{Format, PlanArgs};
use crate::exit::{BadInput, ExitStatus};
use crate::inputs;
use crate::settings::Settings;

/// Plans the playbook offline (topology from the inventory) and prints it.
pub fn run(args: &PlanArgs, settings: &Settings) -> Result<ExitStatus> {
    let (fleet, _) = inputs::load_fleet_for(&args.spec.inventories, Some(&args.playbook))?;
    let (playbook, _) = inputs::load_playbook(&args.playbook, &fleet)?;
    let opts = inputs::plan_options(&args.spec)?;
    let plan = lockstep_plan::plan(&fleet, &playbook, &opts)
        .map_err(|e| anyhow::Error::new(BadInput(e.to_string())))?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Text => out.write_all(lockstep_plan::render_text(&plan).as_bytes())?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &plan)?;
            writeln!(out)?;
        }
    }
    let hosts = crate::wiring::plan_hosts(&plan, &fleet);
    if let Some(note) = crate::commands::facts::age_note(settings, &hosts) {
        let _ = writeln!(std::io::stderr(), "note: {note}");
    }
    Ok(ExitStatus::Success)
}
