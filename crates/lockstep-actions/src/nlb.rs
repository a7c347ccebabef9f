//! Network Load Balancing for load-balanced pools (`pool-together`): `wlbs drainstop` / `wlbs start`,
//! judged by the exit code of `wlbs query` (1005 converged, 1007 stopped, 1009 draining); its
//! text is localised and never read.

use crate::parse::{WLBS_CONVERGED, WLBS_STOPPED};
use crate::remote::{joined, QUERY_TIMEOUT};
use crate::render;
use crate::{Ctx, Outcome, Probe};
use lockstep_core::StepError;

async fn query(ctx: &Ctx<'_>) -> Result<i32, StepError> {
    Ok(ctx
        .node()
        .run(render::WLBS_QUERY, QUERY_TIMEOUT)
        .await?
        .exit_code)
}

async fn bring(ctx: &Ctx<'_>, line: &str, want: i32, word: &str) -> Result<Outcome, StepError> {
    let host = ctx.host();
    if query(ctx).await? == want {
        return Ok(Outcome::done(format!("NLB on `{host}` is already {word}")));
    }
    let out = ctx.node().run(line, ctx.timeout).await?;
    if out.exit_code != 0 {
        return Err(StepError::step_failed(
            host,
            format!("`{line}` on host `{host}` failed (exit {})", out.exit_code),
        )
        .with_output(joined(&out), Some(out.exit_code)));
    }
    let now = query(ctx).await?;
    if now != want {
        return Err(StepError::step_failed(
            host,
            format!("NLB on `{host}` is not {word} after `{line}` (`wlbs query` exit {now}, expected {want})"),
        )
        .with_output(joined(&out), Some(0)));
    }
    Ok(Outcome::Done {
        output: joined(&out),
        exit_code: Some(0),
        facts: Vec::new(),
        message: format!("NLB on `{host}` is {word}"),
    })
}

/// NlbDrain: `wlbs drainstop`, then `wlbs query` must exit 1007 (stopped).
pub(crate) async fn drain(ctx: &Ctx<'_>) -> Result<Outcome, StepError> {
    bring(ctx, render::WLBS_DRAINSTOP, WLBS_STOPPED, "stopped").await
}

/// NlbStart: `wlbs start`, then `wlbs query` must exit 1005 (converged).
pub(crate) async fn start(ctx: &Ctx<'_>) -> Result<Outcome, StepError> {
    bring(ctx, render::WLBS_START, WLBS_CONVERGED, "converged").await
}

/// NLB probe: `wlbs query` exits with `want`.
pub(crate) async fn probe(ctx: &Ctx<'_>, want: i32) -> Result<Probe, StepError> {
    Ok(match query(ctx).await? {
        w if w == want => Probe::Done,
        crate::parse::WLBS_DRAINING if want == WLBS_STOPPED => Probe::InProgress,
        _ => Probe::NotDone,
    })
}
