//! The lab's WinRM / WS-Management server: every simulated host gets its own HTTP(S) endpoint
//! on loopback that answers like a Windows WinRM service.
//!
//! [`LabServer::start`] binds one listener per host of a [`Backend`] and serves `POST /wsman`
//! with SOAP 1.2: the Windows Remote Shell (Create, Command, Receive long poll, Send, Signal,
//! Delete), WS-Enumeration of WQL queries (Enumerate, Pull, Release), Basic, NTLMv2 and Kerberos
//! authentication with message encryption, optional HTTPS with a lab CA, per-host code pages, and the
//! protocol faults the backend arms ([`crate::backend::ProtocolFaults`]). Responses follow the
//! real Windows captures in `tests/captures/` (golden tests compare them element by element).
//!
//! Layers, top down: `endpoint` (sockets, HTTP, auth, faults, availability) → `handler` (SOAP
//! actions) → `shells` (shell and command state, output buffering) and `response`/`request`
//! (XML out and in). The server never interprets commands: the backend runs them.
//! [`test_backend::TestBackend`] is a scripted backend for tests of WinRM clients.
//!
//! Behaviour worth knowing:
//! - **Down hosts** refuse connections: the listening socket is closed (a client sees
//!   "connection refused"), open connections are dropped, and the port is bound again when the
//!   host is up. Availability is polled every [`ServerConfig::availability_poll`] and checked at
//!   every accept and every request, so a client never gets an answer from a down host.
//! - **Reboots**: when `Backend::boot_epoch` changes, the host's shells are forgotten (the next
//!   request naming one gets the `w:InvalidSelectors` fault).
//! - **Receive** returns everything the process produced so far as soon as there is anything
//!   (or the exit), else waits up to the request's `OperationTimeout` and answers the
//!   `w:TimedOut` fault (WSManFault 2150858793, HTTP 500). A response never exceeds the
//!   request's `MaxEnvelopeSize`: more output waits for the next Receive, and the exit code comes
//!   with the last piece.
//! - **Faults**: `delay` holds every response (401s included) back; `http_500` answers every
//!   authenticated request with an empty HTTP 500; `drop_mid_receive` closes the connection
//!   instead of answering the next Receive that carries output or the exit, then calls
//!   `Backend::protocol_fault_used`. The output is kept: the client's next Receive gets it.
//! - **Options** (`WINRS_CODEPAGE`) are read from the header, and also from a `wsman:OptionSet`
//!   placed directly under the envelope, where winrm-rs 1.1 writes them. Without the option the
//!   host's OEM code page is used; a code page the host cannot use refuses the Create with
//!   `ERROR_WINRS_CODE_PAGE_NOT_SUPPORTED` (2150859072), as Windows does (no silent fallback).
//! - **Quotas** (Windows' defaults, [`ServerConfig`]): `MaxShellsPerUser` (30) refuses a Create
//!   with `w:QuotaLimit` 2150859173; `MaxConcurrentOperationsPerUser` (1500) refuses a request
//!   beyond that many being served at once on a host (a waiting Receive counts) with
//!   `w:QuotaLimit` 2150859174. The shell `IdleTimeout` (7,200,000 ms, announced in the Create
//!   answer) deletes a shell no request touched for longer (never one under a waiting Receive),
//!   killing its processes; a later request naming it gets `w:InvalidSelectors` 2150858843.
//! - **Protocol details from the captures and MS-WSMV**: every answer carries a `p:ActivityId`
//!   header (as Windows Server 2016 does); `xml:lang` is the request's `wsman:Locale`, else the
//!   host's locale; a process's output is passed on byte for byte (cmd.exe's lines end in CRLF,
//!   PowerShell's `Write-Host` in LF: the model writes each as Windows does); a
//!   `MaxEnvelopeSize` below 8192 is refused with
//!   `w:EncodingLimit` (MS-WSMV 3.1.4.1.7); every signal code of MS-WSMV 2.2.5.6 is accepted,
//!   compared without regard to case (pypsrp sends `signal/Terminate`).
//! - **Authentication** (Windows' defaults): a 401 offers `Negotiate` (and `Basic realm="WSMAN"`
//!   where Basic is allowed). NTLMv2, raw or wrapped in SPNEGO (with the mechListMIC checked and
//!   answered), is bound to the TCP connection; the proof is verified against the NT hash of
//!   [`ServerConfig::password`]. On plain HTTP with `allow_unencrypted: false` (the default, as
//!   on Windows) Basic is neither offered nor accepted, and an NTLM body must be sealed with the
//!   session keys (MS-WSMV 2.2.9.1 `multipart/encrypted`; answers are sealed back): an unsealed
//!   body gets 401. An empty authenticated POST (how pywinrm and pypsrp authenticate before
//!   sealing) gets an empty 200. HTTPS accepts sealed and unsealed bodies, and Basic.
//! - **HTTPS**: a lab CA signs each listener's certificate; [`LabServer::cert_pem`] is the CA a
//!   client trusts (no client needs certificate checks off).
//! - **Certificate authentication** (with [`TlsOptions::client_certificate_upn`], off by default
//!   as on Windows): the HTTPS listener asks for a client certificate issued by the lab CA
//!   ([`LabServer::issue_client_certificate`]); a request with `Authorization:
//!   http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual` (what pywinrm sends) on
//!   a connection whose certificate's UPN (subject alternative name, else subject CN) is the
//!   mapped one is served as the lab account; any other such request gets 401.
//! - **Kerberos** (with [`ServerConfig::kerberos`] and the `kerberos` feature): a domain
//!   member's `Negotiate` (raw Kerberos or SPNEGO) and `Kerberos` schemes, accepted by MIT's
//!   GSSAPI acceptor with the hosts' keytab for the host's own `HTTP/`/`HOST/` principal and the
//!   lab account of the realm, per TCP connection with the AP-REP of mutual authentication;
//!   bodies are sealed with GSS_WrapEx (`HTTP-SPNEGO-` or `HTTP-Kerberos-session-encrypted`,
//!   answered in the request's). Whether a session holds delegable credentials is recorded per
//!   connection. [`crate::kdc::LabKdc`] runs the realm's KDC for tests.
//! - **Not modelled**: PSRP (PowerShell remoting) shells, CredSSP, the code page reaching the
//!   backend (`chcp` in a 65001 shell prints what the model says), `MaxConcurrentUsers`,
//!   `MaxProcessesPerShell`, `MaxMemoryPerShellMB`, and the fault texts of Windows locales other
//!   than English (the `xml:lang` follows the request, the words do not).
//!
//! Written from MS-NLMP, MS-SPNG and MS-WSMV with RustCrypto primitives (`md4`, `md-5`, `hmac`,
//! `rc4`), Kerberos through MIT's libgssapi_krb5; checked by pywinrm and pypsrp with their
//! defaults (`tests/server_interop.rs`, `tests/server_kerberos.rs` with a real MIT KDC). It shares
//! no code with Lockstep's client.
//!
//! File descriptors: every host holds one listening socket plus one per open connection. The
//! crate forbids `unsafe`, so it cannot raise `RLIMIT_NOFILE` itself; [`LabServer::start`]
//! reads the limit from `/proc/self/limits` and warns when it is too low for the host count
//! (raise it with `ulimit -n` before starting thousands of hosts).

