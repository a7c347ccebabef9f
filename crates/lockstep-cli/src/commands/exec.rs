//! `lockstep exec`: one command on many hosts, at most `--forks` at once, through the run's
//! transport (credentials, code pages, connection limits); each host's exit code and output,
//! identical results grouped.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Duration;

use anyhow::Result;
use futures::stream::{self, StreamExt};
use lockstep_core::{CommandOutput, Fleet, Name, RunStatus, StateStore, Transport};
use serde_json::json;

use crate::args::{ExecArgs, Format};
use crate::exit::{BadInput, ExitStatus};
use crate::settings::Settings;
use crate::{inputs, wiring};

/// The longest command line cmd.exe accepts.
const CMD_MAX: usize = 8191;

fn bad(msg: String) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg))
}

/// The command line to send: the words after `--` joined by spaces, or the PowerShell script
/// encoded for `-EncodedCommand`.
pub fn command_line(args: &ExecArgs) -> Result<String> {
    let line = match &args.powershell {
        Some(script) => {
            if script.trim().is_empty() {
                return Err(bad("error: `--powershell`: the script is empty".into()));
            }
            lockstep_actions::render::powershell(script)
        }
        None => {
            let line = args.command.join(" ");
            if line.trim().is_empty() {
                return Err(bad("error: no command after `--`".into()));
            }
            if let Some(c) = line.chars().find(|c| c.is_control()) {
                return Err(bad(format!(
                    "error: the command holds the control character {:?}: one cmd.exe line only",
                    c
                )));
            }
            line
        }
    };
    if line.len() > CMD_MAX {
        return Err(bad(format!(
            "error: the command line is {} characters long; cmd.exe takes at most {CMD_MAX}{}",
            line.len(),
            if args.powershell.is_some() {
                " (a PowerShell script grows about 2.7 times when encoded)"
            } else {
                ""
            }
        )));
    }
    Ok(line)
}

/// Clusters of which the selection holds more than one node: cluster -> its selected nodes.
pub fn clusters_hit(fleet: &Fleet, hosts: &[Name]) -> BTreeMap<String, Vec<String>> {
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in hosts {
        if let Some(c) = fleet.host(h.as_str()).and_then(|h| h.cluster.as_ref()) {
            by.entry(c.to_string()).or_default().push(h.to_string());
        }
    }
    by.retain(|_, nodes| nodes.len() > 1);
    by
}

/// Hosts of `hosts` that a run being driven right now will touch (its plan's hosts and the
/// front-ends it reads), with the run and its controller. A run counts as driven while a live
/// controller holds it (its OS lock held, or its lease unexpired), probed without taking the run
/// or its lease from anyone.
fn held_hosts(store: &dyn StateStore, fleet: &Fleet, hosts: &[Name]) -> Result<Vec<String>> {
    let mut held = Vec::new();
    let leases = store.run_leases()?;
    for r in store.list_runs()? {
        if r.status != RunStatus::Running {
            continue;
        }
        let lease = leases.iter().find(|l| l.run == r.id && !l.expired);
        let driven = match store.run_driven(&r.id)? {
            Some(d) => d,
            None => lease.is_some(),
        };
        if !driven {
            continue; // nobody drives it: a dead controller's run
        }
        let holder = lease.map_or_else(|| "a live controller".to_owned(), |l| l.holder.clone());
        let record = store.load_run(&r.id)?;
        let touched = wiring::plan_hosts(&record.plan, fleet);
        for h in hosts {
            if touched.iter().any(|t| t.eq_ignore_case(h.as_str())) {
                held.push(format!("host `{h}` is held by run `{}` ({holder})", r.id));
            }
        }
    }
    Ok(held)
}

/// What one host gave back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum HostResult {
    /// The command ran to its end.
    Ran(i32, String, String),
    /// It could not be run (kind, why).
    Failed(&'static str, String),
}

