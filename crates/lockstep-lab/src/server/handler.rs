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
/// `MaxEnvelopeSize` when a request names none (winrm-rs and pywinrm send 153600).
const DEFAULT_MAX_ENVELOPE: usize = 153_600;
/// Smallest `MaxEnvelopeSize` honoured (Windows refuses smaller ones).
const MIN_MAX_ENVELOPE: usize = 8_192;
/// Bytes of a Receive response that are not stream data (envelope, headers, per-chunk tags).
const RECEIVE_OVERHEAD: usize = 4_096;
/// Largest piece one `rsp:Stream` carries, in encoded bytes.
const MAX_CHUNK_BYTES: usize = 16_384;

/// Encodes output events in `codepage` until `budget` bytes; returns the encoded chunks
/// (`true` for stdout) and the events left over (a split event's remainder first).
fn encode_within(
    codepage: u32,
    events: Vec<ProcessEvent>,
    budget: usize,
) -> (Vec<(bool, Vec<u8>)>, Vec<ProcessEvent>) {
    const PER_CHUNK_TAGS: usize = 96;
    let mut encoded = Vec::with_capacity(events.len());
    let mut used = 0usize;
    let mut events = events.into_iter();
    while let Some(event) = events.next() {
        let (stdout, text) = match event {
            ProcessEvent::Stdout(t) => (true, t),
            ProcessEvent::Stderr(t) => (false, t),
            ProcessEvent::Exit(_) => continue,
        };
        let rebuild = |t: &str| {
            if stdout {
                ProcessEvent::Stdout(t.to_owned())
            } else {
                ProcessEvent::Stderr(t.to_owned())
            }
        };
        let mut remaining = text.as_str();
        while !remaining.is_empty() {
            let room = budget.saturating_sub(used);
            if room == 0 && !encoded.is_empty() {
                let mut rest = vec![rebuild(remaining)];
                rest.extend(events);
                return (encoded, rest);
            }
            let limit = room.clamp(1, MAX_CHUNK_BYTES);
            let bytes = codepage::encode(codepage, remaining);
            if bytes.len() <= limit {
                used += bytes.len() + PER_CHUNK_TAGS;
                encoded.push((stdout, bytes));
                break;
            }
            // The longest prefix that fits, cut at a character boundary (at least one
            // character, so progress is always made).
            let mut cut = 0usize;
            let mut size = 0usize;
            let mut buf = [0u8; 4];
            for (i, c) in remaining.char_indices() {
                let n = codepage::encode(codepage, c.encode_utf8(&mut buf)).len();
                if size + n > limit && i > 0 {
                    break;
                }
                size += n;
                cut = i + c.len_utf8();
            }
            let (head, tail) = remaining.split_at(cut);
            let head_bytes = codepage::encode(codepage, head);
            used += head_bytes.len() + PER_CHUNK_TAGS;
            encoded.push((stdout, head_bytes));
            remaining = tail;
        }
    }
    (encoded, Vec::new())
}

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
    max_shells: usize,
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
        Handler {
            backend,
            owner,
            max_shells: usize::MAX,
        }
    }

    /// Refuses a Create beyond `max` open shells of the (single) lab user on one host, with
    /// Windows' `MaxShellsPerUser` fault.
    pub fn with_max_shells(mut self, max: usize) -> Self {
        self.max_shells = max;
        self
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Handles one request body for `host`, under the faults in force. `delegable`: the
    /// connection's authentication holds credentials a started process may pass on to another
    /// server (see [`crate::backend::Backend::start_in_session`]).
    pub async fn handle(
        &self,
        host: &HostRuntime,
        xml: &[u8],
        client_ip: &str,
        faults: &ProtocolFaults,
        delegable: bool,
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
            ns::ACTION_COMMAND => self.command(host, &req, delegable),
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
        {
            let mut table = host.shells.lock().unwrap();
            if table.shells.len() >= self.max_shells {
                return Err(Fault::shell_quota(self.max_shells));
            }
            table
                .shells
                .insert(shell_id.clone(), Arc::new(Shell::new(codepage)));
        }
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

    fn command(
        &self,
        host: &HostRuntime,
        req: &SoapRequest,
        delegable: bool,
    ) -> Result<String, Fault> {
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
        let handle = self
            .backend
            .start_in_session(&host.info.name, &line, delegable);
        let command_id = response::new_id();
        let mut commands = shell.commands.lock().unwrap();
        // A client need not Signal a command whose exit it received (Lockstep does not: one round
        // trip less per command); forget such commands when the shell starts another.
        commands.retain(|_, c| !c.finished());
        commands.insert(command_id.clone(), Arc::new(Command::new(handle)));
        drop(commands);
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
                // Windows never answers with more than MaxEnvelopeSize: output beyond what fits
                // (base64 grows by 4/3, plus the envelope) waits for the next Receive, and the
                // exit is only reported with the last of the output.
                let envelope = req
                    .max_envelope_size
                    .unwrap_or(DEFAULT_MAX_ENVELOPE)
                    .max(MIN_MAX_ENVELOPE);
                let budget = (envelope - RECEIVE_OVERHEAD) / 4 * 3;
                let (encoded, rest) = encode_within(shell.codepage, events, budget);
                let exit = if rest.is_empty() { exit } else { None };
                if !rest.is_empty() {
                    command.put_back(rest).await;
                }
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
        let not_wmi = || {
            Fault::schema_validation(&format!(
                "resource URI `{}` is not a WMI URI",
                req.resource_uri
            ))
        };
        // With a filter: `.../wmi/<namespace>/*` and a WQL query. Without one: enumerate every
        // instance of the class the URI names (`.../wmi/root/cimv2/Win32_Service`).
        let (namespace, query) = match (dialect.as_deref(), filter.as_deref()) {
            (Some(ns::DIALECT_WQL), Some(query)) => (
                wmi_namespace(&req.resource_uri).ok_or_else(not_wmi)?,
                query.to_owned(),
            ),
            (None, None) => {
                let path = req
                    .resource_uri
                    .strip_prefix(ns::RESOURCE_WMI_PREFIX)
                    .ok_or_else(not_wmi)?;
                let (namespace, class) = path.rsplit_once('/').ok_or_else(not_wmi)?;
                if class == "*" || namespace.is_empty() {
                    return Err(Fault::cannot_process_filter(
                        "enumerating `*` needs a WQL filter",
                    ));
                }
                (namespace, format!("SELECT * FROM {class}"))
            }
            _ => {
                return Err(Fault::cannot_process_filter(
                    "only the WQL dialect is supported",
                ))
            }
        };
        let query = query.as_str();
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
    fn output_beyond_the_envelope_waits_for_the_next_receive() {
        let big = "é".repeat(10_000);
        let events = vec![
            ProcessEvent::Stdout("a".into()),
            ProcessEvent::Stdout(big.clone()),
            ProcessEvent::Stderr("z".into()),
        ];
        let (encoded, rest) = encode_within(65001, events, 5_000);
        let sent: usize = encoded.iter().map(|(_, b)| b.len()).sum();
        assert!(sent <= 5_000, "{sent}");
        assert_eq!(encoded[0], (true, b"a".to_vec()));
        // Everything is delivered exactly once, in order, split at a character boundary.
        let mut all = String::new();
        for (_, b) in &encoded {
            all.push_str(std::str::from_utf8(b).unwrap());
        }
        let mut stdout_rest = String::new();
        for e in &rest {
            if let ProcessEvent::Stdout(t) = e {
                stdout_rest.push_str(t);
            }
        }
        assert_eq!(format!("{all}{stdout_rest}"), format!("a{big}"));
        assert_eq!(rest.last(), Some(&ProcessEvent::Stderr("z".into())));
        // A large event within the budget is cut into several chunks of one response.
        let (encoded, rest) = encode_within(
            65001,
            vec![ProcessEvent::Stdout("x".repeat(40_000))],
            100_000,
        );
        assert!(rest.is_empty());
        assert_eq!(encoded.len(), 3);
        assert!(encoded.iter().all(|(_, b)| b.len() <= MAX_CHUNK_BYTES));
        // Within budget: nothing left over.
        let (encoded, rest) = encode_within(437, vec![ProcessEvent::Stdout("x".into())], 5_000);
        assert_eq!(encoded.len(), 1);
        assert!(rest.is_empty());
    }

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
