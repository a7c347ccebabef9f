//! The cmdlets of the lab's PowerShell subset, evaluated over the node's state (the language
//! itself is in `powershell.rs`; the list is in `docs/lab-powershell.md`).

use super::cmdline::CmdLine;
use super::config::StartType;
use super::powershell::{
    self, error_record, eval, format_default, is_param, not_found, Arg, Command, Cond, Expr, Val,
};
use super::state::{NodeState, Out, State};
use super::world::Action;
use crate::record::RecordEvent;

/// What a cmdlet did: its output objects, or the error record it wrote.
type Res = Result<Vec<Val>, String>;

const FC_MODULE: &str = "Microsoft.FailoverClusters.PowerShell";

impl State {
    /// `powershell.exe [-NoProfile] [-NonInteractive] [-ExecutionPolicy P] -EncodedCommand B64`
    /// (or `-Command TEXT`): runs the script and answers with PowerShell's exit code (1 when the
    /// last statement failed, or `exit N`).
    pub(crate) fn cmd_powershell(&mut self, h: usize, cl: &CmdLine) -> Action {
        if !self.hosts[h].windows.uses_msu() {
            // No Windows PowerShell before Server 2008: cmd does not know the program.
            let line = cl.words.join(" ");
            return Action::Done(self.not_recognized(h, &line));
        }
        let args = cl.args();
        let mut script = None;
        let mut i = 0;
        while i < args.len() {
            let a = args[i].trim_start_matches(['-', '/']);
            if is_param(a, "EncodedCommand") || a.eq_ignore_ascii_case("ec") {
                script = Some(match args.get(i + 1).map(|b| powershell::decode(b)) {
                    Some(Ok(s)) => s,
                    Some(Err(e)) => return Action::Done(Out::err(1, format!("{e}\r\n"))),
                    None => {
                        return Action::Done(Out::err(
                            1,
                            "Missing parameter for -EncodedCommand.\r\n",
                        ))
                    }
                });
                break;
            }
            if is_param(a, "Command") {
                script = Some(args[i + 1..].join(" "));
                break;
            }
            if is_param(a, "ExecutionPolicy") && a.len() >= 2
                || is_param(a, "InputFormat") && a.len() >= 2
                || is_param(a, "OutputFormat") && a.len() >= 2
            {
                i += 1;
            }
            i += 1;
        }
        let Some(script) = script else {
            return Action::Done(Out::err(
                1,
                "The lab's powershell.exe runs -EncodedCommand or -Command only (no interactive console).\r\n",
            ));
        };
        self.run_script(h, &script)
    }

    fn run_script(&mut self, h: usize, script: &str) -> Action {
        let statements = match powershell::parse(script) {
            Ok(s) => s,
            Err(e) => {
                return Action::Done(Out::err(
                    1,
                    format!(
                        "At line:1 char:1\r\n+ {}\r\n{}\r\n    + CategoryInfo          : ParserError: (:) [], ParentContainsErrorRecordException\r\n    + FullyQualifiedErrorId : ParseError\r\n \r\n",
                        script.lines().next().unwrap_or(""),
                        e.0
                    ),
                ))
            }
        };
        let mut out = Out::ok("");
        let mut failed = false;
        let mut restart = false;
        for pipeline in &statements {
            let first = &pipeline[0];
            if first.name.eq_ignore_ascii_case("exit") {
                let code = first
                    .positional()
                    .first()
                    .map(|e| eval(e, &Val::Null).text())
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                out.code = code;
                return self.finish(h, out, restart);
            }
            let mut items: Vec<Val> = Vec::new();
            let mut text: Option<Vec<String>> = None;
            failed = false;
            for cmd in pipeline {
                if cmd.name.eq_ignore_ascii_case("Restart-Computer") {
                    restart = true;
                    continue;
                }
                match self.cmdlet(h, cmd, items) {
                    Ok(Step::Items(v)) => items = v,
                    Ok(Step::Text(t)) => {
                        text = Some(t);
                        items = Vec::new();
                    }
                    Err(record) => {
                        out.stderr.push_str(&record);
                        failed = true;
                        items = Vec::new();
                        break;
                    }
                }
            }
            match text {
                Some(lines) => {
                    for l in lines {
                        out.stdout.push_str(&l);
                        out.stdout.push_str("\r\n");
                    }
                }
                None => out.stdout.push_str(&format_default(&items)),
            }
        }
        out.code = i32::from(failed);
        self.finish(h, out, restart)
    }

