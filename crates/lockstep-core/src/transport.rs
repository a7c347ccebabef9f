//! The [`Transport`] trait: how the engine reaches a node. `lockstep-winrm` implements it over
//! WinRM; the engine never names the protocol.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::name::Name;

/// What a finished command left behind, decoded to text from the shell's code page.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CommandOutput {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Process exit code.
    pub exit_code: i32,
}

/// One WMI object returned by a WQL query: property name to value as text.
pub type WmiObject = BTreeMap<String, String>;

/// Why a transport call failed. The variant says whether the command may have started, which
/// decides whether it may be retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The node could not be reached (refused, no route, TLS handshake failed) before anything was
    /// sent: safe to retry.
    #[error("host `{host}` is unreachable: {detail}")]
    Unreachable {
        /// Host.
        host: Name,
        /// What happened.
        detail: String,
    },
    /// The node rejected the credentials.
    #[error("host `{host}` rejected the credentials of user `{user}`")]
    AuthRejected {
        /// Host.
        host: Name,
        /// User name (never the password).
        user: String,
    },
    /// The connection broke after the command was sent: it may have run.
    #[error("connection to host `{host}` broke while a command was running: {detail}")]
    Interrupted {
        /// Host.
        host: Name,
        /// What happened.
        detail: String,
    },
    /// The command ran longer than its timeout and was terminated.
    #[error("command on host `{host}` did not finish within {secs} s")]
    TimedOut {
        /// Host.
        host: Name,
        /// The timeout.
        secs: u64,
    },
    /// The node answered something the protocol does not allow, or a SOAP fault.
    #[error("host `{host}` answered with a protocol error: {detail}")]
    Protocol {
        /// Host.
        host: Name,
        /// What it answered.
        detail: String,
    },
    /// The node refused the request because a WinRM quota of the account is exhausted
    /// (`w:QuotaLimit`: `MaxShellsPerUser`, `MaxConcurrentOperationsPerUser`...). Nothing was
    /// started; shells left open by other clients or runs count against it.
    #[error("host `{host}` refused the request: the WinRM quota `{quota}` of the account is exhausted ({detail})")]
    Quota {
        /// Host.
        host: Name,
        /// The quota setting (`MaxShellsPerUser`).
        quota: String,
        /// The node's fault.
        detail: String,
    },
    /// No connection settings or credentials for the host.
    #[error("no connection settings for host `{host}`: {detail}")]
    Config {
        /// Host.
        host: Name,
        /// What is missing.
        detail: String,
    },
}

impl TransportError {
    /// Whether the command may have started on the node (then it must never be re-sent blindly;
    /// the step's probe decides).
    pub fn command_may_have_started(&self) -> bool {
        matches!(
            self,
            TransportError::Interrupted { .. } | TransportError::TimedOut { .. }
        )
    }

    /// Whether the node looks down (unreachable or dropped), as during a reboot.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            TransportError::Unreachable { .. } | TransportError::Interrupted { .. }
        )
    }
}

/// How the engine runs commands on nodes.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Runs a cmd.exe command line on `host` and waits for it to finish (however long it is
    /// silent) or for `timeout`, after which the command is terminated.
    async fn run(
        &self,
        host: &Name,
        command: &str,
        timeout: Duration,
    ) -> Result<CommandOutput, TransportError>;

    /// Runs a WQL query (WS-Management enumeration) in `namespace` (`root/cimv2`,
    /// `root/MSCluster`): the locale-independent way to read state.
    async fn wql(
        &self,
        host: &Name,
        namespace: &str,
        query: &str,
    ) -> Result<Vec<WmiObject>, TransportError>;

    /// Forgets pooled shells and connections to `host` (after a reboot or a broken connection).
    async fn reset(&self, host: &Name);
}
