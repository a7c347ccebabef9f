//! `WinrmTransport` against the lab's real WinRM server on loopback.
//!
//! The backend is the lab's scripted `TestBackend` wrapped in a recorder that adds a `hang`
//! command (silent until terminated; counts terminations) and tracks how many processes run at
//! once per host.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lockstep_core::{Auth, Name, Scheme, Transport, TransportError, WmiObject};
use lockstep_lab::backend::{
    Availability, Backend, HostInfo, ProcessEvent, ProcessHandle, ProtocolFaults, WqlError,
};
use lockstep_lab::server::test_backend::TestBackend;
use lockstep_lab::server::{LabServer, ServerConfig, TlsOptions};
use lockstep_winrm::{ClientCertificate, Limits, NodeTarget, Secret, WinrmTransport};
use tokio::sync::{mpsc, oneshot};

const USER: &str = "labadmin";
const PASSWORD: &str = "Lab-Pass-2003!";
/// Windows' exit code of a process stopped by ctrl-c / terminate.
const STOPPED: i32 = -1_073_741_510;

#[derive(Default)]
struct Counts {
    terminated: AtomicUsize,
    running: Mutex<HashMap<String, usize>>,
    max_running: Mutex<HashMap<String, usize>>,
}

impl Counts {
    fn started(&self, host: &str) {
        let mut running = self.running.lock().unwrap();
        let n = running.entry(host.to_owned()).or_default();
        *n += 1;
        let mut max = self.max_running.lock().unwrap();
        let m = max.entry(host.to_owned()).or_default();
        *m = (*m).max(*n);
    }

    fn finished(&self, host: &str) {
        *self
            .running
            .lock()
            .unwrap()
            .entry(host.to_owned())
            .or_default() -= 1;
    }
}

/// `TestBackend` plus a `hang` command and concurrency tracking.
struct Recorder {
    inner: TestBackend,
    counts: Arc<Counts>,
}

impl Recorder {
    fn new(hosts: Vec<HostInfo>) -> Arc<Self> {
        Arc::new(Recorder {
            inner: TestBackend::with_hosts(hosts),
            counts: Arc::new(Counts::default()),
        })
    }

    fn max_running(&self, host: &str) -> usize {
        let max = self.counts.max_running.lock().unwrap();
        max.get(host).copied().unwrap_or(0)
    }

    fn terminated(&self) -> usize {
        self.counts.terminated.load(Ordering::SeqCst)
    }

    /// Command lines the node received (each Command request that reached it).
    fn started(&self, host: &str) -> Vec<String> {
        self.inner.started(host)
    }
}

impl Backend for Recorder {
    fn hosts(&self) -> Vec<HostInfo> {
        self.inner.hosts()
    }
    fn availability(&self, host: &str) -> Availability {
        self.inner.availability(host)
    }
    fn protocol_faults(&self, host: &str) -> ProtocolFaults {
        self.inner.protocol_faults(host)
    }
    fn protocol_fault_used(&self, host: &str) {
        self.inner.protocol_fault_used(host)
    }
    fn boot_epoch(&self, host: &str) -> u64 {
        self.inner.boot_epoch(host)
    }
    fn wql(&self, host: &str, namespace: &str, query: &str) -> Result<Vec<WmiObject>, WqlError> {
        self.inner.wql(host, namespace, query)
    }

    fn start_in_session(&self, host: &str, command_line: &str, delegable: bool) -> ProcessHandle {
        let counts = self.counts.clone();
        if command_line.trim() == "hang" {
            // Recorded as started by the inner backend too (as a no-op).
            drop(self.inner.start(host, "exit 0"));
            let (tx, events) = mpsc::unbounded_channel();
            let (stdin, _) = mpsc::unbounded_channel();
            let (terminate, on_terminate) = oneshot::channel::<()>();
            tokio::spawn(async move {
                if on_terminate.await.is_ok() {
                    counts.terminated.fetch_add(1, Ordering::SeqCst);
                }
                let _ = tx.send(ProcessEvent::Exit(STOPPED));
            });
            return ProcessHandle {
                events,
                stdin,
                terminate: Some(terminate),
            };
        }
        let mut inner = self.inner.start_in_session(host, command_line, delegable);
        counts.started(host);
        let (tx, events) = mpsc::unbounded_channel();
        let host = host.to_owned();
        tokio::spawn(async move {
            while let Some(ev) = inner.events.recv().await {
                let exit = matches!(ev, ProcessEvent::Exit(_));
                if exit {
                    counts.finished(&host);
                }
                let _ = tx.send(ev);
                if exit {
                    return;
                }
            }
            counts.finished(&host);
        });
        ProcessHandle {
            events,
            stdin: inner.stdin,
            terminate: inner.terminate,
        }
    }
}

