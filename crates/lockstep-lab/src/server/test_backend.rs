//! A small scripted [`Backend`] for tests of the server and of WinRM clients (no Windows
//! model behind it).
//!
//! Command lines it understands (after an optional `cmd.exe /c ` or `cmd /c `):
//!
//! | command | what it does |
//! |---|---|
//! | `echo TEXT` | prints `TEXT\r\n`, exits 0 |
//! | `err TEXT` | prints `TEXT\r\n` on stderr, exits 1 |
//! | `exit N` | exits N |
//! | `sleep MS` | silent for MS milliseconds, then exits 0 |
//! | `lines N` | prints `line 1\r\n` … `line N\r\n` as N chunks, exits 0 |
//! | `slow MS TEXT` | silent for MS milliseconds, prints `TEXT\r\n`, exits 0 |
//! | `type NAME` | prints the text registered with [`TestBackend::set_file`], exits 0 (1 if none) |
//! | `chcp` | prints `Active code page: N\r\n` with the host's OEM code page |
//! | `cat` | echoes stdin back on stdout until stdin closes, then exits 0 |
//! | `wait` | silent until signalled: exits with [`super::CTRL_C_EXIT`] |
//! | anything else | prints `'X' is not recognized…` on stderr, exits 9009 like cmd.exe |
//!
//! WQL: [`TestBackend::set_wql`] registers the objects a class returns; other classes are an
//! invalid query; [`TestBackend::set_namespace_down`] makes a namespace unavailable.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::shells::CTRL_C_EXIT;
use crate::backend::{
    Availability, Backend, HostInfo, ProcessEvent, ProcessHandle, ProtocolFaults, WmiObject,
    WqlError,
};

#[derive(Debug, Default)]
struct HostState {
    down: bool,
    faults: ProtocolFaults,
    epoch: u64,
    started: Vec<String>,
}

/// A scripted fleet for tests: see the module documentation for the commands it runs.
#[derive(Debug)]
pub struct TestBackend {
    hosts: Vec<HostInfo>,
    state: Mutex<HashMap<String, HostState>>,
    files: Mutex<HashMap<String, String>>,
    wql: Mutex<HashMap<String, Vec<WmiObject>>>,
    namespaces_down: Mutex<HashSet<String>>,
    faults_used: Mutex<BTreeMap<String, u32>>,
}

impl TestBackend {
    /// Hosts `NODE1`… `NODEn`, en-US, OEM code page 437.
    pub fn new(count: usize) -> Self {
        Self::with_hosts(
            (1..=count)
                .map(|i| HostInfo {
                    name: format!("NODE{i}"),
                    oem_codepage: 437,
                    locale: "en-US".to_owned(),
                })
                .collect(),
        )
    }

    /// These hosts.
    pub fn with_hosts(hosts: Vec<HostInfo>) -> Self {
        let state = hosts
            .iter()
            .map(|h| (h.name.clone(), HostState::default()))
            .collect();
        TestBackend {
            hosts,
            state: Mutex::new(state),
            files: Mutex::new(HashMap::new()),
            wql: Mutex::new(HashMap::new()),
            namespaces_down: Mutex::new(HashSet::new()),
            faults_used: Mutex::new(BTreeMap::new()),
        }
    }

    fn with_host<T>(&self, host: &str, f: impl FnOnce(&mut HostState) -> T) -> T {
        let mut state = self.state.lock().unwrap();
        f(state.entry(host.to_owned()).or_default())
    }

    /// Makes `host` refuse (`false`) or accept (`true`) connections.
    pub fn set_up(&self, host: &str, up: bool) {
        self.with_host(host, |h| h.down = !up);
    }

    /// Arms protocol faults on `host`.
    pub fn set_faults(&self, host: &str, faults: ProtocolFaults) {
        self.with_host(host, |h| h.faults = faults);
    }

    /// Simulates a reboot of `host` (its boot epoch increases).
    pub fn reboot(&self, host: &str) {
        self.with_host(host, |h| h.epoch += 1);
    }

