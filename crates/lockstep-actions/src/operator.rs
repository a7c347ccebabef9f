//! Confirm (G1 backups, G2 release notes, any operator check): without a command the step waits
//! for `lockstep approve`; with a site-supplied command, exit 0 confirms and anything else is a
//! precondition that does not hold.

use crate::remote::joined;
use crate::{Ctx, Outcome};
use lockstep_core::StepError;

/// Confirm.
pub(crate) async fn confirm(
    ctx: &Ctx<'_>,
    message: &str,
    command: Option<&str>,
) -> Result<Outcome, StepError> {
    let host = ctx.host();
    let Some(command) = command else {
        return Ok(Outcome::Waiting {
            instructions: message.to_owned(),
        });
    };
    let out = ctx.node().run(command, ctx.timeout).await?;
    if out.exit_code == 0 {
        Ok(Outcome::Done {
            output: joined(&out),
            exit_code: Some(0),
            facts: Vec::new(),
            message: format!("confirmed by `{command}` on `{host}`: {message}"),
        })
    } else {
        Err(StepError::precondition(
            host,
            format!(
                "not confirmed: `{command}` on `{host}` exited {} ({message})",
                out.exit_code
            ),
        )
        .with_output(joined(&out), Some(out.exit_code)))
    }
}