fn host_info(name: &str, oem: u32, locale: &str) -> HostInfo {
    HostInfo {
        name: name.to_owned(),
        oem_codepage: oem,
        locale: locale.to_owned(),
    }
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("endpoint URL has a port")
}

struct Lab {
    backend: Arc<Recorder>,
    server: LabServer,
}

impl Lab {
    async fn start(hosts: Vec<HostInfo>) -> Lab {
        Self::start_with(hosts, ServerConfig::with_credentials(USER, PASSWORD)).await
    }

    async fn start_with(hosts: Vec<HostInfo>, config: ServerConfig) -> Lab {
        let backend = Recorder::new(hosts);
        let server = LabServer::start(backend.clone(), config).await.unwrap();
        Lab { backend, server }
    }

    /// A target for `host` with the lab's credentials, NTLM over HTTP.
    fn target(&self, host: &str, oem: u32) -> NodeTarget {
        let mut t = NodeTarget::new(
            Name::host(host).unwrap(),
            "127.0.0.1",
            USER,
            Secret::new(PASSWORD),
        );
        t.port = port_of(&self.server.endpoints()[host]);
        t.oem_codepage = oem;
        t
    }
}

fn limits() -> Limits {
    Limits {
        per_host: 2,
        total: 8,
        connect_timeout: Duration::from_secs(2),
        operation_timeout: Duration::from_secs(1),
        retries: 3,
        backoff_base: Duration::from_millis(20),
    }
}

fn name(s: &str) -> Name {
    Name::host(s).unwrap()
}

const T: Duration = Duration::from_secs(30);

#[tokio::test]
async fn silent_command_survives_several_empty_polls() {
    let lab = Lab::start(vec![host_info("NODE1", 437, "en-US")]).await;
    let tr = WinrmTransport::new(vec![lab.target("NODE1", 437)], limits()).unwrap();
    // Silent for 3.5 s with a 1 s long poll: at least two `w:TimedOut` faults in between.
    let out = tr
        .run(&name("NODE1"), "slow 3500 installed", T)
        .await
        .unwrap();
    assert_eq!(out.stdout, "installed\r\n");
    assert_eq!(out.exit_code, 0);
    let stats = tr.stats(&name("NODE1")).unwrap();
    assert!(stats.empty_polls >= 2, "{stats:?}");
    assert_eq!(stats.commands_sent, 1);
    lab.server.shutdown().await;
}

#[tokio::test]
async fn one_shell_serves_many_commands_with_exit_codes_and_stderr() {
    let lab = Lab::start(vec![host_info("NODE1", 437, "en-US")]).await;
    let tr = WinrmTransport::new(vec![lab.target("NODE1", 437)], limits()).unwrap();
    let node = name("NODE1");

    let out = tr.run(&node, "echo hello", T).await.unwrap();
    assert_eq!((out.stdout.as_str(), out.exit_code), ("hello\r\n", 0));
    let out = tr.run(&node, "exit 3010", T).await.unwrap();
    assert_eq!((out.stdout.as_str(), out.exit_code), ("", 3010));
    let out = tr.run(&node, "err Access is denied.", T).await.unwrap();
    assert_eq!(out.stderr, "Access is denied.\r\n");
    assert_eq!(out.exit_code, 1);
    let out = tr.run(&node, "frobnicate", T).await.unwrap();
    assert_eq!(out.exit_code, 9009);
    assert!(out.stderr.contains("'frobnicate' is not recognized"));
    let out = tr.run(&node, "lines 50", T).await.unwrap();
    assert_eq!(out.stdout.lines().count(), 50);
    assert!(out.stdout.ends_with("line 50\r\n"));

    let stats = tr.stats(&node).unwrap();
    assert_eq!(stats.shells_created, 1, "{stats:?}");
    assert_eq!(stats.commands_sent, 5);
    assert_eq!(lab.backend.started("NODE1").len(), 5);

    // After a reset (a reboot), the next command opens a new shell.
    tr.reset(&node).await;
    tr.run(&node, "echo again", T).await.unwrap();
    assert_eq!(tr.stats(&node).unwrap().shells_created, 2);
    tr.close().await;
    lab.server.shutdown().await;
}

