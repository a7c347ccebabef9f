//! Cluster actions: move a group, evacuate a node (no group may stay on a node that is stopped
//! or updated), stop/start the node's Cluster service, take an EVS's resources offline except
//! IP Address / Physical Disk / Network Name, bring the group online and the failover test.
//! Which procedure step each serves is the playbook's `rule:`.
//!
//! cluster.exe is judged by its exit code (the Win32 code) and every state is read back through
//! WQL (`root/MSCluster`): cluster.exe's listings are localised and never parsed.

use lockstep_core::{CommandOutput, Name};

use crate::parse::{self, GROUP_ONLINE, SERVICE_RUNNING, SERVICE_STOPPED};
use crate::remote::{get_ci, joined, Node, Resource, ServiceState};
use crate::render;
use crate::services::{self, Change};
use crate::{Ctx, FactOut, Outcome, Probe};
use lockstep_core::StepError;

fn cluster_failed(host: &Name, what: String, out: &CommandOutput) -> StepError {
    StepError::step_failed(
        host,
        format!(
            "{what}: cluster.exe exit {}",
            parse::describe_exit(out.exit_code)
        ),
    )
    .with_output(joined(out), Some(out.exit_code))
}

fn append(output: &mut String, out: &CommandOutput) {
    let text = joined(out);
    if !text.trim().is_empty() {
        output.push_str(text.trim_end());
        output.push('\n');
    }
}

fn owner_fact(host: &Name, group: &str, owner: &str) -> FactOut {
    FactOut::new(host, format!("group.{group}.owner.before"), owner)
}

fn no_group(host: &Name, group: &Name) -> StepError {
    StepError::precondition(
        host,
        format!("group `{group}` is not owned by any node of the cluster seen from `{host}` (no such group?)"),
    )
}

/// MoveGroup: reads the owner (fact `group.<G>.owner.before`), moves unless already there,
/// checks the new owner through WQL.
pub(crate) async fn move_group(
    ctx: &Ctx<'_>,
    group: &Name,
    to: &Name,
) -> Result<Outcome, StepError> {
    let node = ctx.node();
    let host = ctx.host();
    let owners = node.owners().await?;
    let before = get_ci(&owners, group.as_str())
        .cloned()
        .ok_or_else(|| no_group(host, group))?;
    let facts = vec![owner_fact(host, group.as_str(), &before)];
    if to.eq_ignore_case(&before) {
        return Ok(Outcome::Done {
            output: String::new(),
            exit_code: None,
            facts,
            message: format!("group `{group}` is already on `{to}`"),
        });
    }
    let line = render::move_group(group, to);
    let out = node.run(&line, ctx.timeout).await?;
    if out.exit_code != 0 {
        return Err(cluster_failed(
            host,
            format!("moving group `{group}` from `{before}` to `{to}` failed"),
            &out,
        ));
    }
    let after = node.owners().await?;
    match get_ci(&after, group.as_str()) {
        Some(o) if to.eq_ignore_case(o) => Ok(Outcome::Done {
            output: joined(&out),
            exit_code: Some(0),
            facts,
            message: format!("group `{group}` moved from `{before}` to `{to}`"),
        }),
        other => Err(StepError::step_failed(
            host,
            format!(
                "group `{group}` is owned by `{}` after `{line}`, not `{to}`",
                other.map(String::as_str).unwrap_or("no node")
            ),
        )
        .with_output(joined(&out), Some(0))),
    }
}

/// MoveGroup probe: the group's owner is `to`.
pub(crate) async fn probe_owner(
    ctx: &Ctx<'_>,
    group: &Name,
    to: &Name,
) -> Result<Probe, StepError> {
    let owners = ctx.node().owners().await?;
    Ok(match get_ci(&owners, group.as_str()) {
        Some(o) if to.eq_ignore_case(o) => Probe::Done,
        _ => Probe::NotDone,
    })
}

fn owned_by<'m>(
    owners: &'m std::collections::BTreeMap<String, String>,
    node: &Name,
) -> Vec<&'m String> {
    owners
        .iter()
        .filter(|(_, o)| node.eq_ignore_case(o))
        .map(|(g, _)| g)
        .collect()
}

