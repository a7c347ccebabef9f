//! Windows services: `net stop "S"` / `net start "S"`, judged by the `sc query` state number
//! (the exit codes of `net` and its localised messages are not trusted: it exits 2 both when it
//! fails and when the service is already in the wanted state). Used by Stop/StartServices (G5)
//! and by the Cluster service actions.

use std::time::Duration;

use lockstep_core::Name;
use tokio::time::Instant;

use crate::parse::{self, SERVICE_RUNNING, SERVICE_STOPPED};
use crate::remote::{joined, Node, ServiceState};
use crate::render;
use crate::{Ctx, Outcome, Probe};
use lockstep_core::StepError;

/// What bringing a service to a state did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// The service is not installed (`sc query` exit 1060).
    Missing,
    /// It was already in the wanted state: nothing was sent.
    Already,
    /// The command ran and the service reached the state.
    Changed { output: String, exit_code: i32 },
}

/// Brings a service to `want` (1 stopped, 4 running): reads its state, sends `change` unless it
/// is already there, then reads the state again (polling every `poll` while it is pending,
/// until `timeout`). Not reaching `want` is [`lockstep_core::HaltClass::StepFailed`].
pub(crate) async fn ensure(
    node: &Node<'_>,
    display: &str,
    query: &str,
    change: &str,
    want: u32,
    timeout: Duration,
    poll: Duration,
) -> Result<Change, StepError> {
    match node.service_state(query).await? {
        ServiceState::Missing => return Ok(Change::Missing),
        ServiceState::State(s) if s == want => return Ok(Change::Already),
        ServiceState::State(_) => {}
    }
    let deadline = Instant::now() + timeout;
    let out = node.run(change, timeout).await?;
    let mut state = node.service_state(query).await?;
    while matches!(state, ServiceState::State(s) if s != want && is_pending(s))
        && Instant::now() + poll < deadline
    {
        tokio::time::sleep(poll).await;
        state = node.service_state(query).await?;
    }
    match state {
        ServiceState::State(s) if s == want => Ok(Change::Changed {
            output: joined(&out),
            exit_code: out.exit_code,
        }),
        other => {
            let found = match other {
                ServiceState::Missing => "not installed".to_owned(),
                ServiceState::State(s) => format!("state {s} ({})", state_word(s)),
            };
            Err(StepError::step_failed(
                node.host,
                format!(
                    "service `{display}` on host `{}` did not reach {} after `{change}` \
                     (exit {}): it is {found}",
                    node.host,
                    state_word(want),
                    parse::describe_exit(out.exit_code)
                ),
            )
            .with_output(joined(&out), Some(out.exit_code)))
        }
    }
}

fn is_pending(s: u32) -> bool {
    matches!(
        s,
        parse::SERVICE_START_PENDING | parse::SERVICE_STOP_PENDING | 5 | 6
    )
}

/// The English name of a state number, for messages only (never parsed).
pub(crate) fn state_word(s: u32) -> &'static str {
    match s {
        1 => "STOPPED",
        2 => "START_PENDING",
        3 => "STOP_PENDING",
        4 => "RUNNING",
        5 => "CONTINUE_PENDING",
        6 => "PAUSE_PENDING",
        7 => "PAUSED",
        _ => "UNKNOWN",
    }
}

async fn bring(ctx: &Ctx<'_>, services: &[Name], want: u32) -> Result<Outcome, StepError> {
    let node = ctx.node();
    let mut notes = Vec::new();
    let mut output = String::new();
    let mut last_code = None;
    for s in services {
        let change = if want == SERVICE_RUNNING {
            render::net_start(s)
        } else {
            render::net_stop(s)
        };
        let r = ensure(
            &node,
            s.as_str(),
            &render::sc_query(s),
            &change,
            want,
            ctx.timeout,
            ctx.reboot_poll,
        )
        .await?;
        match r {
            Change::Missing => {
                tracing::info!(host = %ctx.host(), service = %s, "service not installed: skipped");
                notes.push(format!("`{s}` is not installed (skipped)"));
            }
            Change::Already => notes.push(format!("`{s}` was already {}", state_word(want))),
            Change::Changed {
                output: o,
                exit_code,
            } => {
                notes.push(format!("`{s}` {}", state_word(want)));
                if !o.is_empty() {
                    output.push_str(&o);
                    if !output.ends_with('\n') {
                        output.push('\n');
                    }
                }
                last_code = Some(exit_code);
            }
        }
    }
    let verb = if want == SERVICE_RUNNING {
        "started"
    } else {
        "stopped"
    };
    Ok(Outcome::Done {
        output,
        exit_code: last_code,
        facts: Vec::new(),
        message: format!("services {verb} on `{}`: {}", ctx.host(), notes.join(", ")),
    })
}

/// Stop/StartServices probe: every service is in the state (or not installed).
pub(crate) async fn probe(
    ctx: &Ctx<'_>,
    services: &[Name],
    running: bool,
) -> Result<Probe, StepError> {
    let want = if running {
        SERVICE_RUNNING
    } else {
        SERVICE_STOPPED
    };
    let node = ctx.node();
    let mut result = Probe::Done;
    for s in services {
        match node.service_state(&render::sc_query(s)).await? {
            ServiceState::Missing => {}
            ServiceState::State(st) if st == want => {}
            ServiceState::State(st) if is_pending(st) => result = Probe::InProgress,
            ServiceState::State(_) => return Ok(Probe::NotDone),
        }
    }
    Ok(result)
}

/// StopServices (G5): `net stop "S"` for each; a service that does not exist is skipped.
pub(crate) async fn stop(ctx: &Ctx<'_>, services: &[Name]) -> Result<Outcome, StepError> {
    bring(ctx, services, SERVICE_STOPPED).await
}

/// StartServices: `net start "S"` for each; a service that does not exist is skipped.
pub(crate) async fn start(ctx: &Ctx<'_>, services: &[Name]) -> Result<Outcome, StepError> {
    bring(ctx, services, SERVICE_RUNNING).await
}
