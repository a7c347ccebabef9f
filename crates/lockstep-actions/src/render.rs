//! The exact command lines and WQL queries Lockstep sends (docs/commands.md), and [`render`]:
//! every line an action may send, for `--check` and the docs.
//!
//! Every value that reaches a command line is a validated [`Name`] quoted with
//! [`Name::cmd_quoted`]; nothing here formats a raw string into a command.

use lockstep_core::{Action, Name, PreflightCheck, RebootPolicy};

/// Namespace of the failover-cluster WMI provider.
pub const NS_CLUSTER: &str = "root/MSCluster";
/// Namespace of the Win32 classes.
pub const NS_CIMV2: &str = "root/cimv2";
/// Namespace of Exchange 2003's WMI provider.
pub const NS_EXCHANGE_V2: &str = "root/MicrosoftExchangeV2";

/// WQL: owner node of every group.
pub const WQL_OWNERS: &str =
    "SELECT GroupComponent, PartComponent FROM MSCluster_NodeToActiveGroup";
/// WQL: state of every group (0 online).
pub const WQL_GROUPS: &str = "SELECT Name, State FROM MSCluster_ResourceGroup";
/// WQL: every resource with its type and state.
pub const WQL_RESOURCES: &str = "SELECT Name, Type, State FROM MSCluster_Resource";
/// WQL: group membership of every resource.
pub const WQL_GROUP_RESOURCES: &str =
    "SELECT GroupComponent, PartComponent FROM MSCluster_ResourceGroupToResource";
/// WQL: running processes (G6).
pub const WQL_PROCESSES: &str = "SELECT Name FROM Win32_Process";
/// WQL: boot time.
pub const WQL_OS: &str = "SELECT LastBootUpTime, Version, OSLanguage FROM Win32_OperatingSystem";
/// WQL: installed hotfixes.
pub const WQL_HOTFIXES: &str = "SELECT HotFixID FROM Win32_QuickFixEngineering";
/// The Exchange cluster events of the Application log (T1 reads event 1025 among them; the
/// event code is compared here, not in the query, so no typed literal is needed).
pub const WQL_EXCHANGE_CLUSTER_EVENTS: &str = "SELECT EventCode, SourceName, TimeGenerated, Message FROM Win32_NTLogEvent WHERE Logfile='Application' AND SourceName='MSExchangeCluster'";
/// WQL: every Exchange server and virtual server of the organisation with its version
/// (`Version 6.5 (Build 7638.2: Service Pack 2)`), in [`NS_EXCHANGE_V2`].
pub const WQL_EXCHANGE_SERVERS: &str = "SELECT Name, ExchangeVersion FROM Exchange_Server";
/// WQL: local fixed disks (`DriveType` 3) with their free space and size in bytes.
pub const WQL_FIXED_DISKS: &str =
    "SELECT DeviceID, FreeSpace, Size FROM Win32_LogicalDisk WHERE DriveType = 3";

/// `reg query` of the Exchange Setup key (build and edition).
pub const REG_EXCHANGE_SETUP: &str = r#"reg query "HKLM\SOFTWARE\Microsoft\Exchange\Setup""#;
/// `reg query` of the Windows version key (`ProductName`, `CurrentVersion`,
/// `CurrentBuildNumber`, and `UBR` from Windows 10 / Server 2016 on).
pub const REG_WINDOWS_VERSION: &str =
    r#"reg query "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion""#;
/// `reg query` of the pending-reboot marker: exit 0 = a reboot is pending, exit 1 = none.
pub const REG_PENDING_REBOOT: &str = r#"reg query "HKLM\SYSTEM\CurrentControlSet\Control\Session Manager" /v PendingFileRenameOperations"#;
/// Restart now.
pub const SHUTDOWN_REBOOT: &str = "shutdown /r /t 0 /f";
/// Stop this node's Cluster service (run ON the node: double hop).
pub const NET_STOP_CLUSSVC: &str = "net stop clussvc";
/// Start this node's Cluster service (run ON the node).
pub const NET_START_CLUSSVC: &str = "net start clussvc";
/// Query this node's Cluster service.
pub const SC_QUERY_CLUSSVC: &str = "sc query clussvc";
/// Drain and stop NLB on this node.
pub const WLBS_DRAINSTOP: &str = "wlbs drainstop";
/// Start NLB on this node.
pub const WLBS_START: &str = "wlbs start";
/// Query NLB on this node (the exit code is read).
pub const WLBS_QUERY: &str = "wlbs query";

