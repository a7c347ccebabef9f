//! [`WinrmTransport`]: the engine's [`Transport`] over Lockstep's own WinRM connection layer
//! ([`crate::http`]) and messages ([`crate::soap`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lockstep_core::{Auth, CommandOutput, Name, Scheme, Transport, TransportError, WmiObject};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::codepage;
use crate::failure::Failure;
use crate::http::{Connection, Endpoint, Mechanism, Traffic};
use crate::soap;
use crate::target::{Limits, NodeTarget};
use crate::wql::parse_items;

/// A pooled connection idle longer than this is closed rather than reused: Windows (http.sys)
/// drops idle connections after 120 s, and a request written into a connection the node is
/// closing may or may not have arrived.
const MAX_IDLE: Duration = Duration::from_secs(60);

/// Output kept per stream of one command: the tail beyond this is all a report can show anyway
/// (the engine keeps the last 64 KiB).
const MAX_STREAM_BYTES: usize = 8 * 1024 * 1024;

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
    /// HTTP requests sent (NTLM handshake legs included).
    pub http_requests: u64,
    /// TCP connections opened (each NTLM connection authenticates once).
    pub connections: u64,
    /// Shells deleted (WinRM Delete answered).
    pub shells_deleted: u64,
    /// Pooled shells the node no longer knew (its `IdleTimeout` passed), replaced by new ones.
    pub stale_shells: u64,
}

#[derive(Default)]
struct Counters {
    shells_created: AtomicU64,
    commands_sent: AtomicU64,
    empty_polls: AtomicU64,
    retries: AtomicU64,
    shells_deleted: AtomicU64,
    stale_shells: AtomicU64,
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
    endpoint: Endpoint,
    envelope: soap::Envelope,
    /// Idle authenticated connections, with when they were last used.
    connections: Mutex<Vec<(Connection, Instant)>>,
    traffic: Traffic,
    permits: Semaphore,
    pool: Mutex<Pool>,
    counters: Counters,
}

impl Node {
    /// Sends one SOAP message on an idle authenticated connection, or a new one. A pooled
    /// connection the node closed fails before anything is written ([`Failure::Connect`]): the
    /// message then goes on a new connection. Nothing that may have been sent is sent again.
    async fn call(&self, message: &str) -> Result<String, Failure> {
        loop {
            let pooled = {
                let mut idle = self.connections.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                idle.retain(|(c, at)| !c.is_closed() && now.duration_since(*at) < MAX_IDLE);
                idle.pop().map(|(c, _)| c)
            };
            let (mut connection, reused) = match pooled {
                Some(c) => (c, true),
                None => (
                    Connection::open(&self.endpoint, &self.traffic).await?,
                    false,
                ),
            };
            let result = connection
                .send(&self.endpoint, message, &self.traffic)
                .await;
            match &result {
                Ok(_) | Err(Failure::Fault(_)) | Err(Failure::PollTimedOut) => {
                    let mut idle = self.connections.lock().unwrap_or_else(|p| p.into_inner());
                    idle.push((connection, Instant::now()));
                }
                Err(Failure::Connect(_)) if reused => continue,
                Err(_) => {}
            }
            return result;
        }
    }

    /// Deletes a shell; `true` when the node confirmed.
    async fn delete(&self, shell: &str) -> bool {
        match self.call(&self.envelope.delete(shell)).await {
            Ok(_) => {
                self.counters.shells_deleted.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                tracing::debug!(host = %self.target.name, error = %e.detail(), "shell delete failed");
                false
            }
        }
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
            node.delete(&shell).await;
        });
    }

    fn stats(&self) -> NodeStats {
        NodeStats {
            shells_created: self.counters.shells_created.load(Ordering::Relaxed),
            commands_sent: self.counters.commands_sent.load(Ordering::Relaxed),
            empty_polls: self.counters.empty_polls.load(Ordering::Relaxed),
            retries: self.counters.retries.load(Ordering::Relaxed),
            http_requests: self.traffic.requests.load(Ordering::Relaxed),
            connections: self.traffic.connections.load(Ordering::Relaxed),
            shells_deleted: self.counters.shells_deleted.load(Ordering::Relaxed),
            stale_shells: self.counters.stale_shells.load(Ordering::Relaxed),
        }
    }
}

