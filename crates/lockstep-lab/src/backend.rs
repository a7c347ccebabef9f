//! The seam between the WinRM server ([`crate::server`]) and the simulated Windows fleet
//! ([`crate::model`]).
//!
//! The server knows HTTP, SOAP, authentication and code pages and nothing about Windows; the model
//! knows services, clusters and Exchange and nothing about the wire. Text crosses this seam as
//! Rust `String`s: the server encodes it in the shell's code page.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

/// One WMI object: property name to value as text.
pub type WmiObject = BTreeMap<String, String>;

/// What a running process produces, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessEvent {
    /// Text on standard output.
    Stdout(String),
    /// Text on standard error.
    Stderr(String),
    /// The process ended with this exit code; nothing follows.
    Exit(i32),
}

/// A started process, as the server sees it.
#[derive(Debug)]
pub struct ProcessHandle {
    /// Output and the exit, in order. The sender is dropped after `Exit`.
    pub events: mpsc::UnboundedReceiver<ProcessEvent>,
    /// Bytes sent to the process's standard input (WinRM `Send`).
    pub stdin: mpsc::UnboundedSender<Vec<u8>>,
    /// Fired on WinRM `Signal` terminate or ctrl_c; the process then exits (code 0xC000013A for
    /// ctrl_c as on Windows, or is simply dropped on terminate).
    pub terminate: Option<oneshot::Sender<()>>,
}

/// Whether a host's endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// Accepting connections.
    Up,
    /// Refusing connections (rebooting, powered off, or a `refuse` fault).
    Down,
}

/// Faults the server itself applies to a host's traffic (the model applies the others).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtocolFaults {
    /// Answer every request with HTTP 500 and an empty body.
    pub http_500: bool,
    /// Delay every response by this much.
    pub delay: Option<Duration>,
    /// Close the TCP connection instead of answering the next Receive that would carry output
    /// or the exit (once per arming: the model clears it when the server reports it used).
    pub drop_mid_receive: bool,
}

/// A host the server makes an endpoint for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// Computer name.
    pub name: String,
    /// The node's OEM code page (437, 850, 852, 932): used when the shell asks for none.
    pub oem_codepage: u32,
    /// Locale tag (`cs-CZ`) for `xml:lang` in responses.
    pub locale: String,
}

/// Why a WQL query failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WqlError {
    /// The namespace's provider is not available (e.g. `root/MSCluster` while the Cluster
    /// service is stopped).
    #[error("namespace `{0}` is not available on this node")]
    NamespaceUnavailable(String),
    /// The query is not valid WQL or names an unknown class.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
}

/// What the server asks of the simulated fleet.
pub trait Backend: Send + Sync + 'static {
    /// Every host to serve, in a stable order.
    fn hosts(&self) -> Vec<HostInfo>;
    /// Whether the host's endpoint answers right now.
    fn availability(&self, host: &str) -> Availability;
    /// Faults the server applies to this host's traffic right now.
    fn protocol_faults(&self, host: &str) -> ProtocolFaults;
    /// Tells the model a one-shot protocol fault was used (e.g. `drop_mid_receive`).
    fn protocol_fault_used(&self, host: &str);
    /// Increases at every boot of the host: the server forgets the host's shells when it changes.
    fn boot_epoch(&self, host: &str) -> u64;
    /// Starts `command_line` (as cmd.exe received it) on `host` in a WinRM session.
    /// `delegable`: the session holds credentials it may pass on to another server (Kerberos
    /// with delegation, CredSSP); without them a process cannot open a UNC path (the double
    /// hop). Basic, NTLM and Negotiate-NTLM sessions never do.
    fn start_in_session(&self, host: &str, command_line: &str, delegable: bool) -> ProcessHandle;
    /// Starts `command_line` as a process of a console logon, which holds its credentials
    /// (the model's own tests).
    fn start(&self, host: &str, command_line: &str) -> ProcessHandle {
        self.start_in_session(host, command_line, true)
    }
    /// Runs a WQL query on `host`.
    fn wql(&self, host: &str, namespace: &str, query: &str) -> Result<Vec<WmiObject>, WqlError>;
}