/// `cluster group "G" /moveto:NODE /wait:120`.
pub fn move_group(group: &Name, to: &Name) -> String {
    format!(
        "cluster group {} /moveto:{} /wait:120",
        group.cmd_quoted(),
        to
    )
}

/// `cluster group "G" /online /wait:120`.
pub fn group_online(group: &Name) -> String {
    format!("cluster group {} /online /wait:120", group.cmd_quoted())
}

/// `cluster res "R" /offline /wait:120`.
pub fn resource_offline(resource: &Name) -> String {
    format!("cluster res {} /offline /wait:120", resource.cmd_quoted())
}

/// `net stop "S"`.
pub fn net_stop(service: &Name) -> String {
    format!("net stop {}", service.cmd_quoted())
}

/// `net start "S"`.
pub fn net_start(service: &Name) -> String {
    format!("net start {}", service.cmd_quoted())
}

/// `sc query "S"`.
pub fn sc_query(service: &Name) -> String {
    format!("sc query {}", service.cmd_quoted())
}

/// `"PACKAGE" ARGS` (no trailing space when there are no switches).
pub fn installer(package: &Name, args: &Name) -> String {
    if args.as_str().is_empty() {
        package.cmd_quoted()
    } else {
        format!("{} {}", package.cmd_quoted(), args)
    }
}

/// `powershell.exe -NoProfile -NonInteractive -EncodedCommand <base64 of the UTF-16LE script>`:
/// the script reaches PowerShell byte for byte, with no cmd.exe quoting in between.
pub fn powershell(script: &str) -> String {
    use base64::Engine as _;
    let utf16: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    format!(
        "powershell.exe -NoProfile -NonInteractive -EncodedCommand {}",
        base64::engine::general_purpose::STANDARD.encode(utf16)
    )
}

fn wql_line(ns: &str, q: &str) -> String {
    format!("rem WQL {ns}: {q}")
}

