//! [`WinrmTransport`]: the engine's [`Transport`] over winrm-rs.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lockstep_core::{Auth, CommandOutput, Name, Scheme, Transport, TransportError, WmiObject};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use winrm_rs::{
    AuthMethod, EncryptionMode, WinrmClient, WinrmConfig, WinrmCredentials, WinrmError,
};

use crate::codepage;
use crate::failure::Failure;
use crate::target::{Limits, NodeTarget};
use crate::wql::parse_items;

/// Output kept per stream of one command: the tail beyond this is all a report can show anyway
/// (the engine keeps the last 64 KiB).
const MAX_STREAM_BYTES: usize = 8 * 1024 * 1024;

/// How many times an NTLM request refused with 401 is sent again before the credentials are
/// declared rejected.
///
/// NTLM authenticates a TCP connection: the Negotiate leg and the Authenticate leg (which carries
/// the SOAP body) must travel on the same connection. winrm-rs 1.1 leaves that to reqwest's
/// connection pool, and on a multi-threaded runtime the pool sometimes has not taken the first
/// connection back when the second leg starts, so the second leg goes out on a new connection and
/// the node answers 401. A 401 means the node did not process the body (nothing started), so
/// sending the request again is safe; wrong credentials are still rejected every time.
pub const AUTH_RETRIES: u32 = 4;

/// Counters of one node's traffic, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStats {
    /// Shells created (WinRM Create).
    pub shells_created: u64,
    /// Command requests sent (WinRM Command), whatever their outcome.
    pub commands_sent: u64,
    /// Receive polls that ended with the `w:TimedOut` fault (the command was silent).
    pub empty_polls: u64,
    /// Requests retried because the node could not be reached.
    pub retries: u64,
    /// NTLM requests re-sent after a spurious 401 (see [`AUTH_RETRIES`]).
    pub auth_retries: u64,
}

#[derive(Default)]
struct Counters {
    shells_created: AtomicU64,
    commands_sent: AtomicU64,
    empty_polls: AtomicU64,
    retries: AtomicU64,
    auth_retries: AtomicU64,
}

/// A shell checked out of a node's pool.
struct Lease {
    id: String,
    generation: u64,
    reused: bool,
}

#[derive(Default)]
struct Pool {
    idle: Vec<String>,
    /// Bumped by `reset`: shells leased before it are not given back.
    generation: u64,
}

struct Node {
    target: NodeTarget,
    client: WinrmClient,
    permits: Semaphore,
    pool: Mutex<Pool>,
    counters: Counters,
}

impl Node {
    fn addr(&self) -> &str {
        &self.target.address
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take_idle(&self) -> Option<Lease> {
        let mut pool = self.pool();
        let generation = pool.generation;
        pool.idle.pop().map(|id| Lease {
            id,
            generation,
            reused: true,
        })
    }

    fn generation(&self) -> u64 {
        self.pool().generation
    }

    /// Returns a healthy shell to the pool, unless the node was reset meanwhile.
    fn give_back(self: &Arc<Self>, lease: Lease) {
        let mut pool = self.pool();
        if pool.generation == lease.generation {
            pool.idle.push(lease.id);
        } else {
            drop(pool);
            self.delete_in_background(lease.id);
        }
    }

    /// Forgets idle shells and bumps the generation; returns the shells forgotten.
    fn reset(&self) -> Vec<String> {
        let mut pool = self.pool();
        pool.generation += 1;
        std::mem::take(&mut pool.idle)
    }

    /// Deletes a shell without waiting (best effort: the node may be down).
    fn delete_in_background(self: &Arc<Self>, shell: String) {
        let node = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = node.client.delete_shell(node.addr(), &shell).await {
                tracing::debug!(host = %node.target.name, error = %e, "best-effort shell delete failed");
            }
        });
    }

    /// Runs one WinRM request, sending it again (NTLM only) after a 401: see [`AUTH_RETRIES`].
    async fn retry_401<T, F, Fut>(&self, mut call: F) -> Result<T, WinrmError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, WinrmError>>,
    {
        let mut sent_again = 0;
        loop {
            match call().await {
                Err(e)
                    if self.target.auth == Auth::Ntlm
                        && sent_again < AUTH_RETRIES
                        && matches!(Failure::of(&e), Failure::AuthRejected(_)) =>
                {
                    sent_again += 1;
                    self.counters.auth_retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(host = %self.target.name, sent_again, "NTLM request refused with 401, sending it again");
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(sent_again))).await;
                }
                other => return other,
            }
        }
    }

    fn stats(&self) -> NodeStats {
        NodeStats {
            shells_created: self.counters.shells_created.load(Ordering::Relaxed),
            commands_sent: self.counters.commands_sent.load(Ordering::Relaxed),
            empty_polls: self.counters.empty_polls.load(Ordering::Relaxed),
            retries: self.counters.retries.load(Ordering::Relaxed),
            auth_retries: self.counters.auth_retries.load(Ordering::Relaxed),
        }
    }
}