/// `lockstep exec`.
pub async fn run(args: &ExecArgs, settings: &Settings) -> Result<ExitStatus> {
    let (fleet, _) = inputs::load_fleet(&args.spec.inventories)?;
    if args
        .spec
        .limit
        .as_deref()
        .is_none_or(|l| l.trim().is_empty())
    {
        return Err(bad(
            "error: `lockstep exec` needs `--limit` (hosts, groups, sites or clusters; `all` for every host)".into(),
        ));
    }
    let line = command_line(args)?;
    let hosts = crate::commands::facts::selected_hosts(&fleet, &args.spec, None)?;
    if !args.yes {
        let hit = clusters_hit(&fleet, &hosts);
        if !hit.is_empty() {
            let list: Vec<String> = hit
                .iter()
                .map(|(c, n)| format!("cluster `{c}`: {}", n.join(", ")))
                .collect();
            return Err(bad(format!(
                "error: the selection holds several nodes of one cluster ({}); a command on them at once could take the cluster's groups down. Narrow `--limit`, or pass `--yes` if the command is harmless",
                list.join("; ")
            )));
        }
    }
    let store = wiring::store(settings)?;
    let held = held_hosts(store.as_ref(), &fleet, &hosts)?;
    if !held.is_empty() {
        return Err(bad(format!(
            "error: a running rollout holds some of the selected hosts; nothing was run:\n  - {}",
            held.join("\n  - ")
        )));
    }
    // The hosts are leased for the command's duration, as a run leases its hosts: a run (or
    // another exec) starting meanwhile on one of them is refused, naming this controller.
    if let Some(status) = crate::commands::run::take_hosts(store.as_ref(), &hosts, None)? {
        return Ok(status);
    }
    // Released when exec ends, on every path (an error below included).
    let _leases = crate::commands::run::Leases(store.clone());
    let transport = wiring::transport(&fleet, &hosts, None, None, settings)?;
    let timeout = Duration::from_secs(args.timeout);
    tracing::info!(hosts = hosts.len(), forks = args.forks, command = %line, "exec");
    let t: &dyn Transport = transport.as_ref();
    let line_ref = line.as_str();
    let mut results: Vec<(usize, HostResult)> = stream::iter(hosts.iter().enumerate())
        .map(|(i, h)| async move {
            let r = match t.run(h, line_ref, timeout).await {
                Ok(CommandOutput {
                    stdout,
                    stderr,
                    exit_code,
                }) => {
                    tracing::info!(host = %h, exit_code, "exec finished");
                    HostResult::Ran(exit_code, stdout, stderr)
                }
                Err(e) => {
                    tracing::warn!(host = %h, error = %e, "exec failed");
                    let kind = lockstep_actions::UnreachableKind::of(&e).as_str();
                    HostResult::Failed(kind, e.to_string())
                }
            };
            (i, r)
        })
        .buffer_unordered(args.forks as usize)
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    let all_zero = results
        .iter()
        .all(|(_, r)| matches!(r, HostResult::Ran(0, _, _)));
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Text => out.write_all(render_text(&hosts, &results).as_bytes())?,
        Format::Json => {
            let v: Vec<serde_json::Value> = results
                .iter()
                .map(|(i, r)| match r {
                    HostResult::Ran(code, so, se) => json!({
                        "host": hosts[*i].as_str(), "exit_code": code, "stdout": so, "stderr": se,
                    }),
                    HostResult::Failed(kind, why) => json!({
                        "host": hosts[*i].as_str(), "exit_code": null,
                        "unreachable": { "kind": kind, "reason": why },
                    }),
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &v)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    let failed = results
        .iter()
        .filter(|(_, r)| !matches!(r, HostResult::Ran(0, _, _)))
        .count();
    let _ = writeln!(
        std::io::stderr(),
        "{} hosts: {} exit 0, {} not",
        results.len(),
        results.len() - failed,
        failed
    );
    Ok(if all_zero {
        ExitStatus::Success
    } else {
        ExitStatus::HostsFailed
    })
}

/// Hosts with identical results share one block: `HOST, HOST | exit 0` then the output.
fn render_text(hosts: &[Name], results: &[(usize, HostResult)]) -> String {
    let mut groups: Vec<(&HostResult, Vec<&str>)> = Vec::new();
    for (i, r) in results {
        match groups.iter_mut().find(|(g, _)| *g == r) {
            Some((_, hs)) => hs.push(hosts[*i].as_str()),
            None => groups.push((r, vec![hosts[*i].as_str()])),
        }
    }
    let mut out = String::new();
    for (r, hs) in groups {
        let names = hs.join(", ");
        match r {
            HostResult::Ran(code, so, se) => {
                out.push_str(&format!("{names} | exit {code}\n"));
                for (text, prefix) in [(so, ""), (se, "stderr: ")] {
                    for l in text.trim_end().lines() {
                        out.push_str(&format!("  {prefix}{l}\n"));
                    }
                }
            }
            HostResult::Failed(kind, why) => {
                out.push_str(&format!("{names} | UNREACHABLE ({kind})\n  {why}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_results_are_grouped_in_host_order() {
        let hosts: Vec<Name> = ["A", "B", "C", "D"]
            .iter()
            .map(|h| Name::host(h).unwrap())
            .collect();
        let ok = HostResult::Ran(0, "same\r\n".into(), String::new());
        let results = vec![
            (0, ok.clone()),
            (1, HostResult::Ran(1060, "other\n".into(), "err\n".into())),
            (2, ok),
            (
                3,
                HostResult::Failed("refused", "host `D` is unreachable".into()),
            ),
        ];
        assert_eq!(
            render_text(&hosts, &results),
            "A, C | exit 0\n  same\nB | exit 1060\n  other\n  stderr: err\nD | UNREACHABLE (refused)\n  host `D` is unreachable\n"
        );
    }
}