    /// How many times the server reported using a one-shot fault on `host`.
    pub fn faults_used(&self, host: &str) -> u32 {
        self.faults_used
            .lock()
            .unwrap()
            .get(host)
            .copied()
            .unwrap_or(0)
    }

    /// Command lines started on `host`, in order.
    pub fn started(&self, host: &str) -> Vec<String> {
        self.with_host(host, |h| h.started.clone())
    }

    /// Registers the text `type NAME` prints.
    pub fn set_file(&self, name: &str, text: &str) {
        self.files
            .lock()
            .unwrap()
            .insert(name.to_ascii_lowercase(), text.to_owned());
    }

    /// Registers the objects a WQL query on `class` returns (any namespace, any host).
    pub fn set_wql(&self, class: &str, objects: Vec<WmiObject>) {
        self.wql
            .lock()
            .unwrap()
            .insert(class.to_ascii_lowercase(), objects);
    }

    /// Makes WMI namespace `namespace` unavailable (or available again).
    pub fn set_namespace_down(&self, namespace: &str, down: bool) {
        let mut set = self.namespaces_down.lock().unwrap();
        if down {
            set.insert(namespace.to_ascii_lowercase());
        } else {
            set.remove(&namespace.to_ascii_lowercase());
        }
    }
}

fn spawn_script(
    script: impl FnOnce(
            mpsc::UnboundedSender<ProcessEvent>,
            mpsc::UnboundedReceiver<Vec<u8>>,
            oneshot::Receiver<()>,
        ) -> futures::future::BoxFuture<'static, ()>
        + Send
        + 'static,
) -> ProcessHandle {
    let (events_tx, events) = mpsc::unbounded_channel();
    let (stdin, stdin_rx) = mpsc::unbounded_channel();
    let (terminate, terminate_rx) = oneshot::channel();
    tokio::spawn(script(events_tx, stdin_rx, terminate_rx));
    ProcessHandle {
        events,
        stdin,
        terminate: Some(terminate),
    }
}

fn immediate(events: Vec<ProcessEvent>) -> ProcessHandle {
    let (events_tx, rx) = mpsc::unbounded_channel();
    for event in events {
        let _ = events_tx.send(event);
    }
    let (stdin, _) = mpsc::unbounded_channel();
    ProcessHandle {
        events: rx,
        stdin,
        terminate: None,
    }
}

impl Backend for TestBackend {
    fn hosts(&self) -> Vec<HostInfo> {
        self.hosts.clone()
    }

    fn availability(&self, host: &str) -> Availability {
        if self.with_host(host, |h| h.down) {
            Availability::Down
        } else {
            Availability::Up
        }
    }

    fn protocol_faults(&self, host: &str) -> ProtocolFaults {
        self.with_host(host, |h| h.faults.clone())
    }

    fn protocol_fault_used(&self, host: &str) {
        self.with_host(host, |h| h.faults.drop_mid_receive = false);
        *self
            .faults_used
            .lock()
            .unwrap()
            .entry(host.to_owned())
            .or_default() += 1;
    }

    fn boot_epoch(&self, host: &str) -> u64 {
        self.with_host(host, |h| h.epoch)
    }

