//! The SOAP layer: one parsed request of one host in, one response (or a dropped connection)
//! out. Knows shells, commands, enumerations and faults; knows nothing of HTTP or sockets.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::codepage;
use super::ns;
use super::request::{self, Body, SoapRequest};
use super::response::{self, Chunk, CreatedShell, Fault};
use super::shells::{Command, Received, Shell, ShellTable};
use crate::backend::{Backend, HostInfo, ProcessEvent, ProtocolFaults, WmiObject, WqlError};

/// Operation timeout when a request names none (Windows' default is 60 s).
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
/// Enumerations kept per host before the oldest is forgotten.
const MAX_OPEN_ENUMERATIONS: usize = 256;

/// What the HTTP layer does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answer with this status and SOAP body.
    Reply {
        /// HTTP status (200, or 500 for faults).
        status: u16,
        /// SOAP envelope.
        body: String,
    },
    /// Close the TCP connection without answering (`drop_mid_receive`).
    DropConnection,
}

impl Outcome {
    fn ok(body: String) -> Self {
        Outcome::Reply { status: 200, body }
    }
}

/// Open WQL enumerations of one host.
#[derive(Debug, Default)]
pub struct Enumerations {
    open: HashMap<String, VecDeque<String>>,
    order: VecDeque<String>,
}

impl Enumerations {
    fn insert(&mut self, id: String, items: VecDeque<String>) {
        if self.open.len() >= MAX_OPEN_ENUMERATIONS {
            while let Some(oldest) = self.order.pop_front() {
                if self.open.remove(&oldest).is_some() {
                    break;
                }
            }
        }
        self.order.push_back(id.clone());
        self.open.insert(id, items);
    }
}

/// One served host: its identity, shells, enumerations and the availability flag its listener
/// follows.
#[derive(Debug)]
pub struct HostRuntime {
    /// What the backend said about the host.
    pub info: HostInfo,
    /// Shells since the last boot.
    pub shells: Mutex<ShellTable>,
    /// Open enumerations.
    pub enumerations: Mutex<Enumerations>,
    /// `true` while the host is up (its listener is open).
    pub up: watch::Sender<bool>,
}

impl HostRuntime {
    /// A host with no shells, initially up or down.
    pub fn new(info: HostInfo, up: bool, epoch: u64) -> Self {
        HostRuntime {
            info,
            shells: Mutex::new(ShellTable {
                epoch,
                shells: HashMap::new(),
            }),
            enumerations: Mutex::new(Enumerations::default()),
            up: watch::Sender::new(up),
        }
    }

    fn shell(&self, id: &str) -> Option<Arc<Shell>> {
        self.shells.lock().unwrap().shells.get(id).cloned()
    }
}

