//! The lab's recorder: everything that happened in the simulated fleet, one JSON object a line.
//!
//! Every line is a [`Record`]: `{"t_ms":..,"host":..,"cluster":..,"event":"..", ...}` where
//! `t_ms` is milliseconds since the lab started (tokio clock), `host` and `cluster` are the host
//! and its cluster (or `null`), `event` names the kind and the remaining fields belong to it:
//!
//! | `event` | fields |
//! |---|---|
//! | `lab-started` | `hosts` (name, role, product, edition, windows, build, cluster, site, hotfixes), `groups` (cluster, group, evs, version, owner): the header, always first |
//! | `command` | `line`: a command line started on `host` |
//! | `command-finished` | `line`, `exit_code`: a command that runs for a while (`ping -n N`) ended; other commands end as they start |
//! | `service` | `name`, `state` (`running`/`stopped`) |
//! | `cluster-service` | `state` (`up`/`down`) |
//! | `group-moved` | `group`, `from`, `to`, `cause` (`move`, `failover`, `arbitrate`) |
//! | `resource` | `resource`, `group`, `kind` (resource type), `node` (owner), `state` (`online`/`offline`/`failed`) |
//! | `install-started` | `package`, `product` (`null` for a Windows package), `target`, `target_build`, `build_before` |
//! | `install-finished` | `package`, `exit_code`, `version_after` |
//! | `reboot-started`, `reboot-finished` | (none) |
//! | `evs-upgraded` | `group`, `evs`, `version` |
//! | `event-log` | `id`, `source`, `message` (e.g. 1025 `MSExchangeCluster`, T1) |
//! | `fault` | `action` (`set`, `cleared`, or `used` for a one-shot protocol fault), `fault` (`{"kind":..}` or `null`) |
//! | `nlb` | `state` (`converged`/`stopped`) |
//! | `node-paused` | `paused` (a cluster node suspended or resumed: `Suspend-ClusterNode`, `Resume-ClusterNode`) |
//!
//! A [`Recorder`] writes to a JSONL file, keeps the records in memory, or drops them; it is a
//! cheap `Clone` (an `Arc`) and thread-safe. The invariant checker ([`crate::verify`]) reads
//! the same records back.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use lockstep_core::{Edition, Product, Role, Version, WindowsRelease};
use serde::{Deserialize, Serialize};

use crate::model::Fault;

/// One line of the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Milliseconds since the lab started.
    pub t_ms: u64,
    /// The host the event happened on, if any.
    pub host: Option<String>,
    /// The host's cluster, if any.
    pub cluster: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub event: RecordEvent,
}

/// A host as the header describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostHeader {
    /// Computer name.
    pub name: String,
    /// Exchange role (`null` on a host without Exchange).
    pub role: Option<Role>,
    /// Exchange product (`null` on a host without Exchange).
    pub product: Option<Product>,
    /// Exchange edition (`null` on a host without Exchange).
    pub edition: Option<Edition>,
    /// Windows release.
    pub windows: WindowsRelease,
    /// Exchange build at lab start.
    pub build: Version,
    /// Cluster the host is a node of.
    pub cluster: Option<String>,
    /// Site.
    pub site: String,
    /// Whether the Cluster service runs at lab start (cluster nodes only).
    #[serde(default)]
    pub cluster_service: bool,
    /// Installed hotfixes at lab start.
    #[serde(default)]
    pub hotfixes: Vec<String>,
}

/// A cluster group as the header describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupHeader {
    /// Cluster name.
    pub cluster: String,
    /// Group name.
    pub group: String,
    /// EVS name, for an Exchange virtual server's group.
    pub evs: Option<String>,
    /// EVS version, for an Exchange virtual server's group.
    pub version: Option<Version>,
    /// Owner node at lab start.
    pub owner: String,
    /// Whether the group's Exchange resources are online at lab start.
    #[serde(default)]
    pub exchange_online: bool,
}

