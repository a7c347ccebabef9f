//! Faults the lab injects into a host: from the config file, [`crate::model::World::set_fault`]
//! or the command `labctl fault set HOST KIND [ARG]`.

use std::fmt;

use lockstep_core::Version;
use serde::{Deserialize, Serialize};

/// One injected fault. In a config file: `{ kind: slow, ms: 200 }`, `{ kind: refuse }`...
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// The endpoint refuses connections.
    Refuse,
    /// The endpoint answers every request with HTTP 500.
    #[serde(alias = "http-500")]
    Http500,
    /// Every response is delayed.
    Slow {
        /// Delay in milliseconds (real time, not scaled).
        ms: u64,
    },
    /// The connection is closed instead of the next Receive carrying output (once).
    DropMidReceive,
    /// The next restart never completes: the host stays down until its faults are cleared.
    RebootNeverReturns,
    /// Every installer ends with this exit code and changes nothing.
    InstallerFails {
        /// The exit code.
        exit_code: i32,
    },
    /// Installers succeed but leave this build behind.
    WrongVersionAfterInstall {
        /// The build left behind.
        build: Version,
    },
    /// `net start clussvc` fails.
    ClusterServiceFailsToStart,
    /// Moving this group to (or from a command on) the host fails with 5038.
    GroupMoveFails {
        /// The group.
        group: String,
    },
}

/// Why `labctl fault set` did not understand a fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultParseError {
    /// Unknown kind.
    #[error("unknown fault kind `{0}`")]
    UnknownKind(String),
    /// The kind needs an argument that is missing or malformed.
    #[error("fault kind `{kind}` needs {what}")]
    BadArgument {
        /// The kind.
        kind: String,
        /// What it needs.
        what: &'static str,
    },
}

impl Fault {
    /// Parses `KIND [ARG]` as `labctl fault set HOST KIND [ARG]` takes it.
    pub fn parse(kind: &str, arg: Option<&str>) -> Result<Fault, FaultParseError> {
        let k = kind.to_ascii_lowercase();
        let bad = |what| FaultParseError::BadArgument {
            kind: kind.to_owned(),
            what,
        };
        Ok(match k.as_str() {
            "refuse" => Fault::Refuse,
            "http500" | "http-500" => Fault::Http500,
            "slow" => Fault::Slow {
                ms: arg
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| bad("a delay in milliseconds"))?,
            },
            "drop-mid-receive" => Fault::DropMidReceive,
            "reboot-never-returns" => Fault::RebootNeverReturns,
            "installer-fails" => Fault::InstallerFails {
                exit_code: arg
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| bad("an exit code"))?,
            },
            "wrong-version-after-install" => Fault::WrongVersionAfterInstall {
                build: arg
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| bad("a build number"))?,
            },
            "cluster-service-fails-to-start" => Fault::ClusterServiceFailsToStart,
            "group-move-fails" => Fault::GroupMoveFails {
                group: arg.ok_or_else(|| bad("a group name"))?.to_owned(),
            },
            _ => return Err(FaultParseError::UnknownKind(kind.to_owned())),
        })
    }

    /// Whether `other` is the same kind of fault (setting a fault replaces one of its kind).
    pub fn same_kind(&self, other: &Fault) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Refuse => f.write_str("refuse"),
            Fault::Http500 => f.write_str("http500"),
            Fault::Slow { ms } => write!(f, "slow {ms}"),
            Fault::DropMidReceive => f.write_str("drop-mid-receive"),
            Fault::RebootNeverReturns => f.write_str("reboot-never-returns"),
            Fault::InstallerFails { exit_code } => write!(f, "installer-fails {exit_code}"),
            Fault::WrongVersionAfterInstall { build } => {
                write!(f, "wrong-version-after-install {build}")
            }
            Fault::ClusterServiceFailsToStart => f.write_str("cluster-service-fails-to-start"),
            Fault::GroupMoveFails { group } => write!(f, "group-move-fails \"{group}\""),
        }
    }
}