/// EvacuateNode (no EVS and not the cluster group may run on the node being
/// upgraded): every group `node` owns, read live, is moved to `to` one by one; the cluster
/// group goes last.
pub(crate) async fn evacuate(
    ctx: &Ctx<'_>,
    node_name: &Name,
    to: &Name,
) -> Result<Outcome, StepError> {
    let host = ctx.host();
    if node_name.eq_ignore_case(to.as_str()) {
        return Err(StepError::precondition(
            host,
            format!("cannot evacuate node `{node_name}` to itself"),
        ));
    }
    let node = ctx.node();
    let owners = node.owners().await?;
    let cluster_group = ctx.cluster().map(|c| c.cluster_group.as_str().to_owned());
    let mut groups: Vec<&String> = owned_by(&owners, node_name);
    // The cluster group last: the EVSs leave first, the quorum moves once nothing else is left.
    groups.sort_by_key(|g| {
        cluster_group
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case(g))
    });
    let mut facts = Vec::new();
    let mut output = String::new();
    let mut moved = Vec::new();
    for g in &groups {
        let name = Name::object(g).map_err(|e| {
            StepError::step_failed(
                host,
                format!("group name read from the cluster is refused: {e}"),
            )
        })?;
        facts.push(owner_fact(host, g, node_name.as_str()));
        let out = node
            .run(&render::move_group(&name, to), ctx.timeout)
            .await?;
        append(&mut output, &out);
        if out.exit_code != 0 {
            return Err(cluster_failed(
                host,
                format!(
                    "moving group `{g}` from `{node_name}` to `{to}` failed ({} of {} groups moved)",
                    moved.len(),
                    groups.len()
                ),
                &out,
            ));
        }
        moved.push(format!("`{g}`"));
    }
    let after = node.owners().await?;
    let left = owned_by(&after, node_name);
    if !left.is_empty() {
        let left: Vec<String> = left.iter().map(|g| format!("`{g}`")).collect();
        return Err(StepError::step_failed(
            host,
            format!(
                "node `{node_name}` still owns {} after the moves to `{to}`",
                left.join(", ")
            ),
        )
        .with_output(output, None));
    }
    let message = if moved.is_empty() {
        format!("node `{node_name}` owns no group")
    } else {
        format!("moved {} from `{node_name}` to `{to}`", moved.join(", "))
    };
    Ok(Outcome::Done {
        output,
        exit_code: (!moved.is_empty()).then_some(0),
        facts,
        message,
    })
}

/// EvacuateNode probe: the node owns no group.
pub(crate) async fn probe_evacuated(ctx: &Ctx<'_>, node_name: &Name) -> Result<Probe, StepError> {
    let owners = ctx.node().owners().await?;
    Ok(if owned_by(&owners, node_name).is_empty() {
        Probe::Done
    } else {
        Probe::NotDone
    })
}

async fn clussvc(ctx: &Ctx<'_>, running: bool) -> Result<Outcome, StepError> {
    let host = ctx.host();
    let (change, want) = if running {
        (render::NET_START_CLUSSVC, SERVICE_RUNNING)
    } else {
        (render::NET_STOP_CLUSSVC, SERVICE_STOPPED)
    };
    let r = services::ensure(
        &ctx.node(),
        "ClusSvc",
        render::SC_QUERY_CLUSSVC,
        change,
        want,
        ctx.timeout,
        ctx.reboot_poll,
    )
    .await
    .map_err(|mut e| {
        if running {
            e.message = format!(
                "the Cluster service of `{host}` failed to start: {}",
                e.message
            );
        }
        e
    })?;
    let word = if running { "running" } else { "stopped" };
    match r {
        Change::Missing => Err(StepError::precondition(
            host,
            format!("host `{host}` has no Cluster service (`ClusSvc` is not installed)"),
        )),
        Change::Already => Ok(Outcome::done(format!(
            "the Cluster service of `{host}` was already {word}"
        ))),
        Change::Changed { output, exit_code } => Ok(Outcome::Done {
            output,
            exit_code: Some(exit_code),
            facts: Vec::new(),
            message: format!("the Cluster service of `{host}` is {word}"),
        }),
    }
}

/// StopClusterService: `net stop clussvc` on the node itself.
pub(crate) async fn stop_clussvc(ctx: &Ctx<'_>) -> Result<Outcome, StepError> {
    clussvc(ctx, false).await
}