/// What a record says happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum RecordEvent {
    /// The header: the fleet as the lab starts it.
    LabStarted {
        /// Every host.
        hosts: Vec<HostHeader>,
        /// Every cluster group.
        groups: Vec<GroupHeader>,
    },
    /// A command line was started.
    Command {
        /// The line as received.
        line: String,
    },
    /// A command that runs for a while (`ping -n N`) ended.
    CommandFinished {
        /// The line as received.
        line: String,
        /// Its exit code.
        exit_code: i32,
    },
    /// A service changed state.
    Service {
        /// Service name.
        name: String,
        /// `running` or `stopped`.
        state: String,
    },
    /// The Cluster service of the host went up or down.
    ClusterService {
        /// `up` or `down`.
        state: String,
    },
    /// A group changed owner.
    GroupMoved {
        /// Group name.
        group: String,
        /// Previous owner.
        from: String,
        /// New owner.
        to: String,
        /// `move` (asked for), `failover` (its node's Cluster service stopped), `arbitrate`.
        cause: String,
    },
    /// A cluster resource changed state.
    Resource {
        /// Resource name.
        resource: String,
        /// Its group.
        group: String,
        /// Resource type (`Microsoft Exchange System Attendant`...).
        kind: String,
        /// The node owning the group.
        node: String,
        /// `online`, `offline` or `failed`.
        state: String,
    },
    /// An installer started.
    InstallStarted {
        /// Package path as configured.
        package: String,
        /// Exchange product of the package; `None` for a Windows package.
        product: Option<Product>,
        /// What the package brings: a build or a hotfix id.
        target: String,
        /// The build the package brings, for a service pack.
        target_build: Option<Version>,
        /// The host's Exchange build before.
        build_before: Version,
        /// Whether the target was already present (build at or above, hotfix installed).
        already_at_target: bool,
    },
    /// An installer ended.
    InstallFinished {
        /// Package path as configured.
        package: String,
        /// Exit code.
        exit_code: i32,
        /// The host's Exchange build after.
        version_after: Version,
    },
    /// The host went down for a restart.
    RebootStarted,
    /// The host is back.
    RebootFinished,
    /// An EVS was upgraded.
    EvsUpgraded {
        /// Group name.
        group: String,
        /// EVS name.
        evs: String,
        /// New version.
        version: Version,
    },
    /// An Application log event was written.
    EventLog {
        /// Event id (1025).
        id: u32,
        /// Source (`MSExchangeCluster`).
        source: String,
        /// Message.
        message: String,
    },
    /// A fault was set or cleared.
    Fault {
        /// `set` or `cleared`.
        action: String,
        /// The fault set; `None` when every fault was cleared.
        fault: Option<Fault>,
    },
    /// The NLB state of a pool member changed.
    Nlb {
        /// `converged` or `stopped`.
        state: String,
    },
    /// A cluster node was suspended (paused, `Suspend-ClusterNode`) or resumed.
    NodePaused {
        /// True when suspended.
        paused: bool,
    },
}

enum Sink {
    Null,
    Memory(Vec<Record>),
    File {
        out: BufWriter<File>,
        path: std::path::PathBuf,
    },
}

/// Where records go: a JSONL file, memory, or nowhere. Cheap to clone, thread-safe.
#[derive(Clone)]
pub struct Recorder {
    sink: Arc<Mutex<Sink>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

impl Recorder {
    /// A recorder that drops everything.
    pub fn null() -> Recorder {
        Recorder {
            sink: Arc::new(Mutex::new(Sink::Null)),
        }
    }

    /// A recorder that keeps every record in memory ([`Recorder::records`]).
    pub fn in_memory() -> Recorder {
        Recorder {
            sink: Arc::new(Mutex::new(Sink::Memory(Vec::new()))),
        }
    }

    /// A recorder that writes JSONL to `path` (created or truncated), flushing every line.
    pub fn to_file(path: &Path) -> std::io::Result<Recorder> {
        let file = File::create(path)?;
        Ok(Recorder {
            sink: Arc::new(Mutex::new(Sink::File {
                out: BufWriter::new(file),
                path: path.to_owned(),
            })),
        })
    }

    /// Appends a record.
    pub fn record(&self, record: Record) {
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *sink {
            Sink::Null => {}
            Sink::Memory(v) => v.push(record),
            Sink::File { out, .. } => match serde_json::to_string(&record) {
                Ok(line) => {
                    if let Err(e) = writeln!(out, "{line}").and_then(|_| out.flush()) {
                        tracing::warn!(error = %e, "lab recorder could not write a record");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "lab recorder could not encode a record"),
            },
        }
    }

    /// Every record so far: kept in memory, or read back from the file (empty for a null
    /// recorder or an unreadable file).
    pub fn records(&self) -> Vec<Record> {
        let sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        match &*sink {
            Sink::Null => Vec::new(),
            Sink::Memory(v) => v.clone(),
            Sink::File { path, .. } => read_records(path).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "lab recorder could not read its file back");
                Vec::new()
            }),
        }
    }
}

/// Reads a JSONL record file back.
pub fn read_records(path: &Path) -> Result<Vec<Record>, crate::verify::VerifyError> {
    use crate::verify::VerifyError;
    let text = std::fs::read_to_string(path).map_err(|source| VerifyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let rec: Record = serde_json::from_str(line).map_err(|source| VerifyError::Parse {
            path: path.display().to_string(),
            line: i + 1,
            source,
        })?;
        out.push(rec);
    }
    Ok(out)
}