/// The [`Transport`] over WinRM: one winrm-rs client per node, one reusable cmd shell per
/// concurrent command, a Receive long-poll loop that survives silent commands of any length, and
/// retries only where the command cannot have started.
pub struct WinrmTransport {
    nodes: HashMap<String, Arc<Node>>,
    total: Semaphore,
    limits: Limits,
}

impl fmt::Debug for WinrmTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut targets: Vec<&NodeTarget> = self.nodes.values().map(|n| &n.target).collect();
        targets.sort_by(|a, b| a.name.cmp(&b.name));
        f.debug_struct("WinrmTransport")
            .field("nodes", &targets)
            .field("limits", &self.limits)
            .finish()
    }
}

fn key(name: &str) -> String {
    name.to_ascii_uppercase()
}

fn whole_secs(d: Duration) -> u64 {
    (d.as_millis().div_ceil(1000) as u64).max(1)
}

fn config_error(host: &Name, detail: impl Into<String>) -> TransportError {
    TransportError::Config {
        host: host.clone(),
        detail: detail.into(),
    }
}

impl WinrmTransport {
    /// A transport for these nodes. Fails with [`TransportError::Config`] on Basic over plain
    /// HTTP without `allow_basic_over_http`, an unsupported code page, a duplicate node, or a
    /// zero limit.
    pub fn new(nodes: Vec<NodeTarget>, limits: Limits) -> Result<Self, TransportError> {
        let mut map = HashMap::new();
        let proxy_configured = proxy_configured();
        for target in nodes {
            let host = target.name.clone();
            if limits.per_host == 0 || limits.total == 0 {
                return Err(config_error(&host, "concurrency limits must be at least 1"));
            }
            if target.auth == Auth::Basic
                && target.scheme == Scheme::Http
                && !target.allow_basic_over_http
            {
                return Err(config_error(
                    &host,
                    "Basic authentication over plain HTTP sends the password in clear text: use \
                     HTTPS, NTLM, or set `allow_basic_over_http`",
                ));
            }
            let cp = target.shell_codepage();
            if !codepage::is_supported(cp) {
                return Err(config_error(
                    &host,
                    format!("code page `{cp}` is not supported"),
                ));
            }
            if !codepage::is_supported(target.oem_codepage) {
                return Err(config_error(
                    &host,
                    format!("OEM code page `{}` is not supported", target.oem_codepage),
                ));
            }
            let tls_unused = target.scheme == Scheme::Http && !proxy_configured;
            let config = WinrmConfig {
                port: target.port,
                use_tls: target.scheme == Scheme::Https,
                // A plain-HTTP client with no proxy never negotiates TLS (redirects are off), yet
                // building its verifier loads and parses the whole system root store: 90 MB and
                // 2 s of CPU over 1,000 nodes. `NoVerifier` skips that load and verifies nothing
                // that could ever be presented. With a proxy (which may be HTTPS) the roots stay.
                accept_invalid_certs: (target.scheme == Scheme::Https && !target.verify_tls)
                    || tls_unused,
                connect_timeout_secs: whole_secs(limits.connect_timeout),
                operation_timeout_secs: whole_secs(limits.operation_timeout),
                auth_method: match target.auth {
                    Auth::Ntlm => AuthMethod::Ntlm,
                    Auth::Basic => AuthMethod::Basic,
                },
                // We retry ourselves, only where the command cannot have started.
                max_retries: 0,
                codepage: cp,
                // winrm-rs 1.1 cannot seal NTLM messages over HTTP.
                encryption: EncryptionMode::Never,
                // We cap output ourselves.
                max_output_bytes: None,
                ..WinrmConfig::default()
            };
            let credentials = credentials(&target);
            let build = || WinrmClient::new(config, credentials);
            let client = if tls_unused {
                // winrm-rs warns that certificate checks are off: there is no certificate here.
                tracing::subscriber::with_default(
                    tracing::subscriber::NoSubscriber::default(),
                    build,
                )
            } else {
                build()
            }
            .map_err(|e| config_error(&host, format!("cannot build the WinRM client: {e}")))?;
            let node = Node {
                permits: Semaphore::new(limits.per_host),
                client,
                target,
                pool: Mutex::new(Pool::default()),
                counters: Counters::default(),
            };
            if map.insert(key(host.as_str()), Arc::new(node)).is_some() {
                return Err(config_error(&host, "the host is listed twice"));
            }
        }
        Ok(WinrmTransport {
            nodes: map,
            total: Semaphore::new(limits.total.max(1)),
            limits,
        })
    }