#[tokio::test]
async fn code_pages_round_trip_non_ascii_text() {
    let cases = [
        ("EN1", 437, "en-US", "Setup completed: 100 % ÷ ½ ü"),
        (
            "IT1",
            850,
            "it-IT",
            "Il servizio è stato arrestato. Proprietà: perché",
        ),
        (
            "NL1",
            850,
            "nl-NL",
            "De service is gestopt. Geïnstalleerd: één",
        ),
        (
            "CS1",
            852,
            "cs-CZ",
            "Služba byla úspěšně zastavena. Žluťoučký kůň",
        ),
        (
            "JA1",
            932,
            "ja-JP",
            "サービスを停止しました。クラスタ グループ",
        ),
    ];
    let lab = Lab::start(
        cases
            .iter()
            .map(|(h, cp, loc, _)| host_info(h, *cp, loc))
            .collect(),
    )
    .await;
    for (host, _, _, text) in &cases {
        lab.backend
            .inner
            .set_file(&format!("{host}.txt"), &format!("{text}\r\n"));
    }
    // Each node asked for UTF-8 (the default), and for its own OEM code page.
    for ask_oem in [false, true] {
        let targets = cases
            .iter()
            .map(|(h, cp, _, _)| {
                let mut t = lab.target(h, *cp);
                if ask_oem {
                    t.codepage = Some(*cp);
                }
                t
            })
            .collect();
        let tr = WinrmTransport::new(targets, limits()).unwrap();
        for (host, cp, _, text) in &cases {
            let out = tr
                .run(&name(host), &format!("type {host}.txt"), T)
                .await
                .unwrap();
            assert_eq!(
                out.stdout,
                format!("{text}\r\n"),
                "host {host}, code page {}",
                if ask_oem { *cp } else { 65001 }
            );
        }
        tr.close().await;
    }
    lab.server.shutdown().await;
}

#[tokio::test]
async fn basic_over_http_is_refused_by_a_default_node_and_works_where_allowed() {
    // A node with Windows' defaults (AllowUnencrypted=false) refuses Basic over HTTP.
    let lab = Lab::start(vec![host_info("NODE1", 437, "en-US")]).await;
    let mut basic = lab.target("NODE1", 437);
    basic.auth = Auth::Basic;
    basic.allow_basic_over_http = true;
    let tr = WinrmTransport::new(vec![basic.clone()], limits()).unwrap();
    let err = tr.run(&name("NODE1"), "echo basic", T).await.unwrap_err();
    assert!(matches!(err, TransportError::AuthRejected { .. }), "{err}");
    assert!(lab.backend.started("NODE1").is_empty());
    lab.server.shutdown().await;

    // A node weakened on purpose (the lab's opt-in) takes it.
    let weakened = ServerConfig {
        allow_unencrypted: true,
        ..ServerConfig::with_credentials(USER, PASSWORD)
    };
    let lab = Lab::start_with(vec![host_info("NODE1", 437, "en-US")], weakened).await;
    basic.port = lab.target("NODE1", 437).port;
    let tr = WinrmTransport::new(vec![basic], limits()).unwrap();
    let out = tr.run(&name("NODE1"), "echo basic", T).await.unwrap();
    assert_eq!(out.stdout, "basic\r\n");
    lab.server.shutdown().await;
}

#[tokio::test]
async fn wrong_passwords_are_rejected_once_without_resending() {
    let lab = Lab::start(vec![host_info("NODE1", 437, "en-US")]).await;
    let mut wrong = lab.target("NODE1", 437);
    wrong.password = Secret::new("not-the-password");
    let tr = WinrmTransport::new(vec![wrong], limits()).unwrap();
    let err = tr.run(&name("NODE1"), "echo x", T).await.unwrap_err();
    assert_eq!(
        err,
        TransportError::AuthRejected {
            host: name("NODE1"),
            user: USER.to_owned()
        }
    );
    let err = tr
        .wql(&name("NODE1"), "root/cimv2", "SELECT * FROM Win32_Service")
        .await;
    assert!(matches!(err, Err(TransportError::AuthRejected { .. })));
    let stats = tr.stats(&name("NODE1")).unwrap();
    assert_eq!(stats.retries, 0, "{stats:?}");
    // Each attempt is one NTLM handshake (NEGOTIATE, AUTHENTICATE) on one connection, refused
    // once: nothing is sent again and no SOAP body ever leaves.
    assert_eq!(stats.http_requests, 4, "{stats:?}");
    assert_eq!(stats.connections, 2, "{stats:?}");
    assert_eq!(stats.shells_created, 0);

    // NTLM with a `DOMAIN\user` name.
    let mut domain_user = lab.target("NODE1", 437);
    domain_user.user = format!("LAB\\{USER}");
    let tr = WinrmTransport::new(vec![domain_user], limits()).unwrap();
    assert_eq!(
        tr.run(&name("NODE1"), "exit 0", T).await.unwrap().exit_code,
        0
    );
    lab.server.shutdown().await;
}

