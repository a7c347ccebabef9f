//! The WinRM [`Transport`](lockstep_core::Transport) of Lockstep: reaches a Windows server
//! configured as it ships (`AllowUnencrypted=false`).
//!
//! [`WinrmTransport`] keeps, per node ([`NodeTarget`]: address, port, scheme, NTLM, Negotiate
//! (SPNEGO: Kerberos first, NTLM when no ticket can be had), Kerberos, a client certificate
//! (HTTPS only, the `secprofile/https/mutual` header) or Basic,
//! credentials as a redacting [`Secret`], code pages, CA file), a pool of AUTHENTICATED
//! connections and a pool of cmd shells, and runs command lines at most [`Limits::per_host`] at
//! once per node and [`Limits::total`] overall. A command on a pooled shell costs two HTTP round
//! trips (Command, Receive); Receive loops where the `w:TimedOut` fault of a long poll is an empty
//! poll, so an installer may stay silent for an hour; Signal terminate when the step timeout
//! passes. Only a request that cannot have started the command (no connection, or a pooled
//! connection the node had closed before anything was written) is sent again; once a Command may
//! have reached the node a failure is
//! [`TransportError::Interrupted`](lockstep_core::TransportError::Interrupted). Shells are
//! deleted by [`WinrmTransport::close`] and [`Transport::reset`](lockstep_core::Transport::reset).
//!
//! Security: NTLM (NTLMv2 from the `sspi` crate) authenticates each TCP connection once (both legs
//! on that connection, then many messages on it); over plain HTTP every body is sealed and signed
//! with the NTLM session keys (MS-WSMV 2.2.9.1 `multipart/encrypted`), as a default Windows
//! listener demands. Kerberos (the `sspi` crate's client; tickets from the KDC of the user's realm
//! over TCP, found in `krb5.conf`) does the same: one AP-REQ per connection with mutual
//! authentication, then GSS_WrapEx-sealed bodies. HTTPS is verified against the system trust store plus an optional CA file
//! (`ansible_winrm_ca_trust_path`); `verify_tls: false` is for rehearsals only. Basic over plain
//! HTTP is refused unless explicitly allowed (and a default node refuses it anyway). Passwords never
//! reach a log or a `Debug` output.
//!
//! Why its own connection layer ([`http`](crate) module) instead of winrm-rs 1.1.2, which an
//! earlier version used and which was measured against the lab: winrm-rs redoes the whole NTLM
//! handshake for every SOAP message (6 HTTP requests per command instead of 2; NTLM cost 8x Basic
//! at 200 hosts), leaves the two legs to reqwest's pool so they sometimes travel on different
//! connections (spurious 401s that halted healthy rollouts), spawns a `hostname` process per NTLM
//! request when `$HOSTNAME` is unset, cannot trust an enterprise CA (web PKI roots only), and its
//! message sealing had never met a server that checks it. Its SOAP envelopes are private, so the
//! messages are written here too ([`soap`](crate) module), from MS-WSMV and Windows' captures.
//!
//! Output is decoded from the shell's code page ([`codepage`]), falling back to the node's OEM
//! code page; WQL answers become [`WmiObject`](lockstep_core::WmiObject)s ([`wql::parse_items`]).
//!
//! This crate depends on `lockstep-core` only among the workspace crates; it knows nothing of the
//! engine, the store or the lab (which stays an independent oracle of the protocol).
#![deny(missing_docs)]

pub mod codepage;
mod failure;
mod http;
mod ntlm_seal;
mod soap;
mod target;
mod tls;
mod transport;
pub mod wql;

pub use target::{ClientCertificate, Limits, NodeTarget, Secret};
pub use transport::{NodeStats, WinrmTransport};