    fn finish(&mut self, h: usize, out: Out, restart: bool) -> Action {
        if restart {
            return self.cmd_shutdown(h, &["/r".to_owned()]);
        }
        Action::Done(out)
    }

    fn cmdlet(&mut self, h: usize, cmd: &Command, input: Vec<Val>) -> Result<Step, String> {
        let name = cmd.name.to_ascii_lowercase();
        let items = match name.as_str() {
            "get-clusternode" => self.ps_nodes(h, cmd)?,
            "get-clustergroup" => self.ps_groups(h, cmd)?,
            "move-clustergroup" => self.ps_move(h, cmd)?,
            "suspend-clusternode" => self.ps_suspend(h, cmd)?,
            "resume-clusternode" => self.ps_resume(h, cmd)?,
            "get-service" => self.ps_services(h, cmd)?,
            "stop-service" | "start-service" => self.ps_service_control(h, cmd, &name)?,
            "get-itemproperty" => self.ps_item_property(h, cmd)?,
            "get-hotfix" => self.ps_hotfix(h, cmd)?,
            "get-ciminstance" | "get-wmiobject" => self.ps_cim(h, cmd)?,
            "select-object" => select(cmd, input),
            "where-object" => where_(cmd, input),
            "measure-object" => vec![measure(cmd, &input)],
            "write-output" | "echo" => cmd
                .positional()
                .iter()
                .map(|e| eval(e, &Val::Null))
                .chain(input)
                .collect(),
            "convertto-json" => {
                let compress = cmd.switch("Compress");
                let v = match input.len() {
                    0 => return Ok(Step::Text(Vec::new())),
                    1 => input.into_iter().next().unwrap_or(Val::Null),
                    _ => Val::Arr(input),
                };
                return Ok(Step::Text(vec![v.json(compress)]));
            }
            _ => return Err(not_found(cmd)),
        };
        Ok(Step::Items(items))
    }

    /// The cluster of node `h`, if the FailoverClusters module is there and the Cluster service
    /// answers; the error record otherwise.
    fn ps_cluster(&self, h: usize, cmd: &Command) -> Result<usize, String> {
        let c = match self.hosts[h].cluster {
            Some(c) if self.hosts[h].windows.has_cluster_cmdlets() => c,
            _ => return Err(not_found(cmd)),
        };
        if !self.clussvc_running(h) {
            return Err(error_record(
                cmd,
                "The cluster service is not running.  Make sure that the service is running on all nodes in the cluster.",
                &format!("ConnectionError: (:) [{}], ClusterCmdletException", cmd.name),
                &format!("ClusterServiceNotRunning,{FC_MODULE}.{}", cmd.name.replace('-', "")),
            ));
        }
        Ok(c)
    }

    fn node_obj(&self, c: usize, n: usize) -> Val {
        let state = self.node_state(n);
        let drained = self.hosts[n].paused && !self.hosts[n].drained.is_empty();
        Val::Obj(vec![
            ("Name".into(), Val::Str(self.hosts[n].name.clone())),
            (
                "Id".into(),
                Val::Str(
                    (self.clusters[c]
                        .nodes
                        .iter()
                        .position(|&x| x == n)
                        .unwrap_or(0)
                        + 1)
                    .to_string(),
                ),
            ),
            ("State".into(), Val::Int(state as i64)),
            ("DrainStatus".into(), Val::Int(if drained { 2 } else { 0 })),
            ("NodeWeight".into(), Val::Int(1)),
            ("Cluster".into(), Val::Str(self.clusters[c].name.clone())),
        ])
    }

    fn group_obj(&self, c: usize, g: usize) -> Val {
        let grp = &self.clusters[c].groups[g];
        // FailoverClusters' GroupType: Cluster 1, FileServer 100, GenericService 108, Unknown 9999.
        let group_type = match grp.kind {
            None => 1,
            Some(lockstep_core::GroupKind::FileServer) => 100,
            Some(lockstep_core::GroupKind::Generic) => 108,
            Some(_) => 9999,
        };
        Val::Obj(vec![
            ("Name".into(), Val::Str(grp.name.clone())),
            (
                "OwnerNode".into(),
                Val::Str(self.hosts[grp.owner].name.clone()),
            ),
            ("State".into(), Val::Int(grp.state() as i64)),
            ("GroupType".into(), Val::Int(group_type)),
            ("Cluster".into(), Val::Str(self.clusters[c].name.clone())),
        ])
    }

