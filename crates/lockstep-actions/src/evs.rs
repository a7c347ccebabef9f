//! UpgradeVirtualServer, guarded by the preconditions of T2: the EVS group is
//! on a node at the service pack's build, the upgrade is started from a node at that build, the
//! System Attendant resource is offline, only IP Address / Network Name / Physical Disk
//! resources of the group are online, and a Distributed Transaction Coordinator resource is
//! online. "Upgrade Exchange Virtual Server" has no documented command line: without a
//! site-supplied command the step waits for the operator.

use lockstep_core::{Name, Version};

use crate::parse;
use crate::remote::{get_ci, joined, Node, Resource};
use crate::{Ctx, Outcome};
use lockstep_core::StepError;

fn is_online_or_pending(r: &Resource) -> bool {
    matches!(r.state, Some(s) if s == parse::RESOURCE_ONLINE || (129..=131).contains(&s))
}

/// Every T2 precondition that does not hold, one sentence each (empty: all hold).
///
/// The service pack's build is not part of the action: the reference is the newest build among
/// the cluster's nodes that answer (the node just upgraded), so "at the target build" reads "at
/// the newest build of the cluster".
pub(crate) async fn t2_failures(ctx: &Ctx<'_>, group: &Name) -> Result<Vec<String>, StepError> {
    let host = ctx.host();
    let node = ctx.node();
    let mut failures = Vec::new();

    let owners = node.owners().await?;
    let owner = get_ci(&owners, group.as_str()).cloned();
    let host_build = node.build().await?.build;
    let owner_build = match &owner {
        Some(o) if host.eq_ignore_case(o) => Some(host_build),
        Some(o) => match Name::host(o) {
            Ok(on) => Node::new(ctx.transport, &on)
                .build()
                .await
                .ok()
                .map(|b| b.build),
            Err(_) => None,
        },
        None => None,
    };
    let mut newest: Version = host_build;
    if let Some(b) = owner_build {
        newest = newest.max(b);
    }
    let cluster = ctx.cluster();
    if let Some(c) = cluster {
        for n in &c.nodes {
            if n.eq_ignore_case(host.as_str())
                || owner.as_deref().is_some_and(|o| n.eq_ignore_case(o))
            {
                continue;
            }
            if let Ok(b) = Node::new(ctx.transport, n).build().await {
                newest = newest.max(b.build);
            }
        }
    }
    match (&owner, owner_build) {
        (None, _) => failures.push(format!("group `{group}` is not owned by any node")),
        (Some(o), None) => failures.push(format!(
            "the build of `{o}`, which owns group `{group}`, could not be read"
        )),
        (Some(o), Some(b)) if b != newest => failures.push(format!(
            "group `{group}` is on `{o}` at build {b}, not on a node at the service pack's build {newest}"
        )),
        _ => {}
    }
    if host_build != newest {
        failures.push(format!(
            "the upgrade would be started from `{host}` at build {host_build}, not from a node at build {newest}"
        ));
    }

    let resources = node.group_resources(group).await?;
    let sa: Vec<&Resource> = resources
        .iter()
        .filter(|r| r.kind.to_ascii_lowercase().contains("system attendant"))
        .collect();
    if resources.is_empty() {
        failures.push(format!("group `{group}` has no resources on the cluster"));
    } else if sa.is_empty() {
        failures.push(format!("group `{group}` has no System Attendant resource"));
    }
    for r in &sa {
        if !r.is_offline() {
            failures.push(format!(
                "System Attendant resource `{}` is not offline (state {})",
                r.name,
                r.state
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "unknown".into())
            ));
        }
    }
    let extra: Vec<String> = resources
        .iter()
        .filter(|r| !r.is_core() && !r.kind.to_ascii_lowercase().contains("system attendant"))
        .filter(|r| is_online_or_pending(r))
        .map(|r| format!("`{}` ({})", r.name, r.kind))
        .collect();
    if !extra.is_empty() {
        failures.push(format!(
            "resources other than IP Address, Network Name and Physical Disk are online in group `{group}`: {}",
            extra.join(", ")
        ));
    }
    let dtc_online = node.all_resources().await?.iter().any(|r| {
        r.kind
            .eq_ignore_ascii_case("Distributed Transaction Coordinator")
            && r.is_online()
    });
    if !dtc_online {
        failures.push("no Distributed Transaction Coordinator resource is online".to_owned());
    }
    Ok(failures)
}