#[tokio::test]
async fn refused_connection_is_unreachable_after_retries() {
    let lab = Lab::start(vec![host_info("NODE1", 437, "en-US")]).await;
    lab.backend.inner.set_up("NODE1", false);
    // Wait until the server closed the listener (it polls availability every 100 ms).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let tr = WinrmTransport::new(vec![lab.target("NODE1", 437)], limits()).unwrap();
    let err = tr.run(&name("NODE1"), "echo x", T).await.unwrap_err();
    assert!(matches!(err, TransportError::Unreachable { .. }), "{err}");
    assert!(!err.command_may_have_started());
    let stats = tr.stats(&name("NODE1")).unwrap();
    assert_eq!(stats.retries, 3, "{stats:?}");
    assert!(lab.backend.started("NODE1").is_empty());

    let err = tr
        .wql(&name("NODE1"), "root/cimv2", "SELECT * FROM Win32_Service")
        .await;
    assert!(matches!(err, Err(TransportError::Unreachable { .. })));

    // Back up: the same transport works again.
    lab.backend.inner.set_up("NODE1", true);
    let mut back = None;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(out) = tr.run(&name("NODE1"), "echo back", T).await {
            back = Some(out);
            break;
        }
    }
    assert_eq!(back.expect("the node came back").stdout, "back\r\n");
    lab.server.shutdown().await;
}

#[tokio::test]
async fn connection_dropped_mid_receive_is_interrupted_and_never_resent() {
    let lab = Lab::start(vec![host_info("NODE1", 437, "en-US")]).await;
    let tr = WinrmTransport::new(vec![lab.target("NODE1", 437)], limits()).unwrap();
    lab.backend.inner.set_faults(
        "NODE1",
        ProtocolFaults {
            drop_mid_receive: true,
            ..ProtocolFaults::default()
        },
    );
    let err = tr
        .run(&name("NODE1"), "slow 300 setup.exe finished", T)
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Interrupted { .. }), "{err}");
    assert!(err.command_may_have_started());
    assert_eq!(lab.backend.inner.faults_used("NODE1"), 1);
    // The node received the command exactly once.
    assert_eq!(
        lab.backend.started("NODE1"),
        vec!["slow 300 setup.exe finished"]
    );
    assert_eq!(tr.stats(&name("NODE1")).unwrap().commands_sent, 1);

    // The broken shell is not reused; the next command works on a new one.
    tr.run(&name("NODE1"), "echo ok", T).await.unwrap();
    assert_eq!(tr.stats(&name("NODE1")).unwrap().shells_created, 2);
    lab.server.shutdown().await;
}

#[tokio::test]
async fn step_timeout_terminates_the_command() {
    let lab = Lab::start(vec![host_info("NODE1", 437, "en-US")]).await;
    let tr = WinrmTransport::new(vec![lab.target("NODE1", 437)], limits()).unwrap();
    let err = tr
        .run(&name("NODE1"), "hang", Duration::from_millis(2500))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TransportError::TimedOut {
            host: name("NODE1"),
            secs: 2
        }
    );
    // The terminate signal reached the process (bounded wait for the server's task).
    for _ in 0..50 {
        if lab.backend.terminated() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(lab.backend.terminated(), 1);
    lab.server.shutdown().await;
}

