//! [`Node`]: typed reads and runs against one host through `&dyn Transport`, with transport
//! failures mapped to [`StepError`]s. Every read here is locale-independent.

use std::collections::BTreeMap;
use std::time::Duration;

use lockstep_core::{CommandOutput, Name, Transport, WmiObject};

use crate::build::NodeBuild;
use crate::parse;
use crate::render::{self, NS_CIMV2, NS_CLUSTER, NS_EXCHANGE_V2};
use lockstep_core::StepError;

/// Timeout of a read-only command (`sc query`, `reg query`).
pub(crate) const QUERY_TIMEOUT: Duration = Duration::from_secs(120);

/// A cluster resource as WQL shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resource {
    pub name: String,
    pub kind: String,
    pub state: Option<u32>,
}

impl Resource {
    /// IP Address, Physical Disk or Network Name: the types that stay online while an EVS is upgraded.
    pub fn is_core(&self) -> bool {
        ["IP Address", "Physical Disk", "Network Name"]
            .iter()
            .any(|t| self.kind.eq_ignore_ascii_case(t))
    }

    pub fn is_online(&self) -> bool {
        self.state == Some(parse::RESOURCE_ONLINE)
    }

    pub fn is_offline(&self) -> bool {
        self.state == Some(parse::RESOURCE_OFFLINE)
    }
}

/// What `sc query` says of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServiceState {
    /// Exit 1060: not installed.
    Missing,
    /// The state number.
    State(u32),
}

/// The output of a command as one text (stdout, then stderr).
pub(crate) fn joined(out: &CommandOutput) -> String {
    match (
        out.stdout.trim_end().is_empty(),
        out.stderr.trim().is_empty(),
    ) {
        (_, true) => out.stdout.clone(),
        (true, false) => out.stderr.clone(),
        (false, false) => format!("{}\n{}", out.stdout.trim_end(), out.stderr),
    }
}