/// Handles SOAP requests against a backend.
pub struct Handler {
    backend: Arc<dyn Backend>,
    owner: String,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Handler {
    /// A handler whose shells report `owner` as their owner.
    pub fn new(backend: Arc<dyn Backend>, owner: String) -> Self {
        Handler { backend, owner }
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Handles one request body for `host`, under the faults in force.
    pub async fn handle(
        &self,
        host: &HostRuntime,
        xml: &[u8],
        client_ip: &str,
        faults: &ProtocolFaults,
    ) -> Outcome {
        let lang = host.info.locale.as_str();
        let machine = host.info.name.as_str();
        let req = match request::parse(xml) {
            Ok(req) => req,
            Err(e) => {
                return fault_outcome(&Fault::schema_validation(&e.to_string()), lang, "", machine)
            }
        };
        let epoch = self.backend.boot_epoch(machine);
        host.shells.lock().unwrap().observe_epoch(epoch);
        let result = match req.action.as_str() {
            ns::ACTION_CREATE => self.create(host, &req, client_ip),
            ns::ACTION_COMMAND => self.command(host, &req),
            ns::ACTION_RECEIVE => return self.receive(host, &req, faults).await,
            ns::ACTION_SEND => self.send(host, &req),
            ns::ACTION_SIGNAL => self.signal(host, &req),
            ns::ACTION_DELETE => self.delete(host, &req),
            ns::ACTION_ENUMERATE => self.enumerate(host, &req),
            ns::ACTION_PULL => self.pull(host, &req),
            ns::ACTION_RELEASE => self.release(host, &req),
            other => Err(Fault::action_not_supported(other)),
        };
        match result {
            Ok(body) => Outcome::ok(body),
            Err(fault) => fault_outcome(&fault, lang, &req.message_id, machine),
        }
    }

    fn create(
        &self,
        host: &HostRuntime,
        req: &SoapRequest,
        client_ip: &str,
    ) -> Result<String, Fault> {
        let (input_streams, output_streams) = match &req.body {
            Body::Shell {
                input_streams,
                output_streams,
            } => (input_streams.as_str(), output_streams.as_str()),
            _ => ("stdin", "stdout stderr"),
        };
        let codepage = req
            .option("WINRS_CODEPAGE")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|cp| codepage::is_supported(*cp))
            .unwrap_or(host.info.oem_codepage);
        let shell_id = response::new_id();
        host.shells
            .lock()
            .unwrap()
            .shells
            .insert(shell_id.clone(), Arc::new(Shell::new(codepage)));
        tracing::debug!(host = %host.info.name, shell = %shell_id, codepage, "shell created");
        Ok(response::create_response(
            &host.info.locale,
            &req.message_id,
            &CreatedShell {
                address: &req.to,
                shell_id: &shell_id,
                owner: &self.owner,
                client_ip,
                input_streams,
                output_streams,
            },
        ))
    }

    fn shell_of(&self, host: &HostRuntime, req: &SoapRequest) -> Result<Arc<Shell>, Fault> {
        let id = req.shell_id.as_deref().unwrap_or("");
        host.shell(id).ok_or_else(|| Fault::unknown_shell(id))
    }

    fn command(&self, host: &HostRuntime, req: &SoapRequest) -> Result<String, Fault> {
        let shell = self.shell_of(host, req)?;
        let Body::CommandLine { command, arguments } = &req.body else {
            return Err(Fault::schema_validation("Command without rsp:CommandLine"));
        };
        let mut line = String::with_capacity(command.len() + 16);
        line.push_str(command);
        for arg in arguments {
            line.push(' ');
            line.push_str(arg);
        }
        let handle = self.backend.start(&host.info.name, &line);
        let command_id = response::new_id();
        shell
            .commands
            .lock()
            .unwrap()
            .insert(command_id.clone(), Arc::new(Command::new(handle)));
        tracing::debug!(host = %host.info.name, command = %command_id, line = %line, "command started");
        Ok(response::command_response(
            &host.info.locale,
            &req.message_id,
            &command_id,
        ))
    }

    async fn receive(
        &self,
        host: &HostRuntime,
        req: &SoapRequest,
        faults: &ProtocolFaults,
    ) -> Outcome {
        let lang = host.info.locale.as_str();
        let machine = host.info.name.as_str();
        let shell = match self.shell_of(host, req) {
            Ok(shell) => shell,
            Err(fault) => return fault_outcome(&fault, lang, &req.message_id, machine),
        };
        let command_id = match &req.body {
            Body::Receive {
                command_id: Some(id),
            } => id.clone(),
            _ => return fault_outcome(&Fault::unknown_command(), lang, &req.message_id, machine),
        };
        let Some(command) = shell.command(&command_id) else {
            return fault_outcome(&Fault::unknown_command(), lang, &req.message_id, machine);
        };
        let timeout = req.operation_timeout.unwrap_or(DEFAULT_OPERATION_TIMEOUT);
        match command.receive(timeout).await {
            Received::TimedOut => {
                fault_outcome(&Fault::timed_out(), lang, &req.message_id, machine)
            }
            Received::Output { events, exit } => {
                if faults.drop_mid_receive && (!events.is_empty() || exit.is_some()) {
                    // The next Receive gets the same output: the process does not lose it,
                    // only this answer is lost (as when the network drops mid-response).
                    command.put_back(events).await;
                    self.backend.protocol_fault_used(machine);
                    tracing::debug!(host = %machine, command = %command_id, "drop_mid_receive: closing the connection");
                    return Outcome::DropConnection;
                }
                let encoded: Vec<(bool, Vec<u8>)> = events
                    .iter()
                    .filter_map(|e| match e {
                        ProcessEvent::Stdout(t) => {
                            Some((true, codepage::encode(shell.codepage, t)))
                        }
                        ProcessEvent::Stderr(t) => {
                            Some((false, codepage::encode(shell.codepage, t)))
                        }
                        ProcessEvent::Exit(_) => None,
                    })
                    .collect();
                let chunks: Vec<Chunk<'_>> = encoded
                    .iter()
                    .map(|(out, b)| {
                        if *out {
                            Chunk::Stdout(b)
                        } else {
                            Chunk::Stderr(b)
                        }
                    })
                    .collect();
                Outcome::ok(response::receive_response(
                    lang,
                    &req.message_id,
                    &command_id,
                    &chunks,
                    exit,
                ))
            }
        }
    }

    fn send(&self, host: &HostRuntime, req: &SoapRequest) -> Result<String, Fault> {
        let shell = self.shell_of(host, req)?;
        let Body::Send { streams } = &req.body else {
            return Err(Fault::schema_validation("Send without rsp:Send"));
        };
        for stream in streams {
            let id = stream.command_id.as_deref().unwrap_or("");
            let command = shell.command(id).ok_or_else(Fault::unknown_command)?;
            command.send(stream.data.clone(), stream.end);
        }
        Ok(response::send_response(&host.info.locale, &req.message_id))
    }

    fn signal(&self, host: &HostRuntime, req: &SoapRequest) -> Result<String, Fault> {
        let shell = self.shell_of(host, req)?;
        let Body::Signal { command_id, code } = &req.body else {
            return Err(Fault::schema_validation("Signal without rsp:Signal"));
        };
        let id = command_id.as_deref().unwrap_or("");
        let command = shell.command(id).ok_or_else(Fault::unknown_command)?;
        match code.as_str() {
            ns::SIGNAL_TERMINATE => {
                command.interrupt();
                shell.commands.lock().unwrap().remove(id);
            }
            ns::SIGNAL_CTRL_C => command.interrupt(),
            other => {
                return Err(Fault::schema_validation(&format!(
                    "unknown signal code `{other}`"
                )))
            }
        }
        Ok(response::signal_response(
            &host.info.locale,
            &req.message_id,
        ))
    }

    fn delete(&self, host: &HostRuntime, req: &SoapRequest) -> Result<String, Fault> {
        let id = req.shell_id.as_deref().unwrap_or("");
        let removed = host.shells.lock().unwrap().shells.remove(id);
        let Some(shell) = removed else {
            return Err(Fault::unknown_shell(id));
        };
        for (_, command) in shell.commands.lock().unwrap().drain() {
            command.interrupt();
        }
        Ok(response::delete_response(
            &host.info.locale,
            &req.message_id,
        ))
    }

    fn enumerate(&self, host: &HostRuntime, req: &SoapRequest) -> Result<String, Fault> {
        let Body::Enumerate {
            dialect,
            filter,
            optimize,
            max_elements,
        } = &req.body
        else {
            return Err(Fault::schema_validation("Enumerate without n:Enumerate"));
        };
        let namespace = wmi_namespace(&req.resource_uri).ok_or_else(|| {
            Fault::schema_validation(&format!(
                "resource URI `{}` is not a WMI URI",
                req.resource_uri
            ))
        })?;
        if dialect.as_deref() != Some(ns::DIALECT_WQL) {
            return Err(Fault::cannot_process_filter(
                "only the WQL dialect is supported",
            ));
        }
        let query = filter.as_deref().unwrap_or("");
        let class = wql_class(query)
            .ok_or_else(|| Fault::cannot_process_filter(&format!("no class in `{query}`")))?;
        let objects = self
            .backend
            .wql(&host.info.name, namespace, query)
            .map_err(|e| match e {
                WqlError::NamespaceUnavailable(ns) => Fault::namespace_unavailable(&ns),
                WqlError::InvalidQuery(why) => Fault::cannot_process_filter(&why),
            })?;
        let mut items: VecDeque<String> = objects
            .iter()
            .map(|o| render_wmi_object(namespace, class, o))
            .collect();
        let context = format!("uuid:{}", response::new_id());
        let mut out = response::start(
            response::Flavor::Enumeration,
            &host.info.locale,
            "http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse",
            &req.message_id,
        );
        out.push_str("<n:EnumerateResponse><n:EnumerationContext>");
        out.push_str(&context);
        out.push_str("</n:EnumerationContext>");
        if *optimize {
            let take = max_elements.unwrap_or(1).max(1) as usize;
            out.push_str("<w:Items>");
            for item in items.drain(..take.min(items.len())) {
                out.push_str(&item);
            }
            out.push_str("</w:Items>");
            if items.is_empty() {
                out.push_str("<w:EndOfSequence/>");
            }
        }
        out.push_str("</n:EnumerateResponse>");
        if !(*optimize && items.is_empty()) {
            host.enumerations.lock().unwrap().insert(context, items);
        }
        Ok(response::finish(out))
    }

    fn pull(&self, host: &HostRuntime, req: &SoapRequest) -> Result<String, Fault> {
        let Body::Pull {
            context,
            max_elements,
        } = &req.body
        else {
            return Err(Fault::schema_validation("Pull without n:Pull"));
        };
        let mut enumerations = host.enumerations.lock().unwrap();
        let items = enumerations
            .open
            .get_mut(context)
            .ok_or_else(Fault::invalid_enumeration_context)?;
        let take = max_elements.unwrap_or(1).max(1) as usize;
        let mut out = response::start(
            response::Flavor::Enumeration,
            &host.info.locale,
            "http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse",
            &req.message_id,
        );
        out.push_str("<n:PullResponse>");
        let batch: Vec<String> = items.drain(..take.min(items.len())).collect();
        let finished = items.is_empty();
        if !finished {
            out.push_str("<n:EnumerationContext>");
            out.push_str(context);
            out.push_str("</n:EnumerationContext>");
        }
        out.push_str("<n:Items>");
        for item in batch {
            out.push_str(&item);
        }
        out.push_str("</n:Items>");
        if finished {
            out.push_str("<n:EndOfSequence/>");
            enumerations.open.remove(context);
        }
        out.push_str("</n:PullResponse>");
        Ok(response::finish(out))
    }

    fn release(&self, host: &HostRuntime, req: &SoapRequest) -> Result<String, Fault> {
        if let Body::Release { context } = &req.body {
            host.enumerations.lock().unwrap().open.remove(context);
        }
        let out = response::start(
            response::Flavor::Enumeration,
            &host.info.locale,
            "http://schemas.xmlsoap.org/ws/2004/09/enumeration/ReleaseResponse",
            &req.message_id,
        );
        Ok(response::finish(out))
    }
}

fn fault_outcome(fault: &Fault, lang: &str, relates_to: &str, machine: &str) -> Outcome {
    Outcome::Reply {
        status: 500,
        body: fault.render(lang, relates_to, machine),
    }
}

/// `root/cimv2` from `http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*`.
pub fn wmi_namespace(resource_uri: &str) -> Option<&str> {
    let rest = resource_uri.strip_prefix(ns::RESOURCE_WMI_PREFIX)?;
    let ns = rest.strip_suffix("/*").unwrap_or(rest);
    (!ns.is_empty()).then_some(ns)
}

/// The class a WQL `SELECT ... FROM Class [WHERE ...]` reads.
pub fn wql_class(query: &str) -> Option<&str> {
    let mut words = query.split_ascii_whitespace();
    while let Some(word) = words.next() {
        if word.eq_ignore_ascii_case("from") {
            let class = words.next()?;
            let valid =
                !class.is_empty() && class.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            return valid.then_some(class);
        }
    }
    None
}

/// A WMI object as Windows' WMI plug-in writes it: `p:CLASS` with one `p:Property` child each.
pub fn render_wmi_object(namespace: &str, class: &str, object: &WmiObject) -> String {
    let mut out = String::with_capacity(256 + object.len() * 48);
    out.push_str("<p:");
    out.push_str(class);
    out.push_str(" xmlns:p=\"");
    out.push_str(ns::RESOURCE_WMI_PREFIX);
    response::escape_into(&mut out, namespace);
    out.push('/');
    out.push_str(class);
    out.push_str("\" xmlns:cim=\"http://schemas.dmtf.org/wbem/wscim/1/common\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"p:");
    out.push_str(class);
    out.push_str("_Type\">");
    for (name, value) in object {
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            continue;
        }
        out.push_str("<p:");
        out.push_str(name);
        out.push('>');
        response::escape_into(&mut out, value);
        out.push_str("</p:");
        out.push_str(name);
        out.push('>');
    }
    out.push_str("</p:");
    out.push_str(class);
    out.push('>');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wql_helpers() {
        assert_eq!(
            wmi_namespace("http://schemas.microsoft.com/wbem/wsman/1/wmi/root/MSCluster/*"),
            Some("root/MSCluster")
        );
        assert_eq!(wmi_namespace("http://example/other"), None);
        assert_eq!(
            wql_class("SELECT Name,State FROM Win32_Service WHERE Name='W3SVC'"),
            Some("Win32_Service")
        );
        assert_eq!(
            wql_class("select * from MSCluster_Resource"),
            Some("MSCluster_Resource")
        );
        assert_eq!(wql_class("SELECT * FROM"), None);
        assert_eq!(wql_class("SELECT * FROM <x>"), None);
    }

    #[test]
    fn wmi_object_is_escaped_and_typed() {
        let mut object = WmiObject::new();
        object.insert("Name".into(), "a<b&c".into());
        let xml = render_wmi_object("root/cimv2", "Win32_Service", &object);
        assert!(xml.starts_with("<p:Win32_Service xmlns:p=\"http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service\""));
        assert!(xml.contains("xsi:type=\"p:Win32_Service_Type\""));
        assert!(xml.contains("<p:Name>a&lt;b&amp;c</p:Name>"));
    }
}
