//! Reboot: read `LastBootUpTime`, `shutdown /r /t 0 /f`, then poll until the node stops
//! answering and answers again with a different boot time, within the step timeout.

use std::time::Duration;

use lockstep_core::HaltClass;
use tokio::time::Instant;

use crate::remote::joined;
use crate::render;
use crate::{Ctx, FactOut, Outcome, Probe};
use lockstep_core::StepError;

/// The first wait of a reboot poll is `reboot_poll / FIRST_POLL_DIVISOR`; each next wait is
/// [`POLL_GROWTH`] times longer, up to `reboot_poll`.
const FIRST_POLL_DIVISOR: u32 = 16;

/// Growth of the wait between two reboot polls.
const POLL_GROWTH: f64 = 1.5;

/// The waits between reboot polls: fast first (a quick restart, a virtual machine, the lab), then
/// backing off geometrically to `max`. A fixed `max` wastes up to `max` per reboot on the
/// critical path of every unit; this costs about seven extra queries per reboot (at 500 ms: 31,
/// 47, 70, 105, 158, 237, 356 ms, then 500 ms), nothing on a fleet whose reboots take minutes.
pub(crate) fn poll_waits(max: Duration) -> impl Iterator<Item = Duration> {
    let first = (max / FIRST_POLL_DIVISOR)
        .max(Duration::from_millis(1))
        .min(max);
    std::iter::successors(Some(first), move |w| Some(w.mul_f64(POLL_GROWTH).min(max)))
}

/// Polls (at [`poll_waits`] of `ctx.reboot_poll`, forgetting the transport's pooled shells before
/// each poll) until the node answers with a boot time other than `before`; a node that does not
/// within `ctx.timeout` is [`HaltClass::NodeUnreachable`]. Returns the new boot time.
pub(crate) async fn wait_for_new_boot(ctx: &Ctx<'_>, before: &str) -> Result<String, StepError> {
    let host = ctx.host();
    let node = ctx.node();
    let deadline = Instant::now() + ctx.timeout;
    let mut went_down = false;
    let mut waits = poll_waits(ctx.reboot_poll);
    loop {
        tokio::time::sleep(waits.next().unwrap_or(ctx.reboot_poll)).await;
        ctx.transport.reset(host).await;
        match node.boot_time().await {
            Ok(t) if t != before => {
                tracing::info!(host = %host, boot_time = %t, went_down, "node is back");
                return Ok(t);
            }
            Ok(_) => {
                tracing::debug!(host = %host, "still the old boot");
            }
            Err(e) => {
                if !went_down {
                    tracing::info!(host = %host, error = %e.message, "node went down");
                }
                went_down = true;
            }
        }
        if Instant::now() >= deadline {
            let what = if went_down {
                "went down but did not come back"
            } else {
                "did not go down"
            };
            return Err(StepError::unreachable(
                host,
                format!(
                    "host `{host}` {what} within {} s of the restart (boot time before: {before})",
                    ctx.timeout.as_secs()
                ),
            ));
        }
    }
}

/// Restarts now and waits for the node: returns the shutdown output and the new boot time.
pub(crate) async fn restart(ctx: &Ctx<'_>) -> Result<(String, String), StepError> {
    let host = ctx.host();
    let node = ctx.node();
    let before = node.boot_time().await?;
    let output = match node.run(render::SHUTDOWN_REBOOT, ctx.timeout).await {
        Ok(out) if out.exit_code == 0 => joined(&out),
        Ok(out) => {
            return Err(StepError::step_failed(
                host,
                format!(
                    "`{}` on host `{host}` failed (exit {})",
                    render::SHUTDOWN_REBOOT,
                    out.exit_code
                ),
            )
            .with_output(joined(&out), Some(out.exit_code)))
        }
        // The node may drop the connection as it goes down: the wait decides.
        Err(e) if e.class == HaltClass::NodeUnreachable => {
            tracing::info!(host = %host, error = %e.message, "connection dropped by the restart");
            String::new()
        }
        Err(e) => return Err(e),
    };
    let after = wait_for_new_boot(ctx, &before).await?;
    Ok((output, after))
}

/// Reboot.
pub(crate) async fn execute(ctx: &Ctx<'_>) -> Result<Outcome, StepError> {
    let host = ctx.host();
    let (output, after) = restart(ctx).await?;
    Ok(Outcome::Done {
        output,
        exit_code: Some(0),
        facts: vec![FactOut::new(host, "boot.time", after.clone())],
        message: format!("host `{host}` restarted (boot time {after})"),
    })
}

/// Reboot probe: done unless a reboot is still pending (`PendingFileRenameOperations`).
pub(crate) async fn probe(ctx: &Ctx<'_>) -> Result<Probe, StepError> {
    Ok(if ctx.node().pending_reboot().await? {
        Probe::NotDone
    } else {
        Probe::Done
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reboot_polls_start_fast_and_back_off_to_the_configured_interval() {
        let max = Duration::from_millis(500);
        let waits: Vec<Duration> = poll_waits(max).take(12).collect();
        assert_eq!(waits[0], Duration::from_micros(31_250));
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert!(waits.iter().all(|w| *w <= max), "{waits:?}");
        let first_full = waits.iter().position(|w| *w == max).unwrap();
        assert_eq!(first_full, 7, "{waits:?}");
        // The configured interval stays the ceiling, even a zero one (tests).
        assert_eq!(
            poll_waits(Duration::ZERO).next(),
            Some(Duration::ZERO),
            "capped at the configured interval"
        );
    }
}