/// Finds `key` in a map case-insensitively (Windows compares names that way).
pub(crate) fn get_ci<'m, V>(map: &'m BTreeMap<String, V>, key: &str) -> Option<&'m V> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn prop<'o>(o: &'o WmiObject, name: &str) -> Option<&'o str> {
    o.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One host reached through the transport.
pub(crate) struct Node<'a> {
    pub t: &'a dyn Transport,
    pub host: &'a Name,
}

impl<'a> Node<'a> {
    pub fn new(t: &'a dyn Transport, host: &'a Name) -> Self {
        Node { t, host }
    }

    /// Runs a command line; transport failures become errors, any exit code is returned.
    pub async fn run(&self, line: &str, timeout: Duration) -> Result<CommandOutput, StepError> {
        tracing::debug!(host = %self.host, command = line, "run");
        self.t
            .run(self.host, line, timeout)
            .await
            .map_err(|e| StepError::from_transport(self.host, &format!("running `{line}`"), &e))
    }

    /// Runs a WQL query.
    pub async fn wql(&self, ns: &str, query: &str) -> Result<Vec<WmiObject>, StepError> {
        tracing::debug!(host = %self.host, namespace = ns, query, "wql");
        self.t.wql(self.host, ns, query).await.map_err(|e| {
            StepError::from_transport(self.host, &format!("WQL `{query}` in `{ns}`"), &e)
        })
    }

    /// Owner node of every group: group name -> node name.
    pub async fn owners(&self) -> Result<BTreeMap<String, String>, StepError> {
        let rows = self.wql(NS_CLUSTER, render::WQL_OWNERS).await?;
        Ok(owners_from(&rows))
    }

    /// State of the group (0 online), `None` when the cluster has no such group.
    pub async fn group_state(&self, group: &Name) -> Result<Option<u32>, StepError> {
        let rows = self.wql(NS_CLUSTER, render::WQL_GROUPS).await?;
        Ok(rows
            .iter()
            .find(|o| prop(o, "Name").is_some_and(|n| group.eq_ignore_case(n)))
            .and_then(|o| prop(o, "State"))
            .and_then(|s| s.trim().parse().ok()))
    }

    /// Every resource of the cluster.
    pub async fn all_resources(&self) -> Result<Vec<Resource>, StepError> {
        let rows = self.wql(NS_CLUSTER, render::WQL_RESOURCES).await?;
        Ok(rows
            .iter()
            .filter_map(|o| {
                Some(Resource {
                    name: prop(o, "Name")?.to_owned(),
                    kind: prop(o, "Type").unwrap_or_default().to_owned(),
                    state: prop(o, "State").and_then(|s| s.trim().parse().ok()),
                })
            })
            .collect())
    }

    /// The resources of `group`, in the order WMI lists them. `None` when the group has no
    /// member at all (an unknown group).
    pub async fn group_resources(&self, group: &Name) -> Result<Vec<Resource>, StepError> {
        let links = self.wql(NS_CLUSTER, render::WQL_GROUP_RESOURCES).await?;
        let members: Vec<String> = links
            .iter()
            .filter(|o| {
                prop(o, "GroupComponent")
                    .and_then(|g| parse::wmi_ref_of(g, "MSCluster_ResourceGroup"))
                    .is_some_and(|g| group.eq_ignore_case(g))
            })
            .filter_map(|o| {
                prop(o, "PartComponent")
                    .and_then(|p| parse::wmi_ref_of(p, "MSCluster_Resource"))
                    .map(str::to_owned)
            })
            .collect();
        let all = self.all_resources().await?;
        Ok(members
            .iter()
            .map(|m| {
                all.iter()
                    .find(|r| r.name.eq_ignore_ascii_case(m))
                    .cloned()
                    .unwrap_or(Resource {
                        name: m.clone(),
                        kind: String::new(),
                        state: None,
                    })
            })
            .collect())
    }

    /// `sc query` of a service (`line` is the rendered query).
    pub async fn service_state(&self, line: &str) -> Result<ServiceState, StepError> {
        let out = self.run(line, QUERY_TIMEOUT).await?;
        if out.exit_code == parse::ERROR_SERVICE_DOES_NOT_EXIST {
            return Ok(ServiceState::Missing);
        }
        match (out.exit_code, parse::sc_state(&out.stdout)) {
            (0, Some(n)) => Ok(ServiceState::State(n)),
            (code, _) => Err(StepError::step_failed(
                self.host,
                format!(
                    "`{line}` on host `{}` gave no service state (exit {})",
                    self.host,
                    parse::describe_exit(code)
                ),
            )
            .with_output(joined(&out), Some(code))),
        }
    }

    /// Image names of the running processes (WQL `Win32_Process`).
    pub async fn processes(&self) -> Result<Vec<String>, StepError> {
        let rows = self.wql(NS_CIMV2, render::WQL_PROCESSES).await?;
        Ok(rows
            .iter()
            .filter_map(|o| prop(o, "Name").map(str::to_owned))
            .collect())
    }

    /// Installed hotfix ids (WQL `Win32_QuickFixEngineering`).
    pub async fn hotfixes(&self) -> Result<Vec<String>, StepError> {
        let rows = self.wql(NS_CIMV2, render::WQL_HOTFIXES).await?;
        Ok(rows
            .iter()
            .filter_map(|o| prop(o, "HotFixID").map(|s| s.trim().to_owned()))
            .collect())
    }

    /// The `ExchangeVersion` text of Exchange server or virtual server `name` as this node's
    /// Exchange WMI provider lists it (`Exchange_Server`); `Ok(None)` when it is not listed.
    pub async fn exchange_version_of(&self, name: &Name) -> Result<Option<String>, StepError> {
        let rows = self
            .wql(NS_EXCHANGE_V2, render::WQL_EXCHANGE_SERVERS)
            .await?;
        Ok(rows
            .iter()
            .find(|o| prop(o, "Name").is_some_and(|n| name.eq_ignore_case(n.trim())))
            .and_then(|o| prop(o, "ExchangeVersion"))
            .map(|v| v.trim().to_owned()))
    }

    /// T1: the newest `MSExchangeCluster` event 1025 ("The Exchange virtual server needs to be
    /// upgraded before coming online.") of the Application log, as its message; `None` when
    /// the log has none or cannot be read (the caller's own failure stands then).
    pub async fn exchange_event_1025(&self) -> Option<String> {
        let rows = self
            .wql(NS_CIMV2, render::WQL_EXCHANGE_CLUSTER_EVENTS)
            .await
            .ok()?;
        rows.iter()
            .filter(|o| prop(o, "EventCode").map(str::trim) == Some("1025"))
            .max_by_key(|o| prop(o, "TimeGenerated").unwrap_or_default().to_owned())
            .map(|o| prop(o, "Message").unwrap_or_default().trim().to_owned())
    }

    /// `LastBootUpTime` (CIM datetime text).
    pub async fn boot_time(&self) -> Result<String, StepError> {
        let rows = self.wql(NS_CIMV2, render::WQL_OS).await?;
        rows.iter()
            .find_map(|o| prop(o, "LastBootUpTime").and_then(parse::boot_time))
            .ok_or_else(|| {
                StepError::step_failed(
                    self.host,
                    format!(
                        "host `{}` answered no `LastBootUpTime` from `Win32_OperatingSystem`",
                        self.host
                    ),
                )
            })
    }

    /// Whether a reboot is pending (`PendingFileRenameOperations` exists).
    pub async fn pending_reboot(&self) -> Result<bool, StepError> {
        let out = self.run(render::REG_PENDING_REBOOT, QUERY_TIMEOUT).await?;
        match out.exit_code {
            0 => Ok(true),
            1 => Ok(false),
            code => Err(StepError::step_failed(
                self.host,
                format!(
                    "reading the pending-reboot marker on host `{}` failed (exit {code})",
                    self.host
                ),
            )
            .with_output(joined(&out), Some(code))),
        }
    }

    /// The Windows product, version and build from the registry.
    pub async fn windows(&self) -> Result<parse::WindowsVersion, StepError> {
        let out = self.run(render::REG_WINDOWS_VERSION, QUERY_TIMEOUT).await?;
        match (
            out.exit_code,
            parse::windows_version(&parse::reg_values(&out.stdout)),
        ) {
            (0, Some(v)) => Ok(v),
            (code, _) => Err(StepError::step_failed(
                self.host,
                format!(
                    "host `{}` shows no Windows version: the key \
                     `HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion` lacks \
                     `CurrentVersion` or `CurrentBuildNumber` (exit {code})",
                    self.host
                ),
            )
            .with_output(joined(&out), Some(code))),
        }
    }

    /// The local fixed disks (WQL `Win32_LogicalDisk`, `DriveType` 3), in the order listed.
    pub async fn fixed_disks(&self) -> Result<Vec<parse::Disk>, StepError> {
        let rows = self.wql(NS_CIMV2, render::WQL_FIXED_DISKS).await?;
        Ok(rows
            .iter()
            .filter_map(|o| {
                Some(parse::Disk {
                    device: prop(o, "DeviceID")?.trim().to_owned(),
                    free_bytes: prop(o, "FreeSpace")?.trim().parse().ok()?,
                    size_bytes: prop(o, "Size").and_then(|s| s.trim().parse().ok()),
                })
            })
            .collect())
    }

    /// The Exchange build and edition from the registry.
    pub async fn build(&self) -> Result<NodeBuild, StepError> {
        let out = self.run(render::REG_EXCHANGE_SETUP, QUERY_TIMEOUT).await?;
        let values = parse::reg_values(&out.stdout);
        match (out.exit_code, parse::exchange_build(&values)) {
            (0, Some(build)) => Ok(NodeBuild {
                build,
                edition: parse::exchange_edition(&values),
            }),
            (code, _) => Err(StepError::precondition(
                self.host,
                format!(
                    "host `{}` shows no Exchange build: the key \
                     `HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup` lacks `MsiProductMajor`, \
                     `MsiProductMinor`, `MsiBuildMajor` or `MsiBuildMinor` (exit {code})",
                    self.host
                ),
            )
            .with_output(joined(&out), Some(code))),
        }
    }
}

/// Group -> owner node from `MSCluster_NodeToActiveGroup` rows.
pub(crate) fn owners_from(rows: &[WmiObject]) -> BTreeMap<String, String> {
    rows.iter()
        .filter_map(|o| {
            let node = parse::wmi_ref_of(prop(o, "GroupComponent")?, "MSCluster_Node")?;
            let group = parse::wmi_ref_of(prop(o, "PartComponent")?, "MSCluster_ResourceGroup")?;
            Some((group.to_owned(), node.to_owned()))
        })
        .collect()
}
