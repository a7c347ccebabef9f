//! What a failed WinRM exchange means for the command: whether the request may have reached
//! the node.

/// A failed exchange, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No connection could be made: the request was not sent.
    Connect(String),
    /// The request may have been sent (the connection broke, or no answer in time).
    Broken(String),
    /// HTTP 401: the credentials were refused.
    AuthRejected(String),
    /// The long poll ended without output (`w:TimedOut`): an empty poll, not an error.
    PollTimedOut,
    /// The node answered a SOAP fault: it read the request and refused it.
    Fault(String),
    /// The node refused the request with `w:QuotaLimit`: a quota of the account (named) is
    /// exhausted. Nothing was done.
    Quota {
        /// The quota setting (`MaxShellsPerUser`).
        quota: &'static str,
        /// The fault.
        detail: String,
    },
    /// Anything else the node answered that makes no sense (HTTP 500 without a fault, bad XML).
    Protocol(String),
}

impl Failure {
    /// The text for a person.
    pub fn detail(&self) -> String {
        match self {
            Failure::Connect(d)
            | Failure::Broken(d)
            | Failure::AuthRejected(d)
            | Failure::Fault(d)
            | Failure::Protocol(d)
            | Failure::Quota { detail: d, .. } => d.clone(),
            Failure::PollTimedOut => "the operation timed out (empty poll)".to_owned(),
        }
    }
}
