//! What a [`super::LabServer`] served, for benchmarks and tests that count round trips.

use std::sync::atomic::{AtomicU64, Ordering};

use super::ns;

/// Requests served by every host since the server started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// HTTP requests received (authentication legs and refused requests included).
    pub http_requests: u64,
    /// 401 answers carrying an NTLM/SPNEGO challenge (the first leg of a connection's
    /// authentication).
    pub challenges: u64,
    /// 401 answers refusing a request (no, wrong or stale credentials, an unsealed body).
    pub rejections: u64,
    /// Connections authenticated with Kerberos (raw, in `Negotiate`, or in SPNEGO).
    pub kerberos_logons: u64,
    /// Connections authenticated with NTLM (raw or in SPNEGO).
    pub ntlm_logons: u64,
    /// HTTPS connections authenticated by a mapped client certificate.
    pub certificate_logons: u64,
    /// SOAP messages handled, by action.
    pub creates: u64,
    /// Command messages.
    pub commands: u64,
    /// Receive messages.
    pub receives: u64,
    /// Signal messages.
    pub signals: u64,
    /// Delete messages.
    pub deletes: u64,
    /// Any other action (Send, Enumerate, Pull...).
    pub other: u64,
    /// SOAP messages whose `MessageID` the host had already received: requests sent again.
    pub repeated_messages: u64,
}

impl std::fmt::Display for ServerStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} HTTP requests ({} NTLM challenges, {} refused with 401); SOAP: {} Create, {} Command, {} Receive, {} Signal, {} Delete, {} other; {} sent again (repeated MessageID)",
            self.http_requests,
            self.challenges,
            self.rejections,
            self.creates,
            self.commands,
            self.receives,
            self.signals,
            self.deletes,
            self.other,
            self.repeated_messages
        )
    }
}

/// The live counters behind [`ServerStats`].
#[derive(Debug, Default)]
pub struct Counters {
    pub http_requests: AtomicU64,
    pub challenges: AtomicU64,
    pub rejections: AtomicU64,
    pub kerberos_logons: AtomicU64,
    pub ntlm_logons: AtomicU64,
    pub certificate_logons: AtomicU64,
    creates: AtomicU64,
    commands: AtomicU64,
    receives: AtomicU64,
    signals: AtomicU64,
    deletes: AtomicU64,
    other: AtomicU64,
    pub repeated_messages: AtomicU64,
}

/// Adds one.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// Counts a SOAP message by its action.
    pub fn action(&self, action: &str) {
        bump(match action {
            ns::ACTION_CREATE => &self.creates,
            ns::ACTION_COMMAND => &self.commands,
            ns::ACTION_RECEIVE => &self.receives,
            ns::ACTION_SIGNAL => &self.signals,
            ns::ACTION_DELETE => &self.deletes,
            _ => &self.other,
        });
    }

    /// A snapshot.
    pub fn snapshot(&self) -> ServerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ServerStats {
            http_requests: get(&self.http_requests),
            challenges: get(&self.challenges),
            rejections: get(&self.rejections),
            kerberos_logons: get(&self.kerberos_logons),
            ntlm_logons: get(&self.ntlm_logons),
            certificate_logons: get(&self.certificate_logons),
            creates: get(&self.creates),
            commands: get(&self.commands),
            receives: get(&self.receives),
            signals: get(&self.signals),
            deletes: get(&self.deletes),
            other: get(&self.other),
            repeated_messages: get(&self.repeated_messages),
        }
    }
}
