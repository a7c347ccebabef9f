//! [`ActionError`]: why an action stopped, with the halt class the engine reports.

use lockstep_core::{HaltClass, Name, TransportError};

/// Why an action did not complete. The message names the objects involved in backticks and,
/// where one applies, the KB 328839 rule id; `output` and `exit_code` carry what the node said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    /// How the engine halts on it.
    pub class: HaltClass,
    /// The host the failing command or query ran on.
    pub host: Name,
    /// What went wrong, for a person.
    pub message: String,
    /// The command's output (stdout then stderr), empty when nothing ran.
    pub output: String,
    /// The command's exit code, when a command finished.
    pub exit_code: Option<i32>,
    /// The transport failure behind the error, when the node could not be asked at all
    /// (refused, credentials, timeout): `lockstep facts` reports hosts by it.
    pub transport: Option<Box<TransportError>>,
}

impl ActionError {
    /// An error with no command output.
    pub fn new(class: HaltClass, host: &Name, message: impl Into<String>) -> Self {
        ActionError {
            class,
            host: host.clone(),
            message: message.into(),
            output: String::new(),
            exit_code: None,
            transport: None,
        }
    }

    /// A [`HaltClass::Precondition`] error.
    pub fn precondition(host: &Name, message: impl Into<String>) -> Self {
        Self::new(HaltClass::Precondition, host, message)
    }

    /// A [`HaltClass::StepFailed`] error.
    pub fn step_failed(host: &Name, message: impl Into<String>) -> Self {
        Self::new(HaltClass::StepFailed, host, message)
    }

    /// A [`HaltClass::VersionMismatch`] error.
    pub fn version_mismatch(host: &Name, message: impl Into<String>) -> Self {
        Self::new(HaltClass::VersionMismatch, host, message)
    }

    /// A [`HaltClass::NodeUnreachable`] error.
    pub fn unreachable(host: &Name, message: impl Into<String>) -> Self {
        Self::new(HaltClass::NodeUnreachable, host, message)
    }

    /// Attaches a finished command's output and exit code.
    pub fn with_output(mut self, output: impl Into<String>, exit_code: Option<i32>) -> Self {
        self.output = output.into();
        self.exit_code = exit_code;
        self
    }

    /// Maps a transport failure: a node that could not be reached, dropped the connection or
    /// did not answer in time is [`HaltClass::NodeUnreachable`]; anything else (credentials,
    /// protocol faults, an exhausted WinRM quota, missing settings) is [`HaltClass::StepFailed`]. `what` says what was
    /// being done (``running `net stop clussvc` ``).
    pub fn from_transport(host: &Name, what: &str, err: &TransportError) -> Self {
        let class = match err {
            TransportError::Unreachable { .. }
            | TransportError::Interrupted { .. }
            | TransportError::TimedOut { .. } => HaltClass::NodeUnreachable,
            TransportError::AuthRejected { .. }
            | TransportError::Protocol { .. }
            | TransportError::Quota { .. }
            | TransportError::Config { .. } => HaltClass::StepFailed,
        };
        let mut e = Self::new(
            class,
            host,
            format!("{what} on host `{host}` failed: {err}"),
        );
        e.transport = Some(Box::new(err.clone()));
        e
    }
}
