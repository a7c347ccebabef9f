//! The generic steps an administrator writes: `command` (a cmd.exe line), `powershell` (a script
//! sent with `-EncodedCommand`), `wait-until` and `assert` (conditions over declared facts).
//! Judged by exit code and, for `expect`, by values read from the JSON the script prints:
//! never by localised text. A change with `unless` is skipped when the condition already holds,
//! and its probe reports it done on resume: that is what keeps an installer exactly-once.

use std::time::Duration;

use lockstep_core::{Condition, FactDef, FactValue, HaltClass, Judge};
use tokio::time::Instant;

use crate::facts::{self, json_fact, json_path, shown};
use crate::remote::joined;
use crate::{Ctx, FactOut, Outcome, Probe};
use lockstep_core::StepError;

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
) -> Result<Outcome, StepError> {
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
        return Err(StepError::step_failed(
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
                return Err(StepError::step_failed(
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
            return Err(StepError::step_failed(
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

/// The image a command line starts (`"C:\\x\\update.exe" /q` -> `update.exe`, `net stop` ->
/// `net.exe`), as `Win32_Process.Name` shows it.
pub fn image_of(command: &str) -> Option<String> {
    let c = command.trim_start();
    let first = match c.strip_prefix('"') {
        Some(rest) => rest.split('"').next()?,
        None => c.split_whitespace().next()?,
    };
    let file = first.rsplit(['\\', '/']).next()?.trim();
    if file.is_empty() {
        return None;
    }
    Some(if file.contains('.') {
        file.to_owned()
    } else {
        format!("{file}.exe")
    })
}

/// The probe of `command`/`powershell`: done when `unless` holds; in progress when the program
/// a `command` change starts is still running on the node (a controller killed mid-install must
/// not start the installer again: it waits for it); otherwise not done (a read-only step is
/// safe to run again; a change without `unless` runs again on resume).
pub(crate) async fn probe_run(
    ctx: &Ctx<'_>,
    text: &str,
    powershell: bool,
    judge: &Judge,
) -> Result<Probe, StepError> {
    if let Some(c) = &judge.unless {
        if facts::check(ctx, c, &judge.facts).await?.0 {
            return Ok(Probe::Done);
        }
    }
    if !powershell && !judge.read_only {
        if let Some(image) = image_of(text) {
            let running = ctx.node().processes().await?;
            if running.iter().any(|p| p.eq_ignore_ascii_case(&image)) {
                return Ok(Probe::InProgress);
            }
        }
    }
    Ok(Probe::NotDone)
}

/// `assert`.
pub(crate) async fn assert(
    ctx: &Ctx<'_>,
    that: &Condition,
    class: HaltClass,
    defs: &[FactDef],
) -> Result<Outcome, StepError> {
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
        Err(StepError::new(
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
) -> Result<Outcome, StepError> {
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
            return Err(StepError::step_failed(
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
) -> Result<Probe, StepError> {
    Ok(if facts::check(ctx, that, defs).await?.0 {
        Probe::Done
    } else {
        Probe::NotDone
    })
}

#[cfg(test)]
mod tests {
    use super::image_of;

    #[test]
    fn images_of_command_lines() {
        assert_eq!(
            image_of(r#""\\fs01\install$\sp2\update.exe" /q"#).as_deref(),
            Some("update.exe")
        );
        assert_eq!(
            image_of("wusa.exe \"C:\\x.msu\" /quiet").as_deref(),
            Some("wusa.exe")
        );
        assert_eq!(image_of("  net stop SNMP").as_deref(), Some("net.exe"));
        assert_eq!(image_of(""), None);
    }
}