/// UpgradeVirtualServer: T2 first; then the operator step or the site-supplied command.
pub(crate) async fn upgrade(
    ctx: &Ctx<'_>,
    group: &Name,
    evs: &Name,
    command: Option<&str>,
) -> Result<Outcome, StepError> {
    let host = ctx.host();
    let failures = t2_failures(ctx, group).await?;
    if !failures.is_empty() {
        return Err(StepError::precondition(
            host,
            format!(
                "Exchange virtual server `{evs}` (group `{group}`) cannot be upgraded from `{host}`: {}",
                failures.join("; ")
            ),
        ));
    }
    let Some(command) = command else {
        return Ok(Outcome::Waiting {
            instructions: format!(
                "On `{host}`, open Cluster Administrator, right-click the System Attendant \
                 resource of group `{group}` and choose \"Upgrade Exchange Virtual Server\" \
                 ({}, virtual server `{evs}`). When it has succeeded, run \
                 `lockstep approve RUN {}` naming this step: the run checks that the virtual \
                 server reports `{host}`'s build before the next step brings its resources \
                 online.",
                ctx.step.rule, ctx.step.id
            ),
        });
    };
    let out = ctx.node().run(command, ctx.timeout).await?;
    let text = joined(&out);
    if out.exit_code == 0 {
        if let Some(why) = not_performed(ctx, group, evs).await? {
            return Err(StepError::step_failed(
                host,
                format!("the site's command for the EVS upgrade exited 0, but {why}"),
            )
            .with_output(text, Some(0)));
        }
        return Ok(Outcome::Done {
            output: text,
            exit_code: Some(0),
            facts: Vec::new(),
            message: format!(
                "Exchange virtual server `{evs}` (group `{group}`) upgraded on `{host}`"
            ),
        });
    }
    let mut message = format!(
        "upgrading Exchange virtual server `{evs}` (group `{group}`) on `{host}` failed (exit {})",
        out.exit_code
    );
    if text.to_ascii_lowercase().contains("c1037b44") {
        message.push_str(": the Exchange versions of the nodes do not match");
    } else if let Some(event) = ctx.node().exchange_event_1025().await {
        message.push_str(&t1_halt(host, &event));
    }
    Err(StepError::step_failed(host, message).with_output(text, Some(out.exit_code)))
}

/// The postcondition of the EVS upgrade: `Ok(None)` when virtual server `evs` reports the
/// Exchange build of the node the step runs on (Exchange's WMI provider, `ExchangeVersion`);
/// else why not, one sentence (with T1's cause and fix when the node's Application log has
/// event 1025). Checked after `lockstep approve RUN STEP` and after a site command, so that a
/// run never goes on to bring the resources online on an EVS that was not upgraded.
pub(crate) async fn not_performed(
    ctx: &Ctx<'_>,
    group: &Name,
    evs: &Name,
) -> Result<Option<String>, StepError> {
    let host = ctx.host();
    let node = ctx.node();
    let build = node.build().await?.build;
    let Some(text) = node.exchange_version_of(evs).await? else {
        return Ok(Some(format!(
            "Exchange virtual server `{evs}` (group `{group}`) is not listed by the Exchange WMI \
             provider of `{host}` (`Exchange_Server`), so its upgrade cannot be confirmed"
        )));
    };
    match crate::parse::exchange_version_build(&text) {
        Some((b, r)) if b == build.build && r == build.revision => Ok(None),
        Some(_) => {
            let mut why = format!(
                "Exchange virtual server `{evs}` (group `{group}`) still reports \"{text}\" \
                 while `{host}` is at build {build}: \"Upgrade Exchange Virtual Server\" has not \
                 been done"
            );
            if let Some(event) = node.exchange_event_1025().await {
                why.push_str(&t1_halt(host, &event));
            }
            Ok(Some(why))
        }
        None => Ok(Some(format!(
            "the version of Exchange virtual server `{evs}` reads \"{text}\", which names no build"
        ))),
    }
}

/// The "already done?" probe of the EVS upgrade: done when the virtual server reports the
/// node's build; anything unreadable counts as not done (the step checks T2 again first).
pub(crate) async fn probe(ctx: &Ctx<'_>, group: &Name, evs: &Name) -> crate::Probe {
    match not_performed(ctx, group, evs).await {
        Ok(None) => crate::Probe::Done,
        _ => crate::Probe::NotDone,
    }
}

/// The halt text of KB 328839 T1, after MSExchangeCluster event 1025 was read from `host`'s
/// Application log: the KB's cause and its fix (a resume alone does not help).
pub(crate) fn t1_halt(host: &Name, event: &str) -> String {
    format!(
        "; the Application log of `{host}` has MSExchangeCluster event 1025 (\"{event}\"): \
         KB 328839 T1, the node was evicted from the cluster and added again. Fix: run Exchange \
         Setup on `{host}` and choose Reinstall, then upgrade the virtual server \
         (\"Upgrade Exchange Virtual Server\") and `lockstep resume`"
    )
}
