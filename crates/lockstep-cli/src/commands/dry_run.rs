//! `lockstep run --check`: changes nothing. Every read-only step (preflight, version checks) is
//! run for real; every other step is probed ("already done?") and, where it is not done, the
//! exact command lines it would send are printed.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use lockstep_core::{Action, Fleet, Plan, Transport};
use lockstep_engine::runner::{Outcome, Probe, StepRunner};

use crate::exit::ExitStatus;
use crate::runner::BuiltinRunner;

/// Checks that hold before the change and can run now (a version assertion is a post-condition:
/// it is described, not run).
fn read_only(action: &Action) -> bool {
    matches!(action, Action::Preflight { .. })
}

/// Prints, per stage and step, what a run would do now; exit 3 when a check fails.
pub async fn run(
    plan: &Plan,
    fleet: Arc<Fleet>,
    transport: Arc<dyn Transport>,
) -> Result<ExitStatus> {
    let runner = BuiltinRunner::new(transport, fleet);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "check of `{}` ({} steps, plan {}): nothing is changed",
        plan.playbook,
        plan.steps.len(),
        plan.hash.short()
    )?;
    let mut failed = 0;
    let mut stage = usize::MAX;
    for step in &plan.steps {
        if step.stage != stage {
            stage = step.stage;
            writeln!(out, "\nstage {}", plan.stages[stage].name)?;
        }
        let head = format!("  [{}] {} (on {})", step.rule, step.id, step.host);
        let timeout = Duration::from_secs(step.timeout_secs.clamp(1, 600));
        if read_only(&step.action) {
            match runner.execute(step, timeout).await {
                Ok(Outcome::Done { message, .. }) => {
                    writeln!(out, "{head}: check passed: {message}")?
                }
                Ok(Outcome::Waiting { instructions }) => {
                    writeln!(out, "{head}: would wait for the operator: {instructions}")?
                }
                Err(e) => {
                    failed += 1;
                    writeln!(out, "{head}: CHECK FAILED ({}): {}", e.class, e.message)?;
                }
            }
            continue;
        }
        match runner.probe(step).await {
            Ok(Probe::Done) => writeln!(out, "{head}: already done")?,
            Ok(Probe::InProgress) => writeln!(out, "{head}: in progress on the node")?,
            Ok(Probe::NotDone) => {
                let lines = lockstep_actions::render(&step.action, &step.host);
                match &step.action {
                    Action::AssertVersion { product, expected } => writeln!(
                        out,
                        "{head}: would check the node runs {}",
                        product.describe(*expected)
                    )?,
                    Action::Confirm { command: None, message } => {
                        writeln!(out, "{head}: would wait for the operator: {message}")?
                    }
                    Action::UpgradeVirtualServer { command: None, .. } => writeln!(
                        out,
                        "{head}: would check T2 and wait for the operator (Upgrade Exchange Virtual Server)"
                    )?,
                    _ => {
                        writeln!(out, "{head}: would run:")?;
                        for l in lines {
                            writeln!(out, "      {l}")?;
                        }
                    }
                }
            }
            Err(e) => {
                writeln!(out, "{head}: cannot tell ({}): {}", e.class, e.message)?;
            }
        }
    }
    writeln!(
        out,
        "\n{} check(s) failed; a run would {}",
        failed,
        if failed == 0 {
            "start"
        } else {
            "halt at the first failing check"
        }
    )?;
    Ok(if failed == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Halted
    })
}
