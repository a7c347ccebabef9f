//! `lockstep report`: a stored run as one HTML file or Markdown.

use std::io::Write as _;

use anyhow::Result;

use crate::args::{ReportArgs, ReportFormat};
use crate::commands::run::pick_run;
use crate::exit::ExitStatus;
use crate::settings::Settings;
use crate::wiring;

/// `lockstep report`: HTML (default) or Markdown, to a file or standard output.
pub fn report(args: &ReportArgs, settings: &Settings) -> Result<ExitStatus> {
    let store = wiring::store(settings)?;
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
