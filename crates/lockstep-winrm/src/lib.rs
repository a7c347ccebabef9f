//! The WinRM [`Transport`](lockstep_core::Transport) of Lockstep, over the winrm-rs 1.1 client.
//!
//! [`WinrmTransport`] holds one winrm-rs client per node ([`NodeTarget`]: address, port, scheme,
//! NTLM or Basic, credentials as a redacting [`Secret`], code pages) and runs cmd.exe command
//! lines in pooled shells, at most [`Limits::per_host`] at once per node and [`Limits::total`]
//! overall. It drives the low-level WinRM calls itself: Create (once per pooled shell), Command,
//! then Receive in a loop where the `w:TimedOut` fault of a long poll is an empty poll, so an
//! installer may stay silent for an hour; Signal terminate when the step timeout passes. Only a
//! request that cannot have started the command (no connection could be made) is retried, with
//! exponential backoff; once a Command may have reached the node a failure is
//! [`TransportError::Interrupted`](lockstep_core::TransportError::Interrupted) and the command is
//! never re-sent. An NTLM request refused with 401 is sent again a few times ([`AUTH_RETRIES`]):
//! a 401 means the node processed nothing, and winrm-rs 1.1 sometimes splits the two NTLM legs
//! across pooled connections on a multi-threaded runtime. Output is decoded from the shell's code page ([`codepage`]), falling back to the
//! node's OEM code page; WQL answers become [`WmiObject`](lockstep_core::WmiObject)s
//! ([`wql::parse_items`]).
//!
//! Security: NTLM messages are not sealed (winrm-rs 1.1 cannot seal over HTTP), so a node reached
//! over HTTP needs `AllowUnencrypted=true` in its WinRM service configuration; prefer HTTPS.
//! Basic over plain HTTP is refused unless explicitly allowed. HTTPS certificates are verified
//! against the web PKI roots unless `verify_tls` is false. Passwords never reach a log or a
//! `Debug` output.
//!
//! This crate depends on `lockstep-core` only among the workspace crates; it knows nothing of the
//! engine, the store or the lab (which stays an independent oracle of the protocol).
#![deny(missing_docs)]

pub mod codepage;
mod failure;
mod target;
mod transport;
pub mod wql;

pub use target::{Limits, NodeTarget, Secret};
pub use transport::{NodeStats, WinrmTransport, AUTH_RETRIES};