    /// How many times an NTLM request refused with 401 is sent again before the credentials are
    /// declared rejected.
    ///
    /// NTLM authenticates a TCP connection: the Negotiate leg and the Authenticate leg (which carries
    /// the SOAP body) must travel on the same connection. winrm-rs 1.1 leaves that to reqwest's
    /// connection pool, and on a multi-threaded runtime the pool sometimes has not taken the first
    /// connection back when the second leg starts, so the second leg goes out on a new connection and
    /// the node answers 401. A 401 means the node did not process the body (nothing started), so
    /// sending the request again is safe; wrong credentials are still rejected every time.
    pub const AUTH_RETRIES: u32 = 4;

    /// Counters of one node's traffic (`None` for an unknown host).
    pub fn stats(&self, host: &Name) -> Option<NodeStats> {
        self.nodes.get(&key(host.as_str())).map(|n| n.stats())
    }

    /// Deletes every idle shell (best effort) and waits for the deletes; call before dropping the
    /// transport so the nodes do not keep shells until their idle timeout.
    ///
    /// Nodes are closed concurrently (at most `limits.total` deletes at once): one after the other,
    /// 1,000 nodes would add a round trip each to the end of a run.
    pub async fn close(&self) {
        let deletes = self.nodes.values().flat_map(|node| {
            node.reset().into_iter().map(move |shell| async move {
                let _permit = self.total.acquire().await;
                let delete = node.client.delete_shell(node.addr(), &shell);
                match tokio::time::timeout(self.limits.connect_timeout * 2, delete).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(host = %node.target.name, error = %e, "shell delete failed")
                    }
                    Err(_) => tracing::debug!(host = %node.target.name, "shell delete timed out"),
                }
            })
        });
        futures::future::join_all(deletes).await;
    }

    fn node(&self, host: &Name) -> Result<&Arc<Node>, TransportError> {
        self.nodes
            .get(&key(host.as_str()))
            .ok_or_else(|| config_error(host, "the host is not among the transport's nodes"))
    }

    /// Sleeps before retry `attempt` (0-based) if the retry budget and the deadline allow it;
    /// `false` if not.
    async fn backoff(&self, node: &Node, attempt: &mut u32, deadline: Instant) -> bool {
        if *attempt >= self.limits.retries {
            return false;
        }
        let delay = self
            .limits
            .backoff_base
            .saturating_mul(1u32 << (*attempt).min(16));
        if Instant::now() + delay >= deadline {
            return false;
        }
        *attempt += 1;
        node.counters.retries.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(host = %node.target.name, attempt = *attempt, ?delay, "node unreachable, retrying");
        tokio::time::sleep(delay).await;
        true
    }

    /// A shell: an idle one from the pool, or a new one (retried while the node cannot be
    /// reached: nothing runs in a shell yet).
    async fn lease(
        &self,
        node: &Arc<Node>,
        attempt: &mut u32,
        deadline: Instant,
    ) -> Result<Lease, TransportError> {
        let host = &node.target.name;
        loop {
            if let Some(lease) = node.take_idle() {
                return Ok(lease);
            }
            let generation = node.generation();
            match node
                .retry_401(|| node.client.create_shell(node.addr()))
                .await
            {
                Ok(id) => {
                    node.counters.shells_created.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(host = %host, shell = %id, "shell created");
                    return Ok(Lease {
                        id,
                        generation,
                        reused: false,
                    });
                }
                Err(e) => match Failure::of(&e) {
                    Failure::Connect(d) | Failure::Broken(d) => {
                        if !self.backoff(node, attempt, deadline).await {
                            return Err(TransportError::Unreachable {
                                host: host.clone(),
                                detail: d,
                            });
                        }
                    }
                    Failure::AuthRejected(_) => return Err(self.auth_rejected(node)),
                    other => {
                        return Err(TransportError::Protocol {
                            host: host.clone(),
                            detail: format!("creating a shell: {}", other.detail()),
                        })
                    }
                },
            }
        }
    }

    fn auth_rejected(&self, node: &Node) -> TransportError {
        TransportError::AuthRejected {
            host: node.target.name.clone(),
            user: node.target.user.clone(),
        }
    }

    async fn run_on(
        &self,
        node: &Arc<Node>,
        command: &str,
        timeout: Duration,
    ) -> Result<CommandOutput, TransportError> {
        let host = &node.target.name;
        let deadline = Instant::now() + timeout;
        let mut attempt = 0u32;
        let mut replaced_stale = false;

        // Start the command. Only a request that cannot have reached the node is ever re-sent.
        let (lease, command_id) = loop {
            // The step timeout bounds the wait for a shell too; nothing has started yet.
            let lease = tokio::time::timeout_at(deadline, self.lease(node, &mut attempt, deadline))
                .await
                .map_err(|_| TransportError::Unreachable {
                    host: host.clone(),
                    detail: format!("no shell within the {} s timeout", timeout.as_secs()),
                })??;
            node.counters.commands_sent.fetch_add(1, Ordering::Relaxed);
            match node
                .retry_401(|| {
                    node.client
                        .execute_command(node.addr(), &lease.id, command, &[])
                })
                .await
            {
                Ok(id) => break (lease, id),
                Err(e) => match Failure::of(&e) {
                    Failure::Connect(d) => {
                        // Not sent. The shell may be gone with a reboot: start from a new one.
                        if !self.backoff(node, &mut attempt, deadline).await {
                            return Err(TransportError::Unreachable {
                                host: host.clone(),
                                detail: d,
                            });
                        }
                    }
                    Failure::AuthRejected(_) => return Err(self.auth_rejected(node)),
                    Failure::Fault(d) if lease.reused && !replaced_stale => {
                        // The node refused the request (nothing started): a pooled shell the
                        // node has forgotten (idle timeout, WinRM restart). Once, with a new one.
                        tracing::debug!(host = %host, shell = %lease.id, detail = %d, "pooled shell refused, replacing it");
                        replaced_stale = true;
                        node.delete_in_background(lease.id);
                    }
                    Failure::Fault(d) => {
                        node.delete_in_background(lease.id);
                        return Err(TransportError::Protocol {
                            host: host.clone(),
                            detail: format!("starting the command: {d}"),
                        });
                    }
                    other => {
                        // The request may have reached the node: never send it again.
                        return Err(TransportError::Interrupted {
                            host: host.clone(),
                            detail: format!("sending the command: {}", other.detail()),
                        });
                    }
                },
            }
        };
        tracing::debug!(host = %host, shell = %lease.id, command = %command_id, "command started");

        // Receive until done; a `w:TimedOut` fault is an empty poll of a silent command.
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let exit_code = loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(self.terminate(node, lease, &command_id, timeout).await);
            }
            let poll = node.retry_401(|| {
                node.client
                    .receive_output(node.addr(), &lease.id, &command_id)
            });
            match tokio::time::timeout(deadline - now, poll).await {
                Err(_) => return Err(self.terminate(node, lease, &command_id, timeout).await),
                Ok(Ok(out)) => {
                    push_capped(&mut stdout, &out.stdout);
                    push_capped(&mut stderr, &out.stderr);
                    if out.done {
                        break out.exit_code;
                    }
                }
                Ok(Err(e)) => match Failure::of(&e) {
                    Failure::PollTimedOut => {
                        node.counters.empty_polls.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        // The command is (or was) running: forget the shell without deleting it
                        // (a delete would kill the command) and let the step's probe decide.
                        return Err(TransportError::Interrupted {
                            host: host.clone(),
                            detail: format!("receiving output: {}", other.detail()),
                        });
                    }
                },
            }
        };

        // Release the finished command as Windows clients do; a shell that cannot take that is
        // not reused.
        match node
            .retry_401(|| {
                node.client
                    .signal_terminate(node.addr(), &lease.id, &command_id)
            })
            .await
        {
            Ok(()) => node.give_back(lease),
            Err(e) => {
                tracing::debug!(host = %host, error = %e, "signal after completion failed; dropping the shell");
                node.delete_in_background(lease.id);
            }
        }

        let exit_code = exit_code.ok_or_else(|| TransportError::Protocol {
            host: host.clone(),
            detail: "the command finished without an exit code".to_owned(),
        })?;
        let cp = node.target.shell_codepage();
        let oem = node.target.oem_codepage;
        Ok(CommandOutput {
            stdout: codepage::decode(&stdout, cp, oem),
            stderr: codepage::decode(&stderr, cp, oem),
            exit_code,
        })
    }

    /// The step timeout passed: terminate the command, drop its shell, report the timeout.
    async fn terminate(
        &self,
        node: &Arc<Node>,
        lease: Lease,
        command_id: &str,
        timeout: Duration,
    ) -> TransportError {
        let host = &node.target.name;
        tracing::warn!(host = %host, secs = timeout.as_secs(), "command timed out, terminating it");
        let signal = node.retry_401(|| {
            node.client
                .signal_terminate(node.addr(), &lease.id, command_id)
        });
        match tokio::time::timeout(self.limits.operation_timeout, signal).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(host = %host, error = %e, "terminate signal failed"),
            Err(_) => tracing::warn!(host = %host, "terminate signal got no answer"),
        }
        node.delete_in_background(lease.id);
        TransportError::TimedOut {
            host: host.clone(),
            secs: timeout.as_secs(),
        }
    }
}