mod auth;
mod codepage;
mod config;
mod endpoint;
mod handler;
#[cfg(feature = "kerberos")]
mod kerberos;
mod ns;
mod ntlm;
mod request;
mod response;
mod seal;
mod shells;
mod spnego;
mod stats;
pub mod test_backend;
mod tls;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backend::{Availability, Backend};
pub use config::{
    AuthSchemes, KerberosConfig, Password, ServerConfig, TlsOptions, DEFAULT_LAB_DOMAIN,
    DEFAULT_LAB_PASSWORD, DEFAULT_LAB_USER,
};
pub use shells::CTRL_C_EXIT;
pub use stats::ServerStats;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The bind address is not a loopback address.
    #[error("bind address `{0}` is not in 127.0.0.0/8: the lab serves loopback only")]
    NotLoopback(IpAddr),
    /// A host's listener could not be bound.
    #[error("cannot listen for host `{host}` on `{addr}`: {source}")]
    Bind {
        /// Host name.
        host: String,
        /// Address tried.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// `base_port + host index` overflows the port range.
    #[error("host `{0}` has no port: base port + host count exceeds 65535")]
    PortRange(String),
    /// The certificate or TLS configuration could not be built.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// The Kerberos acceptor could not be set up (or the `kerberos` feature is off).
    #[error("cannot accept Kerberos: {0}")]
    Kerberos(String),
}