/// StartClusterService: `net start clussvc` on the node itself; not RUNNING afterwards is a
/// StepFailed.
pub(crate) async fn start_clussvc(ctx: &Ctx<'_>) -> Result<Outcome, StepError> {
    clussvc(ctx, true).await
}

/// Cluster service probe: `sc query clussvc` state 4 (running) or 1 (stopped).
pub(crate) async fn probe_clussvc(ctx: &Ctx<'_>, running: bool) -> Result<Probe, StepError> {
    let want = if running {
        SERVICE_RUNNING
    } else {
        SERVICE_STOPPED
    };
    Ok(
        match ctx.node().service_state(render::SC_QUERY_CLUSSVC).await? {
            ServiceState::State(s) if s == want => Probe::Done,
            ServiceState::State(parse::SERVICE_START_PENDING) if running => Probe::InProgress,
            ServiceState::State(parse::SERVICE_STOP_PENDING) if !running => Probe::InProgress,
            _ => Probe::NotDone,
        },
    )
}

/// The order resources are taken offline: protocol and other resources first, then the
/// Information Store, MTA and Routing, System Attendant last (it is what the others depend on).
fn offline_rank(r: &Resource) -> u8 {
    let k = r.kind.to_ascii_lowercase();
    if k.contains("system attendant") {
        2
    } else if k.contains("information store")
        || k.contains("message transfer agent")
        || k.contains("routing service")
    {
        1
    } else {
        0
    }
}

fn to_offline(resources: &[Resource]) -> Vec<Resource> {
    let mut v: Vec<Resource> = resources.iter().filter(|r| !r.is_core()).cloned().collect();
    v.sort_by_key(offline_rank);
    v
}

async fn evs_resources(node: &Node<'_>, group: &Name) -> Result<Vec<Resource>, StepError> {
    let resources = node.group_resources(group).await?;
    if resources.is_empty() {
        return Err(StepError::precondition(
            node.host,
            format!(
                "group `{group}` has no resources on the cluster seen from `{}` (no such group?)",
                node.host
            ),
        ));
    }
    Ok(resources)
}

/// EvsResourcesOffline: every resource of the group whose type is not IP Address,
/// Physical Disk or Network Name, one by one, System Attendant last.
pub(crate) async fn evs_offline(ctx: &Ctx<'_>, group: &Name) -> Result<Outcome, StepError> {
    let host = ctx.host();
    let node = ctx.node();
    let resources = evs_resources(&node, group).await?;
    let mut output = String::new();
    let mut taken = Vec::new();
    for r in to_offline(&resources) {
        if r.is_offline() {
            continue;
        }
        let name = Name::object(&r.name).map_err(|e| {
            StepError::step_failed(
                host,
                format!("resource name read from the cluster is refused: {e}"),
            )
        })?;
        let out = node
            .run(&render::resource_offline(&name), ctx.timeout)
            .await?;
        append(&mut output, &out);
        if out.exit_code != 0 {
            return Err(cluster_failed(
                host,
                format!(
                    "taking resource `{}` of group `{group}` offline failed",
                    r.name
                ),
                &out,
            ));
        }
        taken.push(format!("`{}`", r.name));
    }
    let after = evs_resources(&node, group).await?;
    let still: Vec<String> = to_offline(&after)
        .iter()
        .filter(|r| !r.is_offline())
        .map(|r| format!("`{}`", r.name))
        .collect();
    if !still.is_empty() {
        return Err(StepError::step_failed(
            host,
            format!(
                "resources of group `{group}` are not offline after the commands: {}",
                still.join(", ")
            ),
        )
        .with_output(output, None));
    }
    let message = if taken.is_empty() {
        format!("every resource of `{group}` but IP Address, Physical Disk and Network Name was already offline")
    } else {
        format!(
            "took {} of `{group}` offline; IP Address, Physical Disk and Network Name stay online",
            taken.join(", ")
        )
    };
    Ok(Outcome::Done {
        output,
        exit_code: (!taken.is_empty()).then_some(0),
        facts: Vec::new(),
        message,
    })
}