/// Whether the environment names a proxy that reqwest would use for plain-HTTP requests.
fn proxy_configured() -> bool {
    ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

fn credentials(target: &NodeTarget) -> WinrmCredentials {
    let password = target.password.expose();
    match target.auth {
        // NTLM carries the domain separately; `user@domain` goes whole as the user name.
        Auth::Ntlm => match target.user.split_once('\\') {
            Some((domain, user)) => WinrmCredentials::new(user, password, domain),
            None => WinrmCredentials::new(target.user.as_str(), password, ""),
        },
        Auth::Basic => WinrmCredentials::new(target.user.as_str(), password, ""),
    }
}

/// Appends, keeping at most the last [`MAX_STREAM_BYTES`].
fn push_capped(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(bytes);
    if buf.len() > MAX_STREAM_BYTES {
        let cut = buf.len() - MAX_STREAM_BYTES;
        buf.drain(..cut);
    }
}

#[async_trait]
impl Transport for WinrmTransport {
    async fn run(
        &self,
        host: &Name,
        command: &str,
        timeout: Duration,
    ) -> Result<CommandOutput, TransportError> {
        let node = self.node(host)?;
        let _host = node
            .permits
            .acquire()
            .await
            .map_err(|_| config_error(host, "closed"))?;
        let _total = self
            .total
            .acquire()
            .await
            .map_err(|_| config_error(host, "closed"))?;
        self.run_on(node, command, timeout).await
    }

    async fn wql(
        &self,
        host: &Name,
        namespace: &str,
        query: &str,
    ) -> Result<Vec<WmiObject>, TransportError> {
        let node = self.node(host)?;
        let _host = node
            .permits
            .acquire()
            .await
            .map_err(|_| config_error(host, "closed"))?;
        let _total = self
            .total
            .acquire()
            .await
            .map_err(|_| config_error(host, "closed"))?;
        let namespace = namespace.replace('\\', "/");
        // A query changes nothing: retrying it is always safe.
        let deadline = Instant::now() + self.limits.operation_timeout * 4;
        let mut attempt = 0u32;
        loop {
            match node
                .retry_401(|| node.client.run_wql(node.addr(), query, Some(&namespace)))
                .await
            {
                Ok(items) => {
                    return parse_items(&items).map_err(|d| TransportError::Protocol {
                        host: host.clone(),
                        detail: format!("WQL items: {d}"),
                    })
                }
                Err(e) => match Failure::of(&e) {
                    Failure::Connect(d) | Failure::Broken(d) => {
                        if !self.backoff(node, &mut attempt, deadline).await {
                            return Err(TransportError::Unreachable {
                                host: host.clone(),
                                detail: d,
                            });
                        }
                    }
                    Failure::AuthRejected(_) => return Err(self.auth_rejected(node)),
                    other => {
                        return Err(TransportError::Protocol {
                            host: host.clone(),
                            detail: format!("WQL `{query}` in `{namespace}`: {}", other.detail()),
                        })
                    }
                },
            }
        }
    }

    async fn reset(&self, host: &Name) {
        if let Some(node) = self.nodes.get(&key(host.as_str())) {
            for shell in node.reset() {
                node.delete_in_background(shell);
            }
        }
    }
}