    fn start_in_session(&self, host: &str, command_line: &str, _delegable: bool) -> ProcessHandle {
        self.with_host(host, |h| h.started.push(command_line.to_owned()));
        let line = command_line.trim();
        let line = ["cmd.exe /c ", "cmd /c ", "cmd.exe /C ", "cmd /C "]
            .iter()
            .find_map(|p| line.strip_prefix(p))
            .unwrap_or(line)
            .trim();
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.to_owned();
        match verb.to_ascii_lowercase().as_str() {
            "echo" => immediate(vec![
                ProcessEvent::Stdout(format!("{rest}\r\n")),
                ProcessEvent::Exit(0),
            ]),
            "err" => immediate(vec![
                ProcessEvent::Stderr(format!("{rest}\r\n")),
                ProcessEvent::Exit(1),
            ]),
            "exit" => immediate(vec![ProcessEvent::Exit(rest.trim().parse().unwrap_or(1))]),
            "lines" => {
                let n: usize = rest.trim().parse().unwrap_or(0);
                let mut events: Vec<ProcessEvent> = (1..=n)
                    .map(|i| ProcessEvent::Stdout(format!("line {i}\r\n")))
                    .collect();
                events.push(ProcessEvent::Exit(0));
                immediate(events)
            }
            "chcp" => {
                let cp = self
                    .hosts
                    .iter()
                    .find(|h| h.name == host)
                    .map(|h| h.oem_codepage)
                    .unwrap_or(437);
                immediate(vec![
                    ProcessEvent::Stdout(format!("Active code page: {cp}\r\n")),
                    ProcessEvent::Exit(0),
                ])
            }
            "type" => match self.files.lock().unwrap().get(&rest.trim().to_ascii_lowercase()) {
                Some(text) => immediate(vec![
                    ProcessEvent::Stdout(text.clone()),
                    ProcessEvent::Exit(0),
                ]),
                None => immediate(vec![
                    ProcessEvent::Stderr("The system cannot find the file specified.\r\n".into()),
                    ProcessEvent::Exit(1),
                ]),
            },
            "sleep" | "slow" => {
                let (ms, text) = rest.split_once(' ').unwrap_or((rest.as_str(), ""));
                let ms: u64 = ms.trim().parse().unwrap_or(0);
                let text = text.to_owned();
                let is_slow = verb.eq_ignore_ascii_case("slow");
                spawn_script(move |tx, _stdin, terminate| {
                    Box::pin(async move {
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(ms)) => {
                                if is_slow {
                                    let _ = tx.send(ProcessEvent::Stdout(format!("{text}\r\n")));
                                }
                                let _ = tx.send(ProcessEvent::Exit(0));
                            }
                            _ = terminate => {
                                let _ = tx.send(ProcessEvent::Exit(CTRL_C_EXIT));
                            }
                        }
                    })
                })
            }
            "cat" => spawn_script(|tx, mut stdin, terminate| {
                Box::pin(async move {
                    tokio::pin!(terminate);
                    loop {
                        tokio::select! {
                            data = stdin.recv() => match data {
                                Some(bytes) => {
                                    let text = String::from_utf8_lossy(&bytes).into_owned();
                                    let _ = tx.send(ProcessEvent::Stdout(text));
                                }
                                None => {
                                    let _ = tx.send(ProcessEvent::Exit(0));
                                    return;
                                }
                            },
                            _ = &mut terminate => {
                                let _ = tx.send(ProcessEvent::Exit(CTRL_C_EXIT));
                                return;
                            }
                        }
                    }
                })
            }),
            "wait" => spawn_script(|tx, _stdin, terminate| {
                Box::pin(async move {
                    let _ = terminate.await;
                    let _ = tx.send(ProcessEvent::Exit(CTRL_C_EXIT));
                })
            }),
            _ => immediate(vec![
                ProcessEvent::Stderr(format!(
                    "'{verb}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
                )),
                ProcessEvent::Exit(9009),
            ]),
        }
    }

    fn wql(&self, _host: &str, namespace: &str, query: &str) -> Result<Vec<WmiObject>, WqlError> {
        if self
            .namespaces_down
            .lock()
            .unwrap()
            .contains(&namespace.to_ascii_lowercase())
        {
            return Err(WqlError::NamespaceUnavailable(namespace.to_owned()));
        }
        let class = super::handler::wql_class(query)
            .ok_or_else(|| WqlError::InvalidQuery(format!("no class in `{query}`")))?;
        self.wql
            .lock()
            .unwrap()
            .get(&class.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| WqlError::InvalidQuery(format!("unknown class `{class}`")))
    }
}