/// EvsResourcesOffline probe: every non-core resource of the group is offline.
pub(crate) async fn probe_evs_offline(ctx: &Ctx<'_>, group: &Name) -> Result<Probe, StepError> {
    let resources = ctx.node().group_resources(group).await?;
    if resources.is_empty() {
        return Ok(Probe::NotDone);
    }
    let targets = to_offline(&resources);
    Ok(if targets.iter().all(Resource::is_offline) {
        Probe::Done
    } else if targets
        .iter()
        .all(|r| r.is_offline() || r.state == Some(parse::RESOURCE_OFFLINE_PENDING))
    {
        Probe::InProgress
    } else {
        Probe::NotDone
    })
}

/// EvsResourcesOnline: `cluster group "G" /online`, then group state 0.
pub(crate) async fn evs_online(ctx: &Ctx<'_>, group: &Name) -> Result<Outcome, StepError> {
    let host = ctx.host();
    let node = ctx.node();
    if node.group_state(group).await? == Some(GROUP_ONLINE) {
        return Ok(Outcome::done(format!("group `{group}` is already online")));
    }
    let out = node.run(&render::group_online(group), ctx.timeout).await?;
    if out.exit_code != 0 {
        let mut e = cluster_failed(
            host,
            format!("bringing group `{group}` online on `{host}` failed"),
            &out,
        );
        if out.exit_code == 5038 {
            match node.exchange_event_1025().await {
                Some(event) => e.message.push_str(&crate::evs::t1_halt(host, &event)),
                None => e.message.push_str(
                    "; a resource failed and the Application log of this node has no \
                     MSExchangeCluster event 1025: this node is at an older build than the \
                     virtual server, which comes online only on a node at or above its build",
                ),
            }
        }
        return Err(e);
    }
    match node.group_state(group).await? {
        Some(GROUP_ONLINE) => Ok(Outcome::Done {
            output: joined(&out),
            exit_code: Some(0),
            facts: Vec::new(),
            message: format!("group `{group}` is online on `{host}`"),
        }),
        s => Err(StepError::step_failed(
            host,
            format!(
                "group `{group}` is not online after `{}` (state {})",
                render::group_online(group),
                s.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into())
            ),
        )
        .with_output(joined(&out), Some(0))),
    }
}

/// EvsResourcesOnline probe: group state 0 (online).
pub(crate) async fn probe_group_online(ctx: &Ctx<'_>, group: &Name) -> Result<Probe, StepError> {
    Ok(match ctx.node().group_state(group).await? {
        Some(GROUP_ONLINE) => Probe::Done,
        Some(parse::GROUP_PENDING) => Probe::InProgress,
        _ => Probe::NotDone,
    })
}

/// FailoverTest: move the group to each node in order and check it is online
/// there (WQL group state 0, owner = that node); ends on the last node.
pub(crate) async fn failover_test(
    ctx: &Ctx<'_>,
    group: &Name,
    nodes: &[Name],
) -> Result<Outcome, StepError> {
    let host = ctx.host();
    if nodes.is_empty() {
        return Err(StepError::precondition(
            host,
            format!("failover test of group `{group}` has no node to visit"),
        ));
    }
    let node = ctx.node();
    let mut output = String::new();
    let mut visited = Vec::new();
    for n in nodes {
        let owners = node.owners().await?;
        let owner = get_ci(&owners, group.as_str()).ok_or_else(|| no_group(host, group))?;
        if !n.eq_ignore_case(owner) {
            let out = node.run(&render::move_group(group, n), ctx.timeout).await?;
            append(&mut output, &out);
            if out.exit_code != 0 {
                return Err(cluster_failed(
                    host,
                    format!("group `{group}` did not fail over to `{n}`"),
                    &out,
                ));
            }
        }
        let owners = node.owners().await?;
        let state = node.group_state(group).await?;
        let owner = get_ci(&owners, group.as_str());
        if !(owner.is_some_and(|o| n.eq_ignore_case(o)) && state == Some(GROUP_ONLINE)) {
            return Err(StepError::step_failed(
                host,
                format!(
                    "group `{group}` is not online on `{n}` after failing over (owner `{}`, state {})",
                    owner.map(String::as_str).unwrap_or("none"),
                    state.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into())
                ),
            )
            .with_output(output, None));
        }
        visited.push(format!("`{n}`"));
    }
    Ok(Outcome::Done {
        output,
        exit_code: Some(0),
        facts: Vec::new(),
        message: format!(
            "group `{group}` came online on {} in turn",
            visited.join(", ")
        ),
    })
}
