//! The generic steps an administrator writes: `command` (a cmd.exe line), `powershell` (a script
//! sent with `-EncodedCommand`), `wait-until` and `assert` (conditions over declared facts).
//! Judged by exit code and, for `expect`, by values read from the JSON the script prints:
//! never by localised text. A change with `unless` is skipped when the condition already holds,
//! and its probe reports it done on resume: that is what keeps an installer exactly-once.

use std::time::Duration;

use lockstep_core::{Condition, FactDef, FactValue, HaltClass, Judge};
use tokio::time::Instant;

use crate::error::ActionError;
use crate::facts::{self, json_fact, json_path, shown};
use crate::remote::joined;
use crate::{Ctx, FactOut, Outcome, Probe};

fn fact_outs(ctx: &Ctx<'_>, values: &[(String, FactValue)]) -> Vec<FactOut> {
    values
        .iter()
        .map(|(k, v)| FactOut::new(ctx.host(), format!("fact.{k}"), v.to_string()))
        .collect()
}

/// The command line a generic step sends.
pub fn line(action_text: &str, powershell: bool) -> String {
    if powershell {
        crate::render::powershell(action_text)
    } else {
        action_text.to_owned()
    }
}

/// `command` and `powershell`.
pub(crate) async fn run(
    ctx: &Ctx<'_>,
    text: &str,
    powershell: bool,
    judge: &Judge,
) -> Result<Outcome, ActionError> {
    let host = ctx.host();
    if let Some(unless) = &judge.unless {
        let (holds, values) = facts::check(ctx, unless, &judge.facts).await?;
        if holds {
            return Ok(Outcome::Done {
                output: String::new(),
                exit_code: None,
                facts: fact_outs(ctx, &values),
                message: format!(
                    "skipped on `{host}`: `{unless}` already holds ({})",
                    shown(&values)
                ),
            });
        }
    }
    let sent = line(text, powershell);
    let out = ctx.node().run(&sent, ctx.timeout).await?;
    let what = if powershell { "the script" } else { "`" }.to_owned();
    let what = if powershell {
        what
    } else {
        format!("{what}{text}`")
    };
    let code = out.exit_code;
    let restart = judge.restart_exit_codes.contains(&code);
    if !restart && !judge.ok_exit_codes.contains(&code) {
        return Err(ActionError::step_failed(
            host,
            format!(
                "{what} on `{host}` exited {code} ({}); success is {:?}",
                crate::parse::describe_exit(code),
                judge
                    .ok_exit_codes
                    .iter()
                    .chain(&judge.restart_exit_codes)
                    .collect::<Vec<_>>()
            ),
        )
        .with_output(joined(&out), Some(code)));
    }
    let mut facts_out = Vec::new();
    if let Some(expect) = &judge.expect {
        let json: serde_json::Value = match serde_json::from_str(out.stdout.trim()) {
            Ok(v) => v,
            Err(e) => {
                return Err(ActionError::step_failed(
                    host,
                    format!("{what} on `{host}` printed no JSON for `expect: {expect}` ({e}); end it with `| ConvertTo-Json`"),
                )
                .with_output(joined(&out), Some(code)))
            }
        };
        let mut seen: Vec<(String, FactValue)> = Vec::new();
        let holds = expect.eval(&mut |name| {
            let v = json_path(&json, name)
                .map(json_fact)
                .unwrap_or(FactValue::Missing);
            seen.push((name.to_owned(), v.clone()));
            v
        });
        if !holds {
            return Err(ActionError::step_failed(
                host,
                format!(
                    "{what} on `{host}`: `{expect}` does not hold ({})",
                    shown(&seen)
                ),
            )
            .with_output(joined(&out), Some(code)));
        }
        facts_out.extend(fact_outs(ctx, &seen));
    }
    let mut output = joined(&out);
    let mut message = format!("{what} on `{host}` exited {code}");
    if restart {
        let (shutdown, after) = crate::reboot::restart(ctx).await?;
        if !shutdown.is_empty() {
            output = format!("{output}\n{shutdown}");
        }
        facts_out.push(FactOut::new(host, "boot.time", after.clone()));
        message.push_str(&format!("; restarted (boot time {after})"));
    }
    Ok(Outcome::Done {
        output,
        exit_code: Some(code),
        facts: facts_out,
        message,
    })
}

/// The probe of `command`/`powershell`: done when `unless` holds; otherwise not done (a
/// read-only step is safe to run again; a change without `unless` runs again on resume).
pub(crate) async fn probe_run(ctx: &Ctx<'_>, judge: &Judge) -> Result<Probe, ActionError> {
    match &judge.unless {
        Some(c) => Ok(if facts::check(ctx, c, &judge.facts).await?.0 {
            Probe::Done
        } else {
            Probe::NotDone
        }),
        None => Ok(Probe::NotDone),
    }
}

/// `assert`.
pub(crate) async fn assert(
    ctx: &Ctx<'_>,
    that: &Condition,
    class: HaltClass,
    defs: &[FactDef],
) -> Result<Outcome, ActionError> {
    let host = ctx.host();
    let (holds, values) = facts::check(ctx, that, defs).await?;
    if holds {
        Ok(Outcome::Done {
            output: String::new(),
            exit_code: None,
            facts: fact_outs(ctx, &values),
            message: format!("`{that}` holds on `{host}` ({})", shown(&values)),
        })
    } else {
        Err(ActionError::new(
            class,
            host,
            format!("`{that}` does not hold on `{host}` ({})", shown(&values)),
        ))
    }
}

/// `wait-until`: polls every `every_secs` until `that` holds or the step's timeout passes.
pub(crate) async fn wait_until(
    ctx: &Ctx<'_>,
    that: &Condition,
    every_secs: u64,
    defs: &[FactDef],
) -> Result<Outcome, ActionError> {
    let host = ctx.host();
    let deadline = Instant::now() + ctx.timeout;
    let every =
        Duration::from_secs(every_secs.max(1)).min(ctx.timeout.max(Duration::from_millis(1)));
    let mut polls = 0u32;
    loop {
        polls += 1;
        let (holds, values) = facts::check(ctx, that, defs).await?;
        if holds {
            return Ok(Outcome::Done {
                output: String::new(),
                exit_code: None,
                facts: fact_outs(ctx, &values),
                message: format!(
                    "`{that}` holds on `{host}` after {polls} poll(s) ({})",
                    shown(&values)
                ),
            });
        }
        if Instant::now() + every > deadline {
            return Err(ActionError::step_failed(
                host,
                format!(
                    "`{that}` still does not hold on `{host}` after {} s ({polls} polls; {})",
                    ctx.timeout.as_secs(),
                    shown(&values)
                ),
            ));
        }
        tokio::time::sleep(every).await;
    }
}

/// The probe of `wait-until`: done when the condition holds now.
pub(crate) async fn probe_condition(
    ctx: &Ctx<'_>,
    that: &Condition,
    defs: &[FactDef],
) -> Result<Probe, ActionError> {
    Ok(if facts::check(ctx, that, defs).await?.0 {
        Probe::Done
    } else {
        Probe::NotDone
    })
}