/// Every command line `action` may send when run on `host`, in order: what `--check` shows.
/// Lines that depend on live state (the groups a node owns, a group's resources) are shown as
/// a `rem` line saying how the set is found, then the command with a `{placeholder}`; reads done
/// through WQL are shown as `rem WQL namespace: query`.
pub fn render(action: &Action, host: &Name) -> Vec<String> {
    match action {
        Action::MoveGroup { group, to } => vec![move_group(group, to)],
        Action::EvacuateNode { node, to } => vec![
            wql_line(NS_CLUSTER, WQL_OWNERS),
            format!("rem for each group G owned by {node} (cluster group included), one by one:"),
            format!("cluster group \"{{G}}\" /moveto:{to} /wait:120"),
        ],
        Action::StopClusterService => vec![NET_STOP_CLUSSVC.to_owned()],
        Action::StartClusterService => vec![NET_START_CLUSSVC.to_owned()],
        Action::EvsResourcesOffline { group } => vec![
            wql_line(NS_CLUSTER, WQL_GROUP_RESOURCES),
            wql_line(NS_CLUSTER, WQL_RESOURCES),
            format!(
                "rem for each resource R of {} except IP Address, Physical Disk and Network Name \
                 (protocols, then store/MTA/routing, System Attendant last):",
                group.cmd_quoted()
            ),
            "cluster res \"{R}\" /offline /wait:120".to_owned(),
        ],
        Action::EvsResourcesOnline { group } => vec![group_online(group)],
        Action::UpgradeVirtualServer {
            group,
            evs,
            command,
        } => upgrade_virtual_server_lines(group, evs, command.as_deref(), host),
        Action::Stage { source, dest, .. } => stage_lines(source, dest),
        Action::Install {
            package,
            args,
            prerequisite,
            target,
            reboot,
            ..
        } => install_lines(
            package,
            args,
            prerequisite.is_some(),
            target.is_some(),
            *reboot,
        ),
        Action::Reboot => vec![wql_line(NS_CIMV2, WQL_OS), SHUTDOWN_REBOOT.to_owned()],
        Action::StopServices { services } => services
            .iter()
            .flat_map(|s| [sc_query(s), net_stop(s)])
            .collect(),
        Action::StartServices { services } => services
            .iter()
            .flat_map(|s| [sc_query(s), net_start(s)])
            .collect(),
        Action::AssertVersion { .. } => vec![REG_EXCHANGE_SETUP.to_owned()],
        Action::Preflight { checks, .. } => preflight_lines(checks),
        Action::FailoverTest { group, nodes } => nodes
            .iter()
            .flat_map(|n| [move_group(group, n), wql_line(NS_CLUSTER, WQL_GROUPS)])
            .collect(),
        Action::Confirm { message, command } => match command {
            Some(c) => vec![c.clone()],
            None => vec![format!(
                "rem operator: {}",
                message.split_whitespace().collect::<Vec<_>>().join(" ")
            )],
        },
        Action::NlbDrain => vec![WLBS_QUERY.to_owned(), WLBS_DRAINSTOP.to_owned()],
        Action::NlbStart => vec![WLBS_QUERY.to_owned(), WLBS_START.to_owned()],
        Action::Command { command, judge } => generic_lines(command, false, judge),
        Action::Powershell { script, judge } => generic_lines(script, true, judge),
        Action::WaitUntil {
            that,
            every_secs,
            facts,
        } => {
            let mut lines = vec![format!("rem every {every_secs} s until `{that}`:")];
            lines.extend(facts.iter().map(|f| fact_line(&f.probe)));
            lines
        }
        Action::Assert { that, facts, .. } => {
            let mut lines = vec![format!("rem halt unless `{that}`:")];
            lines.extend(facts.iter().map(|f| fact_line(&f.probe)));
            lines
        }
    }
}

/// The T2 preconditions read live, then the upgrade command or the operator's instruction.
fn upgrade_virtual_server_lines(
    group: &Name,
    evs: &Name,
    command: Option<&str>,
    host: &Name,
) -> Vec<String> {
    let mut lines = vec![
        format!("rem T2 preconditions of {} read live:", group.cmd_quoted()),
        wql_line(NS_CLUSTER, WQL_OWNERS),
        REG_EXCHANGE_SETUP.to_owned(),
        wql_line(NS_CLUSTER, WQL_GROUP_RESOURCES),
        wql_line(NS_CLUSTER, WQL_RESOURCES),
    ];
    match command {
        Some(c) => lines.push(c.to_owned()),
        None => lines.push(format!(
            "rem operator: on {host} open Cluster Administrator, right-click the System \
             Attendant resource of {}, choose Upgrade Exchange Virtual Server ({evs})",
            group.cmd_quoted()
        )),
    }
    lines
}

/// The staging commands, with one append standing for every chunk.
fn stage_lines(source: &str, dest: &Name) -> Vec<String> {
    let l = crate::stage::StageLines::new(dest);
    let mut lines = vec![
        format!("rem controller: SHA-256 of {source} must be the playbook's"),
        l.hash(),
    ];
    lines.extend(l.mkdir());
    lines.push(l.size());
    lines.push(l.append(&format!(
        "<base64 of the next {} bytes>",
        crate::stage::CHUNK_BYTES
    )));
    lines.push(l.decode());
    lines.push(l.hash_part());
    lines.push(l.install());
    lines.push(l.clean());
    lines.push(
        "rem Server 2003/2008: certutil -hashfile without SHA256 (SHA-1 compared); Windows 2000/NT 4.0: tagged lines decoded by cscript and a receipt (docs/commands.md)"
            .to_owned(),
    );
    lines
}