#[tokio::test]
async fn concurrency_is_bounded_per_host() {
    let lab = Lab::start(vec![host_info("NODE1", 437, "en-US")]).await;
    let tr = Arc::new(WinrmTransport::new(vec![lab.target("NODE1", 437)], limits()).unwrap());
    let mut tasks = Vec::new();
    for i in 0..6 {
        let tr = tr.clone();
        tasks.push(tokio::spawn(async move {
            tr.run(&name("NODE1"), &format!("slow 1000 job {i}"), T)
                .await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap().unwrap().stdout, format!("job {i}\r\n"));
    }
    assert_eq!(lab.backend.max_running("NODE1"), 2);
    // Two shells at most, reused by the six commands.
    assert_eq!(tr.stats(&name("NODE1")).unwrap().shells_created, 2);
    lab.server.shutdown().await;
}

#[tokio::test]
async fn wql_returns_objects() {
    let lab = Lab::start(vec![host_info("NODE1", 852, "cs-CZ")]).await;
    let svc = |name: &str, state: &str, caption: &str| -> WmiObject {
        [("Name", name), ("State", state), ("Caption", caption)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    let objects = vec![
        svc(
            "MSExchangeIS",
            "Running",
            "Microsoft Exchange – úložiště informací",
        ),
        svc("W3SVC", "Stopped", "Publikování & <web>"),
    ];
    lab.backend.inner.set_wql("Win32_Service", objects.clone());
    lab.backend.inner.set_namespace_down("root/MSCluster", true);
    let tr = WinrmTransport::new(vec![lab.target("NODE1", 852)], limits()).unwrap();
    let got = tr
        .wql(&name("NODE1"), "root\\cimv2", "SELECT * FROM Win32_Service")
        .await
        .unwrap();
    assert_eq!(got, objects);
    let err = tr
        .wql(
            &name("NODE1"),
            "root/MSCluster",
            "SELECT * FROM MSCluster_Node",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Protocol { .. }), "{err}");
    lab.server.shutdown().await;
}

#[tokio::test]
async fn https_verifies_certificates_against_a_ca_file_unless_told_not_to() {
    let config = ServerConfig {
        tls: Some(TlsOptions::default()),
        ..ServerConfig::with_credentials(USER, PASSWORD)
    };
    let lab = Lab::start_with(vec![host_info("NODE1", 437, "en-US")], config).await;
    let mut t = lab.target("NODE1", 437);
    t.scheme = Scheme::Https;
    // The lab CA is in no trust store: verification fails before anything is sent.
    let tr = WinrmTransport::new(vec![t.clone()], limits()).unwrap();
    let err = tr.run(&name("NODE1"), "echo tls", T).await.unwrap_err();
    assert!(matches!(err, TransportError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(lab.backend.started("NODE1").is_empty());

    // Trusting the lab CA (what `ansible_winrm_ca_trust_path` names): verified, NTLM unsealed
    // inside TLS, and Basic too.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("lab-ca.pem");
    std::fs::write(&ca, lab.server.cert_pem().unwrap()).unwrap();
    t.ca_trust_path = Some(ca.clone());
    let mut basic = t.clone();
    basic.auth = Auth::Basic;
    let tr = WinrmTransport::new(vec![t.clone()], limits()).unwrap();
    assert_eq!(
        tr.run(&name("NODE1"), "echo tls", T).await.unwrap().stdout,
        "tls\r\n"
    );
    let tr = WinrmTransport::new(vec![basic], limits()).unwrap();
    assert_eq!(
        tr.run(&name("NODE1"), "echo basic", T)
            .await
            .unwrap()
            .stdout,
        "basic\r\n"
    );

    // A CA file that is not PEM is a configuration error naming it.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    t.ca_trust_path = Some(junk);
    let err = WinrmTransport::new(vec![t.clone()], limits()).unwrap_err();
    assert!(err.to_string().contains("junk.pem"), "{err}");

    // Rehearsal only: no verification.
    t.ca_trust_path = None;
    t.verify_tls = false;
    let tr = WinrmTransport::new(vec![t], limits()).unwrap();
    assert_eq!(
        tr.run(&name("NODE1"), "echo tls", T).await.unwrap().stdout,
        "tls\r\n"
    );
    lab.server.shutdown().await;
}

#[tokio::test]
async fn a_pooled_shell_lost_in_a_reboot_is_replaced_once() {
    let lab = Lab::start(vec![host_info("NODE1", 437, "en-US")]).await;
    let tr = WinrmTransport::new(vec![lab.target("NODE1", 437)], limits()).unwrap();
    let node = name("NODE1");
    tr.run(&node, "echo before", T).await.unwrap();
    // The node reboots behind the transport's back (no `reset`): its shells are gone.
    lab.backend.inner.reboot("NODE1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = tr.run(&node, "echo after", T).await.unwrap();
    assert_eq!(out.stdout, "after\r\n");
    let stats = tr.stats(&node).unwrap();
    assert_eq!(stats.shells_created, 2, "{stats:?}");
    // Three Command requests: before, after (refused: unknown shell), after again.
    assert_eq!(stats.commands_sent, 3, "{stats:?}");
    // The refused Command never started anything: the node ran each command once.
    assert_eq!(
        lab.backend.started("NODE1"),
        vec!["echo before", "echo after"]
    );
    lab.server.shutdown().await;
}

#[tokio::test]
async fn http_500_without_a_fault_is_a_protocol_error_and_not_retried() {
    let lab = Lab::start(vec![host_info("NODE1", 437, "en-US")]).await;
    let tr = WinrmTransport::new(vec![lab.target("NODE1", 437)], limits()).unwrap();
    lab.backend.inner.set_faults(
        "NODE1",
        ProtocolFaults {
            http_500: true,
            ..ProtocolFaults::default()
        },
    );
    let err = tr.run(&name("NODE1"), "echo x", T).await.unwrap_err();
    assert!(matches!(err, TransportError::Protocol { .. }), "{err}");
    assert!(!err.command_may_have_started());
    let err = tr
        .wql(&name("NODE1"), "root/cimv2", "SELECT * FROM Win32_Service")
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Protocol { .. }), "{err}");
    assert_eq!(tr.stats(&name("NODE1")).unwrap().retries, 0);
    assert!(lab.backend.started("NODE1").is_empty());
    lab.server.shutdown().await;
}

/// NTLM authenticates the connection once; then every message travels sealed on it: two HTTP
/// requests per command on a reused shell (Command, Receive), on a multi-threaded runtime (the
/// engine's), with no 401 and nothing sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_ntlm_requests_on_one_authenticated_connection() {
    let lab = Lab::start(vec![host_info("NODE1", 437, "en-US")]).await;
    lab.backend
        .inner
        .set_wql("Win32_OperatingSystem", vec![WmiObject::new()]);
    let tr = WinrmTransport::new(vec![lab.target("NODE1", 437)], limits()).unwrap();
    let node = name("NODE1");
    tr.run(&node, "echo first", T).await.unwrap();
    let before = tr.stats(&node).unwrap();
    // Handshake (2), Create, Command, Receive.
    assert_eq!(before.http_requests, 5, "{before:?}");
    for i in 0..300 {
        let out = tr.run(&node, &format!("echo {i}"), T).await;
        assert_eq!(out.map(|o| o.stdout), Ok(format!("{i}\r\n")), "command {i}");
        if i % 10 == 0 {
            let q = tr
                .wql(&node, "root/cimv2", "SELECT * FROM Win32_OperatingSystem")
                .await;
            assert!(q.is_ok(), "query {i}: {q:?}");
        }
    }
    let after = tr.stats(&node).unwrap();
    // One authenticated connection carries them all. (Under a loaded CI machine a connection
    // may be dropped and opened again once: two handshakes at most, never one per request.)
    assert!(after.connections <= 2, "{after:?}");
    assert_eq!(after.shells_created, 1, "{after:?}");
    // 300 commands of 2 requests each (Command, Receive), 30 one-request queries; a Receive
    // that comes back before the exit code (a slow process) needs one more, and a second
    // connection its 2-leg handshake. A handshake per request would be 900 more.
    let sent = after.http_requests - before.http_requests;
    let extra = sent
        .checked_sub(300 * 2 + 30)
        .expect("fewer requests than commands");
    assert!(
        extra <= 2 * (after.connections - 1) + 10,
        "{extra} requests beyond 2 per command: {after:?}"
    );
    assert_eq!(lab.backend.started("NODE1").len(), 301);
    lab.server.shutdown().await;
}

#[tokio::test]
async fn the_step_timeout_bounds_the_wait_for_a_shell() {
    let lab = Lab::start(vec![host_info("NODE1", 437, "en-US")]).await;
    let tr = WinrmTransport::new(vec![lab.target("NODE1", 437)], limits()).unwrap();
    lab.backend.inner.set_faults(
        "NODE1",
        ProtocolFaults {
            delay: Some(Duration::from_secs(5)),
            ..ProtocolFaults::default()
        },
    );
    let err = tr
        .run(&name("NODE1"), "echo x", Duration::from_millis(1500))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Unreachable { .. }), "{err}");
    assert!(lab.backend.started("NODE1").is_empty());
    lab.server.shutdown().await;
}

/// Shells left open count against `MaxShellsPerUser`: a node at its quota refuses Create with
/// `w:QuotaLimit`, reported as that (not as an unreachable node); `close` deletes the idle shells
/// and frees the quota.
#[tokio::test]
async fn close_deletes_idle_shells_and_a_shell_quota_is_reported_as_such() {
    let config = ServerConfig {
        max_shells_per_user: 1,
        ..ServerConfig::with_credentials(USER, PASSWORD)
    };
    let lab = Lab::start_with(vec![host_info("NODE1", 437, "en-US")], config).await;
    let node = name("NODE1");
    let first = WinrmTransport::new(vec![lab.target("NODE1", 437)], limits()).unwrap();
    first.run(&node, "echo one", T).await.unwrap();
    let second = WinrmTransport::new(vec![lab.target("NODE1", 437)], limits()).unwrap();
    let err = second.run(&node, "echo two", T).await.unwrap_err();
    match &err {
        TransportError::Quota { quota, detail, .. } => {
            assert_eq!(quota, "MaxShellsPerUser");
            assert!(detail.contains("w:QuotaLimit"), "{detail}");
            assert!(detail.contains("maximum number of 1 shells"), "{detail}");
        }
        other => panic!("expected the quota fault, got {other}"),
    }
    assert!(
        err.to_string()
            .contains("the WinRM quota `MaxShellsPerUser` of the account is exhausted"),
        "{err}"
    );
    assert_eq!(second.stats(&node).unwrap().retries, 0);
    first.close().await;
    assert_eq!(first.stats(&node).unwrap().shells_deleted, 1);
    assert_eq!(
        second.run(&node, "echo two", T).await.unwrap().stdout,
        "two\r\n"
    );
    lab.server.shutdown().await;
}

/// `MaxConcurrentOperationsPerUser` reached (here 1, held by another command's Receive long
/// poll): the node refuses the Create with `w:QuotaLimit` 2150859174, reported as that quota
/// (not as an unreachable node, not retried); the command holding the quota is not disturbed.
#[tokio::test]
async fn an_operations_quota_is_reported_as_such() {
    let config = ServerConfig {
        max_concurrent_operations_per_user: 1,
        ..ServerConfig::with_credentials(USER, PASSWORD)
    };
    let lab = Lab::start_with(vec![host_info("NODE1", 437, "en-US")], config).await;
    let node = name("NODE1");
    let holder = Arc::new(WinrmTransport::new(vec![lab.target("NODE1", 437)], limits()).unwrap());
    let held = {
        let holder = holder.clone();
        let node = node.clone();
        tokio::spawn(async move { holder.run(&node, "slow 5000 held", T).await })
    };
    // Once its command started, the holder only sends Receives (a refused poll is polled again).
    for _ in 0..500 {
        if !lab.backend.started("NODE1").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(lab.backend.started("NODE1"), vec!["slow 5000 held"]);
    let mut refused = None;
    for _ in 0..100 {
        let other = WinrmTransport::new(vec![lab.target("NODE1", 437)], limits()).unwrap();
        match other.run(&node, "echo other", T).await {
            Err(e) => {
                assert_eq!(other.stats(&node).unwrap().retries, 0);
                refused = Some(e);
                break;
            }
            // Served between the holder's requests: try again while it polls.
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
        if held.is_finished() {
            break;
        }
    }
    match refused.expect("a request beyond the operations quota must be refused") {
        TransportError::Quota { quota, detail, .. } => {
            assert_eq!(quota, "MaxConcurrentOperationsPerUser");
            assert!(detail.contains("2150859174"), "{detail}");
        }
        other => panic!("expected the operations quota, got {other}"),
    }
    assert_eq!(held.await.unwrap().unwrap().stdout, "held\r\n");
    lab.server.shutdown().await;
}

/// Pooled shells the node deleted after its `IdleTimeout` (here 1.5 s) are replaced
/// transparently: the first command that meets one is refused (`w:InvalidSelectors`, nothing
/// started) and runs once on a NEW shell, not on another pooled shell as old as the first.
#[tokio::test]
async fn pooled_shells_the_node_timed_out_are_reopened_once() {
    let config = ServerConfig {
        idle_timeout: Duration::from_millis(1500),
        ..ServerConfig::with_credentials(USER, PASSWORD)
    };
    let lab = Lab::start_with(vec![host_info("NODE1", 437, "en-US")], config).await;
    let node = name("NODE1");
    let tr = WinrmTransport::new(vec![lab.target("NODE1", 437)], limits()).unwrap();
    // Two shells in the pool (two commands at once).
    let (a, b) = tokio::join!(
        tr.run(&node, "slow 300 a", T),
        tr.run(&node, "slow 300 b", T)
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(tr.stats(&node).unwrap().shells_created, 2);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(tr.run(&node, "echo c", T).await.unwrap().stdout, "c\r\n");
    let stats = tr.stats(&node).unwrap();
    assert_eq!(stats.stale_shells, 1, "{stats:?}");
    assert_eq!(stats.shells_created, 3, "{stats:?}");
    // The refused Command started nothing: `echo c` ran once.
    let started = lab.backend.started("NODE1");
    assert_eq!(
        started.iter().filter(|c| *c == "echo c").count(),
        1,
        "{started:?}"
    );
    lab.server.shutdown().await;
}

/// Ansible's `negotiate` with a `DOMAIN\user` (no realm to ask for a ticket): NTLM inside
/// SPNEGO, as Windows sends it outside a domain; the lab checks the mechListMIC, and the
/// connection's bodies are sealed (a default listener refuses anything else).
#[tokio::test]
async fn negotiate_without_a_realm_is_ntlm_in_spnego() {
    let lab = Lab::start(vec![host_info("NODE1", 437, "en-US")]).await;
    let mut t = lab.target("NODE1", 437);
    t.auth = Auth::Negotiate;
    t.user = format!("LAB\\{USER}");
    let tr = WinrmTransport::new(vec![t], limits()).unwrap();
    let node = name("NODE1");
    for i in 0..3 {
        let out = tr.run(&node, &format!("echo spnego {i}"), T).await;
        assert_eq!(out.map(|o| o.stdout), Ok(format!("spnego {i}\r\n")));
    }
    let stats = lab.server.stats();
    assert_eq!(
        (stats.ntlm_logons, stats.kerberos_logons),
        (1, 0),
        "{stats}"
    );
    assert_eq!(stats.rejections, 0, "{stats}");

    // A wrong password is refused as with plain NTLM.
    let mut wrong = lab.target("NODE1", 437);
    wrong.auth = Auth::Negotiate;
    wrong.password = Secret::new("wrong");
    let tr = WinrmTransport::new(vec![wrong], limits()).unwrap();
    let err = tr.run(&node, "echo x", T).await.unwrap_err();
    assert!(
        matches!(err, TransportError::AuthRejected { .. }),
        "{err:?}"
    );
    lab.server.shutdown().await;
}

/// Ansible's `certificate` transport against the lab's certificate mapping (validated first with
/// pywinrm, `lockstep-lab/tests/server_interop.rs`): a client certificate the lab CA issued for
/// the mapped UPN logs on over HTTPS with no password; one for another UPN is refused; over HTTP
/// it is a configuration error naming the host and the setting; a key file's content never
/// appears in an error.
#[tokio::test]
async fn certificate_authentication_over_https_only() {
    let config = ServerConfig {
        tls: Some(TlsOptions {
            client_certificate_upn: Some("labadmin@lab.test".into()),
            ..TlsOptions::default()
        }),
        ..ServerConfig::with_credentials(USER, PASSWORD)
    };
    let lab = Lab::start_with(vec![host_info("NODE1", 437, "en-US")], config).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("lab-ca.pem");
    std::fs::write(&ca, lab.server.cert_pem().unwrap()).unwrap();
    let issue = |file: &str, upn: &str| {
        let (cert, key) = lab.server.issue_client_certificate(upn).unwrap().unwrap();
        let cert_pem = dir.path().join(format!("{file}.pem"));
        let key_pem = dir.path().join(format!("{file}.key"));
        std::fs::write(&cert_pem, cert).unwrap();
        std::fs::write(&key_pem, key).unwrap();
        ClientCertificate { cert_pem, key_pem }
    };
    let mut t = lab.target("NODE1", 437);
    t.scheme = Scheme::Https;
    t.auth = Auth::Certificate;
    t.password = Secret::new("");
    t.ca_trust_path = Some(ca);
    t.client_certificate = Some(issue("mapped", "labadmin@lab.test"));
    let node = name("NODE1");
    let tr = WinrmTransport::new(vec![t.clone()], limits()).unwrap();
    for i in 0..3 {
        let out = tr.run(&node, &format!("echo cert {i}"), T).await;
        assert_eq!(out.map(|o| o.stdout), Ok(format!("cert {i}\r\n")));
    }
    tr.close().await;
    let stats = lab.server.stats();
    assert_eq!(stats.certificate_logons, 1, "{stats}");
    assert_eq!(stats.rejections, 0, "{stats}");

    // A certificate of the same CA for a user no mapping names: refused, nothing runs.
    let mut other = t.clone();
    other.client_certificate = Some(issue("other", "intruder@lab.test"));
    let tr = WinrmTransport::new(vec![other], limits()).unwrap();
    let err = tr.run(&node, "echo x", T).await.unwrap_err();
    assert!(
        matches!(err, TransportError::AuthRejected { .. }),
        "{err:?}"
    );
    assert_eq!(lab.backend.started("NODE1").len(), 3);

    // Plain HTTP: refused before anything is sent, naming the host and the setting.
    let mut http = t.clone();
    http.scheme = Scheme::Http;
    let err = WinrmTransport::new(vec![http], limits()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("NODE1"), "{text}");
    assert!(text.contains("ansible_winrm_scheme: https"), "{text}");

    // A key file that is not a key: the error names the file, never what is in it.
    let bad_key = dir.path().join("bad.key");
    std::fs::write(&bad_key, "SECRET-KEY-MATERIAL").unwrap();
    let mut bad = t.clone();
    bad.client_certificate = Some(ClientCertificate {
        cert_pem: t.client_certificate.as_ref().unwrap().cert_pem.clone(),
        key_pem: bad_key,
    });
    let err = WinrmTransport::new(vec![bad], limits()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("bad.key"), "{text}");
    assert!(!text.contains("SECRET-KEY-MATERIAL"), "{text}");
    lab.server.shutdown().await;
}