/// A running lab WinRM server. Dropping it without [`LabServer::shutdown`] leaves its tasks
/// running until the runtime ends.
#[derive(Debug)]
pub struct LabServer {
    endpoints: BTreeMap<String, String>,
    cert_pem: Option<String>,
    ca: Option<Arc<tls::LabCa>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    hosts: Vec<Arc<handler::HostRuntime>>,
    counters: Arc<stats::Counters>,
}

fn open_files_soft_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

impl LabServer {
    /// Binds one endpoint per host of `backend` and starts serving.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), lockstep_lab::server::ServerError> {
    /// use std::sync::Arc;
    /// use lockstep_lab::server::test_backend::TestBackend;
    /// use lockstep_lab::server::{LabServer, ServerConfig};
    ///
    /// let backend = Arc::new(TestBackend::new(3)); // NODE1..NODE3, `echo`, `exit N`, ...
    /// let server = LabServer::start(backend, ServerConfig::default()).await?;
    /// for (host, url) in server.endpoints() {
    ///     // e.g. NODE1 -> http://127.0.0.1:41234/wsman; log in as DEFAULT_LAB_USER with
    ///     // DEFAULT_LAB_PASSWORD, NTLM with message encryption (Basic only over HTTPS or
    ///     // with `allow_unencrypted`).
    ///     let _ = (host, url);
    /// }
    /// server.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub async fn start(
        backend: Arc<dyn Backend>,
        config: ServerConfig,
    ) -> Result<LabServer, ServerError> {
        if !config.bind.is_loopback() {
            return Err(ServerError::NotLoopback(IpAddr::V4(config.bind)));
        }
        let hosts = backend.hosts();
        if let Some(limit) = open_files_soft_limit() {
            let needed = hosts.len() as u64 * 2 + 256;
            if limit < needed {
                tracing::warn!(
                    limit,
                    needed,
                    hosts = hosts.len(),
                    "open-file limit is low for this many hosts: raise it with `ulimit -n`"
                );
            }
        }
        let tls = config.tls.as_ref().map(tls::generate).transpose()?;
        let mut authenticator = auth::Authenticator::new(
            &config.user,
            config.password.clone(),
            &config.domain,
            config.auth,
            tls.is_some() || config.allow_unencrypted,
        );
        if let Some(kerberos) = &config.kerberos {
            #[cfg(feature = "kerberos")]
            {
                let acceptor = kerberos::KerberosAcceptor::new(&kerberos.keytab)
                    .map_err(ServerError::Kerberos)?;
                authenticator = authenticator.with_kerberos(Arc::new(acceptor), &kerberos.realm);
            }
            #[cfg(not(feature = "kerberos"))]
            return Err(ServerError::Kerberos(format!(
                "realm {} configured but the lab was built without the `kerberos` feature",
                kerberos.realm
            )));
        }
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(endpoint::Shared {
            handler: handler::Handler::new(backend.clone(), config.user.clone())
                .with_max_shells(config.max_shells_per_user)
                .with_quotas(
                    config.max_concurrent_operations_per_user,
                    config.idle_timeout,
                ),
            auth: authenticator,
            require_encryption: tls.is_none() && !config.allow_unencrypted,
            tls: tls.as_ref().map(|t| t.acceptor.clone()),
            certificate_upn: config
                .tls
                .as_ref()
                .and_then(|t| t.client_certificate_upn.clone()),
            max_request_bytes: config.max_request_bytes,
            shutdown: shutdown.clone(),
        });
        let counters = shared.handler.counters().clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoints = BTreeMap::new();
        let mut runtimes = Vec::with_capacity(hosts.len());
        let mut listeners = Vec::with_capacity(hosts.len());
        for (index, info) in hosts.into_iter().enumerate() {
            let port = match config.base_port {
                None => 0,
                Some(base) => u16::try_from(u32::from(base) + index as u32)
                    .map_err(|_| ServerError::PortRange(info.name.clone()))?,
            };
            let wanted = SocketAddr::from((config.bind, port));
            let listener = endpoint::bind(wanted).map_err(|source| ServerError::Bind {
                host: info.name.clone(),
                addr: wanted,
                source,
            })?;
            let addr = listener.local_addr().map_err(|source| ServerError::Bind {
                host: info.name.clone(),
                addr: wanted,
                source,
            })?;
            endpoints.insert(
                info.name.clone(),
                format!("{scheme}://{}:{}/wsman", addr.ip(), addr.port()),
            );
            let up = backend.availability(&info.name) == Availability::Up;
            let epoch = backend.boot_epoch(&info.name);
            let runtime = Arc::new(handler::HostRuntime::new(info, up, epoch));
            runtimes.push(runtime.clone());
            listeners.push((runtime, listener, addr));
        }
        let mut tasks = Vec::with_capacity(listeners.len() + 1);
        for (runtime, listener, addr) in listeners {
            tasks.push(tokio::spawn(endpoint::run_host(
                shared.clone(),
                runtime,
                listener,
                addr,
            )));
        }
        tasks.push(tokio::spawn(endpoint::poll_availability(
            shared.clone(),
            runtimes.clone(),
            config.availability_poll,
        )));
        tracing::info!(hosts = endpoints.len(), scheme, "lab WinRM server started");
        Ok(LabServer {
            endpoints,
            ca: tls.as_ref().map(|t| t.ca.clone()),
            cert_pem: tls.map(|t| t.cert_pem),
            shutdown,
            tasks,
            hosts: runtimes,
            counters,
        })
    }

    /// What every host served so far: HTTP requests, authentication legs, SOAP actions, and
    /// requests sent again (a `MessageID` seen before).
    pub fn stats(&self) -> ServerStats {
        self.counters.snapshot()
    }

    /// Shells open on each host now (those a client has not deleted, that have not idled out
    /// and that no reboot took): what a client leaves behind counts against `MaxShellsPerUser`.
    pub fn open_shells(&self) -> BTreeMap<String, usize> {
        self.hosts
            .iter()
            .map(|h| (h.info.name.clone(), h.open_shells()))
            .collect()
    }

    /// Host name to endpoint URL (`http://127.0.0.1:PORT/wsman`).
    pub fn endpoints(&self) -> BTreeMap<String, String> {
        self.endpoints.clone()
    }

    /// The lab CA certificate (PEM) that signed the listeners' certificate, when serving HTTPS:
    /// what a client adds to its trust store.
    pub fn cert_pem(&self) -> Option<String> {
        self.cert_pem.clone()
    }

    /// A client certificate and its key (PEM) for `upn`, issued by the lab CA, for
    /// certificate authentication ([`TlsOptions::client_certificate_upn`]); `None` without HTTPS.
    /// The key is a secret of the test that asked for it: never logged.
    pub fn issue_client_certificate(
        &self,
        upn: &str,
    ) -> Option<Result<(String, String), ServerError>> {
        self.ca.as_ref().map(|ca| ca.issue_client(upn))
    }

    /// Stops accepting, closes every connection and waits for the tasks to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