/// The [`Transport`] over WinRM: authenticated connections and reusable cmd shells per node, a Receive long-poll loop that survives silent commands of any length, and
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
        let mut tls_configs = crate::tls::Configs::default();
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
            if target.auth == Auth::Certificate {
                if target.scheme != Scheme::Https {
                    return Err(config_error(
                        &host,
                        "certificate authentication (`ansible_winrm_transport: certificate`) \
                         works only over HTTPS: set `ansible_winrm_scheme: https`",
                    ));
                }
                if target.client_certificate.is_none() {
                    return Err(config_error(
                        &host,
                        "certificate authentication needs `ansible_winrm_cert_pem` and \
                         `ansible_winrm_cert_key_pem`",
                    ));
                }
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
            let mechanism = match target.auth {
                Auth::Ntlm => Mechanism::Ntlm,
                Auth::Basic => Mechanism::Basic,
                Auth::Kerberos => Mechanism::Kerberos,
                Auth::Negotiate => Mechanism::Negotiate,
                Auth::Certificate => Mechanism::Certificate,
            };
            let tls = match target.scheme {
                Scheme::Http => None,
                Scheme::Https => Some(
                    tls_configs
                        .get(&target)
                        .map_err(|detail| config_error(&host, detail))?,
                ),
            };
            let endpoint = Endpoint {
                address: target.address.clone(),
                port: target.port,
                scheme: target.scheme,
                tls,
                mechanism,
                user: target.user.clone(),
                password: target.password.clone(),
                connect_timeout: limits.connect_timeout,
                spn_host: target
                    .kerberos_hostname
                    .clone()
                    .unwrap_or_else(|| target.address.clone()),
                kdc: target.kdc.clone(),
            };
            let envelope = soap::Envelope {
                endpoint: endpoint.url(),
                operation_timeout_secs: whole_secs(limits.operation_timeout),
                max_envelope_size: 153_600,
            };
            let node = Node {
                permits: Semaphore::new(limits.per_host),
                endpoint,
                envelope,
                connections: Mutex::new(Vec::new()),
                traffic: Traffic::default(),
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
                let delete = node.delete(&shell);
                if tokio::time::timeout(self.limits.connect_timeout * 2, delete)
                    .await
                    .is_err()
                {
                    tracing::debug!(host = %node.target.name, "shell delete timed out");
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

    /// A shell: an idle one from the pool (unless `fresh`), or a new one (retried while the node
    /// cannot be reached: nothing runs in a shell yet).
    async fn lease(
        &self,
        node: &Arc<Node>,
        attempt: &mut u32,
        deadline: Instant,
        fresh: bool,
    ) -> Result<Lease, TransportError> {
        let host = &node.target.name;
        loop {
            if let Some(lease) = node.take_idle().filter(|_| !fresh) {
                return Ok(lease);
            }
            let generation = node.generation();
            let created = node
                .call(&node.envelope.create(node.target.shell_codepage()))
                .await
                .and_then(|xml| {
                    soap::text_of(&xml, "ShellId")
                        .ok_or_else(|| Failure::Protocol("Create answer without ShellId".into()))
                });
            match created {
                Ok(id) => {
                    node.counters.shells_created.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(host = %host, shell = %id, "shell created");
                    return Ok(Lease {
                        id,
                        generation,
                        reused: false,
                    });
                }
                Err(e) => match e {
                    Failure::Connect(d) | Failure::Broken(d) => {
                        if !self.backoff(node, attempt, deadline).await {
                            return Err(TransportError::Unreachable {
                                host: host.clone(),
                                detail: d,
                            });
                        }
                    }
                    Failure::AuthRejected(_) => return Err(self.auth_rejected(node)),
                    Failure::Quota { quota, detail } => {
                        return Err(self.quota(node, quota, format!("creating a shell: {detail}")))
                    }
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

    /// Enumerate + Pull until the end of a WQL answer; the raw items.
    async fn enumerate(
        &self,
        node: &Node,
        namespace: &str,
        query: &str,
    ) -> Result<String, Failure> {
        let xml = node
            .call(&node.envelope.enumerate(namespace, query))
            .await?;
        let (mut items, mut context, mut ended) =
            soap::enumeration(&xml).map_err(Failure::Protocol)?;
        while let (false, Some(ctx)) = (ended, context.take()) {
            let xml = node.call(&node.envelope.pull(namespace, &ctx)).await?;
            let (more, next, end) = soap::enumeration(&xml).map_err(Failure::Protocol)?;
            items.push_str(&more);
            if items.len() > MAX_STREAM_BYTES {
                return Err(Failure::Protocol(format!(
                    "the WQL answer exceeds {MAX_STREAM_BYTES} bytes"
                )));
            }
            context = next;
            ended = end;
        }
        Ok(items)
    }

    fn quota(&self, node: &Node, quota: &str, detail: String) -> TransportError {
        TransportError::Quota {
            host: node.target.name.clone(),
            quota: quota.to_owned(),
            detail,
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
            let lease = self.lease(node, &mut attempt, deadline, replaced_stale);
            let lease = tokio::time::timeout_at(deadline, lease)
                .await
                .map_err(|_| TransportError::Unreachable {
                    host: host.clone(),
                    detail: format!("no shell within the {} s timeout", timeout.as_secs()),
                })??;
            node.counters.commands_sent.fetch_add(1, Ordering::Relaxed);
            let started = node
                .call(&node.envelope.command(&lease.id, command))
                .await
                .and_then(|xml| {
                    soap::text_of(&xml, "CommandId")
                        .ok_or_else(|| Failure::Protocol("Command answer without CommandId".into()))
                });
            match started {
                Ok(id) => break (lease, id),
                Err(e) => match e {
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
                    Failure::Quota { quota, detail } => {
                        // Refused before anything started; the shell itself is fine.
                        node.give_back(lease);
                        return Err(self.quota(
                            node,
                            quota,
                            format!("starting the command: {detail}"),
                        ));
                    }
                    Failure::Fault(d) if lease.reused && !replaced_stale => {
                        // The node refused the request (nothing started): a pooled shell the
                        // node has forgotten (its IdleTimeout passed, WinRM restarted). Once,
                        // with a new shell (not another pooled one, which may be as old).
                        tracing::debug!(host = %host, shell = %lease.id, detail = %d, "pooled shell refused, replacing it");
                        replaced_stale = true;
                        node.counters.stale_shells.fetch_add(1, Ordering::Relaxed);
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
            let message = node.envelope.receive(&lease.id, &command_id);
            let poll = async {
                node.call(&message)
                    .await
                    .and_then(|xml| soap::received(&xml).map_err(Failure::Protocol))
            };
            match tokio::time::timeout(deadline - now, poll).await {
                Err(_) => return Err(self.terminate(node, lease, &command_id, timeout).await),
                Ok(Ok(out)) => {
                    push_capped(&mut stdout, &out.stdout);
                    push_capped(&mut stderr, &out.stderr);
                    if out.done {
                        break out.exit_code;
                    }
                }
                Ok(Err(e)) => match e {
                    Failure::PollTimedOut => {
                        node.counters.empty_polls.fetch_add(1, Ordering::Relaxed);
                    }
                    Failure::Quota { quota, .. } => {
                        // `MaxConcurrentOperationsPerUser` refused this poll before serving it:
                        // the command runs on; poll again a little later.
                        tracing::debug!(host = %host, quota, "Receive refused by a quota, polling again");
                        node.counters.retries.fetch_add(1, Ordering::Relaxed);
                        let pause = self.limits.backoff_base.max(Duration::from_millis(10));
                        tokio::time::sleep_until((Instant::now() + pause).min(deadline)).await;
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

        // The command is done and its exit received: the shell takes the next command as it is
        // (no Signal: one round trip less per command; Windows and the lab accept that).
        node.give_back(lease);

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
        let message = node.envelope.terminate(&lease.id, command_id);
        let signal = node.call(&message);
        match tokio::time::timeout(self.limits.operation_timeout, signal).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(host = %host, error = %e.detail(), "terminate signal failed")
            }
            Err(_) => tracing::warn!(host = %host, "terminate signal got no answer"),
        }
        node.delete_in_background(lease.id);
        TransportError::TimedOut {
            host: host.clone(),
            secs: timeout.as_secs(),
        }
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
            match self.enumerate(node, &namespace, query).await {
                Ok(items) => {
                    return parse_items(&items).map_err(|d| TransportError::Protocol {
                        host: host.clone(),
                        detail: format!("WQL items: {d}"),
                    })
                }
                Err(e) => match e {
                    Failure::Connect(d) | Failure::Broken(d) => {
                        if !self.backoff(node, &mut attempt, deadline).await {
                            return Err(TransportError::Unreachable {
                                host: host.clone(),
                                detail: d,
                            });
                        }
                    }
                    Failure::AuthRejected(_) => return Err(self.auth_rejected(node)),
                    Failure::Quota { quota, detail } => {
                        return Err(self.quota(
                            node,
                            quota,
                            format!("WQL `{query}` in `{namespace}`: {detail}"),
                        ))
                    }
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