    /// The node named by `-Name` or the first positional argument; `h` itself when neither.
    fn ps_target_node(&self, h: usize, c: usize, cmd: &Command) -> Result<usize, String> {
        let Some(name) = arg_text(cmd, "Name", 0) else {
            return Ok(h);
        };
        self.find(&name)
            .filter(|&n| self.hosts[n].cluster == Some(c))
            .ok_or_else(|| {
                error_record(
                    cmd,
                    &format!("The node '{name}' does not exist in the cluster."),
                    &format!(
                        "ObjectNotFound: ({name}:String) [{}], ClusterCmdletException",
                        cmd.name
                    ),
                    &format!("InvalidOperation,{FC_MODULE}.{}", cmd.name.replace('-', "")),
                )
            })
    }

    fn ps_nodes(&self, h: usize, cmd: &Command) -> Res {
        let c = self.ps_cluster(h, cmd)?;
        match arg_text(cmd, "Name", 0) {
            Some(_) => {
                let n = self.ps_target_node(h, c, cmd)?;
                Ok(vec![self.node_obj(c, n)])
            }
            None => Ok(self.clusters[c]
                .nodes
                .iter()
                .map(|&n| self.node_obj(c, n))
                .collect()),
        }
    }

    fn ps_group_index(&self, c: usize, cmd: &Command) -> Result<Option<usize>, String> {
        let Some(name) = arg_text(cmd, "Name", 0) else {
            return Ok(None);
        };
        self.find_group(c, &name).map(Some).ok_or_else(|| {
            error_record(
                cmd,
                &format!("The resource group '{name}' does not exist in the cluster."),
                &format!(
                    "ObjectNotFound: ({name}:String) [{}], ClusterCmdletException",
                    cmd.name
                ),
                &format!("InvalidOperation,{FC_MODULE}.{}", cmd.name.replace('-', "")),
            )
        })
    }

    fn ps_groups(&self, h: usize, cmd: &Command) -> Res {
        let c = self.ps_cluster(h, cmd)?;
        Ok(match self.ps_group_index(c, cmd)? {
            Some(g) => vec![self.group_obj(c, g)],
            None => (0..self.clusters[c].groups.len())
                .map(|g| self.group_obj(c, g))
                .collect(),
        })
    }

    fn ps_move(&mut self, h: usize, cmd: &Command) -> Res {
        let c = self.ps_cluster(h, cmd)?;
        let Some(g) = self.ps_group_index(c, cmd)? else {
            return Err(error_record(
                cmd,
                "Cannot process command because of one or more missing mandatory parameters: Name.",
                &format!(
                    "InvalidArgument: (:) [{}], ParameterBindingException",
                    cmd.name
                ),
                "MissingMandatoryParameter",
            ));
        };
        let owner = self.clusters[c].groups[g].owner;
        let dest = match arg_text(cmd, "Node", 1) {
            Some(n) => self.find(&n).filter(|&i| self.hosts[i].cluster == Some(c)),
            None => self.clusters[c]
                .nodes
                .iter()
                .copied()
                .find(|&n| n != owner && self.node_state(n) == NodeState::Up),
        };
        let Some(dest) = dest.filter(|&d| self.node_state(d) == NodeState::Up) else {
            return Err(self.ps_move_failed(cmd, c, g));
        };
        if dest != owner && self.relocate(c, g, dest, "move").is_err() {
            return Err(self.ps_move_failed(cmd, c, g));
        }
        Ok(vec![self.group_obj(c, g)])
    }

    fn ps_move_failed(&self, cmd: &Command, c: usize, g: usize) -> String {
        let name = &self.clusters[c].groups[g].name;
        error_record(
            cmd,
            &format!("An error occurred while moving the clustered role '{name}'.\r\n    The operation failed because either the specified cluster node is not the owner of the group, or the node is not a possible owner of the group"),
            &format!("NotSpecified: (:) [{}], ClusterCmdletException", cmd.name),
            &format!("Move-ClusterGroup,{FC_MODULE}.MoveClusterGroupCommand"),
        )
    }