/// The installer with the reads around it and the restart its policy asks for.
fn install_lines(
    package: &Name,
    args: &Name,
    has_prerequisite: bool,
    has_target: bool,
    reboot: RebootPolicy,
) -> Vec<String> {
    let mut lines = Vec::new();
    if has_prerequisite {
        lines.push(wql_line(NS_CIMV2, WQL_HOTFIXES));
    }
    if has_target {
        lines.push(REG_EXCHANGE_SETUP.to_owned());
    }
    lines.push(wql_line(NS_CIMV2, WQL_PROCESSES));
    lines.push(wql_line(NS_CIMV2, WQL_OS));
    lines.push(installer(package, args));
    match reboot {
        RebootPolicy::Always => {
            lines.push("rem then restart (reboot: always):".to_owned());
            lines.push(SHUTDOWN_REBOOT.to_owned());
        }
        RebootPolicy::IfRequired => {
            lines.push("rem on exit 3010 (restart required):".to_owned());
            lines.push(SHUTDOWN_REBOOT.to_owned());
        }
        RebootPolicy::Never => {}
    }
    if has_target {
        lines.push(REG_EXCHANGE_SETUP.to_owned());
    }
    lines
}

/// One line per preflight read; the Exchange setup key is read once.
fn preflight_lines(checks: &[PreflightCheck]) -> Vec<String> {
    let mut lines = Vec::new();
    for check in checks {
        match check {
            PreflightCheck::ServicesStopped { services } => {
                for s in services {
                    match Name::object(s) {
                        Ok(n) => lines.push(sc_query(&n)),
                        Err(e) => lines.push(format!("rem refused: {e}")),
                    }
                }
            }
            PreflightCheck::NoProcesses { .. } => lines.push(wql_line(NS_CIMV2, WQL_PROCESSES)),
            PreflightCheck::EditionMatches | PreflightCheck::ProductMatches => {
                let l = REG_EXCHANGE_SETUP.to_owned();
                if !lines.contains(&l) {
                    lines.push(l);
                }
            }
            PreflightCheck::NoPendingReboot => lines.push(REG_PENDING_REBOOT.to_owned()),
            PreflightCheck::ClusterServiceRunning => lines.push(SC_QUERY_CLUSSVC.to_owned()),
        }
    }
    lines
}

fn fact_line(p: &lockstep_core::FactProbe) -> String {
    let l = crate::facts::render_probe(p);
    match l.strip_prefix("WQL ") {
        Some(rest) => format!("rem WQL {rest}"),
        None => l,
    }
}

fn generic_lines(text: &str, powershell: bool, judge: &lockstep_core::Judge) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(u) = &judge.unless {
        lines.push(format!("rem skipped when `{u}`:"));
        lines.extend(judge.facts.iter().map(|f| fact_line(&f.probe)));
    }
    if powershell {
        lines.push(format!(
            "rem PowerShell script, sent encoded: {}",
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        ));
    }
    lines.push(crate::generic::line(text, powershell));
    if !judge.restart_exit_codes.is_empty() {
        lines.push(format!(
            "rem on exit {:?} (restart):",
            judge.restart_exit_codes
        ));
        lines.push(SHUTDOWN_REBOOT.to_owned());
    }
    lines
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powershell_scripts_are_sent_as_utf16le_base64() {
        // `Get-Date` in UTF-16LE, base64: what `[Convert]::ToBase64String(
        // [Text.Encoding]::Unicode.GetBytes('Get-Date'))` prints on Windows.
        assert_eq!(
            powershell("Get-Date"),
            "powershell.exe -NoProfile -NonInteractive -EncodedCommand RwBlAHQALQBEAGEAdABlAA=="
        );
        // Quotes, pipes and non-ASCII pass through the encoding untouched by cmd.exe.
        let line = powershell("'Přerov' | ConvertTo-Json -Compress");
        assert!(!line.contains('|') && !line.contains('\''), "{line}");
    }
}