    /// Suspends or resumes cluster node `n`, recording the change (`node-paused`).
    pub(crate) fn set_paused(&mut self, n: usize, paused: bool) {
        if self.hosts[n].paused != paused {
            self.hosts[n].paused = paused;
            self.record(Some(n), RecordEvent::NodePaused { paused });
        }
    }

    fn ps_suspend(&mut self, h: usize, cmd: &Command) -> Res {
        let c = self.ps_cluster(h, cmd)?;
        let n = self.ps_target_node(h, c, cmd)?;
        if self.node_state(n) == NodeState::Down {
            return Err(error_record(
                cmd,
                &format!("The node '{}' is down.", self.hosts[n].name),
                &format!(
                    "InvalidOperation: (:) [{}], ClusterCmdletException",
                    cmd.name
                ),
                &format!("SuspendClusterNode,{FC_MODULE}.SuspendClusterNodeCommand"),
            ));
        }
        if cmd.switch("Drain") {
            // Drain: every group the node owns moves to an up, unpaused node first.
            self.set_paused(n, true);
            let owned: Vec<usize> = (0..self.clusters[c].groups.len())
                .filter(|&g| self.clusters[c].groups[g].owner == n)
                .collect();
            let mut drained = Vec::new();
            for g in owned {
                let dest = self.clusters[c]
                    .nodes
                    .iter()
                    .copied()
                    .find(|&x| x != n && self.node_state(x) == NodeState::Up);
                match dest.map(|d| self.relocate(c, g, d, "drain")) {
                    Some(Ok(())) => drained.push(self.clusters[c].groups[g].name.clone()),
                    _ => {
                        let name = self.clusters[c].groups[g].name.clone();
                        self.hosts[n].drained = drained;
                        return Err(error_record(
                            cmd,
                            &format!("The drain of node '{}' failed: the clustered role '{name}' could not be moved.", self.hosts[n].name),
                            &format!("OperationStopped: (:) [{}], ClusterCmdletException", cmd.name),
                            &format!("SuspendClusterNode,{FC_MODULE}.SuspendClusterNodeCommand"),
                        ));
                    }
                }
            }
            self.hosts[n].drained = drained;
        } else {
            self.set_paused(n, true);
        }
        Ok(vec![self.node_obj(c, n)])
    }

    fn ps_resume(&mut self, h: usize, cmd: &Command) -> Res {
        let c = self.ps_cluster(h, cmd)?;
        let n = self.ps_target_node(h, c, cmd)?;
        let failback = arg_text(cmd, "Failback", usize::MAX).unwrap_or_default();
        if !failback.is_empty()
            && !["immediate", "nofailback", "policy"]
                .contains(&failback.to_ascii_lowercase().as_str())
        {
            return Err(error_record(
                cmd,
                &format!("Cannot bind parameter 'Failback'. Cannot convert value \"{failback}\" to type \"Microsoft.FailoverClusters.PowerShell.ResumeClusterNodeFailbackType\". Error: \"Unable to match the identifier name {failback} to a valid enumerator name. Specify one of the following enumerator names and try again:\r\nNoFailback, Immediate, Policy\""),
                &format!("InvalidArgument: (:) [{}], ParameterBindingException", cmd.name),
                &format!("CannotConvertArgumentNoMessage,{FC_MODULE}.ResumeClusterNodeCommand"),
            ));
        }
        self.set_paused(n, false);
        let drained = std::mem::take(&mut self.hosts[n].drained);
        if failback.eq_ignore_ascii_case("immediate") && self.node_state(n) == NodeState::Up {
            for name in drained {
                if let Some(g) = self.find_group(c, &name) {
                    if self.clusters[c].groups[g].owner != n {
                        // A group that cannot come back stays where it runs (as the cluster does).
                        let _ = self.relocate(c, g, n, "failback");
                    }
                }
            }
        }
        Ok(vec![self.node_obj(c, n)])
    }

    fn ps_services(&self, h: usize, cmd: &Command) -> Res {
        let node = &self.hosts[h];
        let obj = |s: &super::state::Service| {
            Val::Obj(vec![
                ("Name".into(), Val::Str(s.name.clone())),
                ("DisplayName".into(), Val::Str(s.display.clone())),
                // ServiceControllerStatus: Stopped 1, Running 4; ServiceStartMode: 2, 3, 4.
                (
                    "Status".into(),
                    Val::Int(if self.service_running(h, s) { 4 } else { 1 }),
                ),
                (
                    "StartType".into(),
                    Val::Int(match s.start {
                        StartType::Auto => 2,
                        StartType::Manual => 3,
                        StartType::Disabled => 4,
                    }),
                ),
            ])
        };
        let Some(names) = arg_list(cmd, "Name", 0) else {
            return Ok(node.services.iter().map(obj).collect());
        };
        let mut out = Vec::new();
        for n in names {
            let found: Vec<Val> = node
                .services
                .iter()
                .filter(|s| powershell_like(&s.name, &n) || powershell_like(&s.display, &n))
                .map(obj)
                .collect();
            if found.is_empty() && !n.contains(['*', '?']) {
                return Err(error_record(
                    cmd,
                    &format!("Cannot find any service with service name '{n}'."),
                    &format!("ObjectNotFound: ({n}:String) [Get-Service], ServiceCommandException"),
                    "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand",
                ));
            }
            out.extend(found);
        }
        Ok(out)
    }

    fn ps_service_control(&mut self, h: usize, cmd: &Command, verb: &str) -> Res {
        let Some(names) = arg_list(cmd, "Name", 0) else {
            return Err(error_record(
                cmd,
                "Cannot process command because of one or more missing mandatory parameters: Name.",
                &format!(
                    "InvalidArgument: (:) [{}], ParameterBindingException",
                    cmd.name
                ),
                "MissingMandatoryParameter",
            ));
        };
        let start = verb == "start-service";
        for n in names {
            if !self.hosts[h]
                .services
                .iter()
                .any(|s| s.name.eq_ignore_ascii_case(&n))
            {
                return Err(error_record(
                    cmd,
                    &format!("Cannot find any service with service name '{n}'."),
                    &format!(
                        "ObjectNotFound: ({n}:String) [{}], ServiceCommandException",
                        cmd.name
                    ),
                    &format!(
                        "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.{}ServiceCommand",
                        if start { "Start" } else { "Stop" }
                    ),
                ));
            }
            let r = self.cmd_net(
                h,
                &[if start { "start" } else { "stop" }.to_owned(), n.clone()],
            );
            // `net` says "already started/stopped" with 2; PowerShell is silent about it.
            if r.code != 0 && r.code != 2 {
                let why = r.stderr.trim().lines().next().unwrap_or("").to_owned();
                return Err(error_record(
                    cmd,
                    &format!(
                        "Service '{n} ({n})' cannot be {} due to the following error: {why}",
                        if start { "started" } else { "stopped" }
                    ),
                    &format!("OpenError: (System.ServiceProcess.ServiceController:ServiceController) [{}], ServiceCommandException", cmd.name),
                    &format!(
                        "Could{}Service,Microsoft.PowerShell.Commands.{}ServiceCommand",
                        if start { "NotStart" } else { "NotStop" },
                        if start { "Start" } else { "Stop" }
                    ),
                ));
            }
        }
        Ok(Vec::new())
    }

    fn ps_item_property(&self, h: usize, cmd: &Command) -> Res {
        let path = arg_text(cmd, "Path", 0).unwrap_or_default();
        let key = path
            .strip_prefix("Registry::")
            .unwrap_or(&path)
            .replacen("HKLM:", "HKLM", 1)
            .replacen("hklm:", "HKLM", 1);
        let missing = || {
            error_record(
                cmd,
                &format!("Cannot find path '{path}' because it does not exist."),
                &format!(
                    "ObjectNotFound: ({path}:String) [Get-ItemProperty], ItemNotFoundException"
                ),
                "PathNotFound,Microsoft.PowerShell.Commands.GetItemPropertyCommand",
            )
        };
        let Some((full, values)) = self.reg_key(h, &key) else {
            return Err(missing());
        };
        let want = arg_list(cmd, "Name", 1);
        let mut props: Vec<(String, Val)> = Vec::new();
        for (n, ty, data) in values {
            if want
                .as_ref()
                .is_some_and(|w| !w.iter().any(|x| x.eq_ignore_ascii_case(&n)))
            {
                continue;
            }
            let v = match ty {
                "REG_DWORD" => Val::Int(
                    i64::from_str_radix(data.trim_start_matches("0x"), 16).unwrap_or_default(),
                ),
                "REG_MULTI_SZ" => {
                    Val::Arr(data.split("\\0").map(|s| Val::Str(s.to_owned())).collect())
                }
                _ => Val::Str(data),
            };
            props.push((n, v));
        }
        if let Some(w) = &want {
            if let Some(absent) = w
                .iter()
                .find(|x| !props.iter().any(|(n, _)| n.eq_ignore_ascii_case(x)))
            {
                return Err(error_record(
                    cmd,
                    &format!("Property {absent} does not exist at path {full}."),
                    &format!("InvalidArgument: ({absent}:String) [Get-ItemProperty], PSArgumentException"),
                    "System.Management.Automation.PSArgumentException,Microsoft.PowerShell.Commands.GetItemPropertyCommand",
                ));
            }
        }
        props.push((
            "PSPath".into(),
            Val::Str(format!("Microsoft.PowerShell.Core\\Registry::{full}")),
        ));
        Ok(vec![Val::Obj(props)])
    }

    fn ps_hotfix(&self, h: usize, cmd: &Command) -> Res {
        let node = &self.hosts[h];
        let obj = |id: &str| {
            Val::Obj(vec![
                ("Source".into(), Val::Str(node.name.clone())),
                ("Description".into(), Val::Str("Update".into())),
                ("HotFixID".into(), Val::Str(id.to_owned())),
                (
                    "InstalledBy".into(),
                    Val::Str("NT AUTHORITY\\SYSTEM".into()),
                ),
            ])
        };
        match arg_list(cmd, "Id", 0) {
            None => Ok(node.hotfixes.iter().map(|id| obj(id)).collect()),
            Some(ids) => {
                let found: Vec<Val> = ids
                    .iter()
                    .filter(|id| node.hotfixes.contains(&id.to_ascii_uppercase()))
                    .map(|id| obj(&id.to_ascii_uppercase()))
                    .collect();
                if found.is_empty() {
                    return Err(error_record(
                        cmd,
                        "Cannot find the requested hotfix on the 'localhost' computer. Verify the input and Run the command again.",
                        &format!("ObjectNotFound: ({}:String) [Get-HotFix], ArgumentException", ids.join(",")),
                        "GetHotFixNoEntriesFound,Microsoft.PowerShell.Commands.GetHotFixCommand",
                    ));
                }
                Ok(found)
            }
        }
    }

    fn ps_cim(&self, h: usize, cmd: &Command) -> Res {
        let class = arg_text(cmd, "ClassName", 0)
            .or_else(|| arg_text(cmd, "Class", usize::MAX))
            .unwrap_or_default();
        let query = format!("SELECT * FROM {class}");
        let rows = self.wql(h, "root\\cimv2", &query).map_err(|_| {
            error_record(
                cmd,
                "Invalid class ",
                &format!("MetadataError: (root\\cimv2:{class}:String) [Get-CimInstance], CimException"),
                "HRESULT 0x80041010,Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand",
            )
        })?;
        let node = &self.hosts[h];
        Ok(rows
            .into_iter()
            .map(|row| {
                let mut props: Vec<(String, Val)> =
                    row.into_iter().map(|(k, v)| (k, Val::Str(v))).collect();
                if class.eq_ignore_ascii_case("Win32_OperatingSystem") {
                    props.push((
                        "BuildNumber".into(),
                        Val::Str(node.os_build.build.to_string()),
                    ));
                }
                Val::Obj(props)
            })
            .collect())
    }
}

/// What a pipeline stage produced.
enum Step {
    /// Objects for the next stage.
    Items(Vec<Val>),
    /// Text lines (after `ConvertTo-Json`).
    Text(Vec<String>),
}

/// `-like` on names, case-insensitive.
fn powershell_like(s: &str, pat: &str) -> bool {
    let item = Val::Str(s.to_owned());
    let c = Cond::Cmp(
        Box::new(Expr::Lit(item.clone())),
        "like".into(),
        Box::new(Expr::Lit(Val::Str(pat.to_owned()))),
    );
    powershell::test(&c, &item)
}

/// The value of `-name`, else the positional argument at `pos`, as text.
fn arg_text(cmd: &Command, name: &str, pos: usize) -> Option<String> {
    arg_list(cmd, name, pos).and_then(|v| v.into_iter().next())
}

/// The values of `-name`, else of the positional argument at `pos`.
fn arg_list(cmd: &Command, name: &str, pos: usize) -> Option<Vec<String>> {
    let e = match cmd.named(name) {
        Some(Arg::Named(_, Some(e))) => Some(e),
        Some(_) => None,
        None => cmd.positional().get(pos).copied(),
    }?;
    Some(match eval(e, &Val::Null) {
        Val::Arr(a) => a.iter().map(Val::text).collect(),
        v => vec![v.text()],
    })
}

/// `Select-Object [-Property] A,B | -ExpandProperty A | -First N`.
fn select(cmd: &Command, input: Vec<Val>) -> Vec<Val> {
    let first = match cmd.named("First") {
        Some(Arg::Named(_, Some(e))) => eval(e, &Val::Null).text().parse().ok(),
        _ => None,
    };
    let input: Vec<Val> = match first {
        Some(n) => input.into_iter().take(n).collect(),
        None => input,
    };
    if let Some(p) = arg_text(cmd, "ExpandProperty", usize::MAX) {
        return input
            .iter()
            .flat_map(|v| match v.prop(&p) {
                Val::Arr(a) => a,
                Val::Null => Vec::new(),
                x => vec![x],
            })
            .collect();
    }
    let Some(props) = arg_list(cmd, "Property", 0) else {
        return input;
    };
    input
        .iter()
        .map(|v| {
            Val::Obj(
                props
                    .iter()
                    .map(|p| {
                        let (name, value) = match v {
                            Val::Obj(o) => o
                                .iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case(p))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .unwrap_or((p.clone(), Val::Null)),
                            _ => (p.clone(), Val::Null),
                        };
                        (name, value)
                    })
                    .collect(),
            )
        })
        .collect()
}

/// `Measure-Object [[-Property] P] [-Sum] [-Average] [-Maximum] [-Minimum]`: one
/// GenericMeasureInfo (`Count`, and the statistics asked for over P's integer values; the others
/// `$null`, as Windows PowerShell 5.1 writes them).
fn measure(cmd: &Command, input: &[Val]) -> Val {
    let prop = arg_text(cmd, "Property", 0);
    let values: Vec<i64> = match &prop {
        Some(p) => input
            .iter()
            .filter_map(|v| match v.prop(p) {
                Val::Int(i) => Some(i),
                other => other.text().trim().parse().ok(),
            })
            .collect(),
        None => Vec::new(),
    };
    let count = if prop.is_some() {
        values.len()
    } else {
        input.len()
    };
    let stat = |on: bool, f: &dyn Fn(&[i64]) -> Option<i64>| {
        if on && !values.is_empty() {
            f(&values).map_or(Val::Null, Val::Int)
        } else {
            Val::Null
        }
    };
    let n = values.len() as i64;
    Val::Obj(vec![
        ("Count".into(), Val::Int(count as i64)),
        (
            "Average".into(),
            stat(cmd.switch("Average"), &|v| {
                Some(v.iter().sum::<i64>() / n.max(1))
            }),
        ),
        (
            "Sum".into(),
            stat(cmd.switch("Sum"), &|v| Some(v.iter().sum())),
        ),
        (
            "Maximum".into(),
            stat(cmd.switch("Maximum"), &|v| v.iter().max().copied()),
        ),
        (
            "Minimum".into(),
            stat(cmd.switch("Minimum"), &|v| v.iter().min().copied()),
        ),
        ("Property".into(), prop.map_or(Val::Null, Val::Str)),
    ])
}

/// `Where-Object { cond }` or the simplified `Where-Object Prop -op Value`.
fn where_(cmd: &Command, input: Vec<Val>) -> Vec<Val> {
    let cond = match cmd.positional().first() {
        Some(Expr::Block(c)) => c.clone(),
        Some(Expr::Lit(Val::Str(prop))) => {
            let member = Expr::Var("_".into(), vec![prop.clone()]);
            match cmd.args.iter().find_map(|a| match a {
                Arg::Named(op, Some(v)) => Some((op.clone(), v.clone())),
                _ => None,
            }) {
                Some((op, v)) => Cond::Cmp(Box::new(member), op.to_ascii_lowercase(), Box::new(v)),
                None => Cond::Truth(Box::new(member)),
            }
        }
        _ => return input,
    };
    input
        .into_iter()
        .filter(|v| powershell::test(&cond, v))
        .collect()
}
