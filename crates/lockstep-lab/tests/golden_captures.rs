//! Golden tests: every request recorded from a real Windows WinRM service
//! (`tests/captures/*.yml`, from the pypsrp test suite) is sent to the lab server over HTTP,
//! with a backend that produces the capture's output, and the lab's response must have the
//! same element structure as Windows' response: the same elements (by namespace and local
//! name) in the same order, the same attributes, the same fault codes and texts, the same
//! stream bytes; only ids, addresses and timestamps may differ.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use common::RawClient;
use lockstep_lab::backend::{
    Availability, Backend, HostInfo, ProcessEvent, ProcessHandle, ProtocolFaults, WmiObject,
    WqlError,
};
use lockstep_lab::server::{LabServer, ServerConfig};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use tokio::sync::mpsc;

/// A backend whose processes emit what the test pushes.
#[derive(Default)]
struct Golden {
    started: Mutex<Vec<(String, mpsc::UnboundedSender<ProcessEvent>)>>,
}

impl Backend for Golden {
    fn hosts(&self) -> Vec<HostInfo> {
        vec![HostInfo {
            name: "WIN-GOLDEN".into(),
            oem_codepage: 437,
            locale: "en-US".into(),
        }]
    }
    fn availability(&self, _: &str) -> Availability {
        Availability::Up
    }
    fn protocol_faults(&self, _: &str) -> ProtocolFaults {
        ProtocolFaults::default()
    }
    fn protocol_fault_used(&self, _: &str) {}
    fn boot_epoch(&self, _: &str) -> u64 {
        0
    }
    fn start_in_session(&self, _: &str, command_line: &str, _: bool) -> ProcessHandle {
        let (tx, events) = mpsc::unbounded_channel();
        let (stdin, _) = mpsc::unbounded_channel();
        self.started
            .lock()
            .unwrap()
            .push((command_line.to_owned(), tx));
        ProcessHandle {
            events,
            stdin,
            terminate: None,
        }
    }
    fn wql(&self, _: &str, _: &str, _: &str) -> Result<Vec<WmiObject>, WqlError> {
        Ok(Vec::new())
    }
}

/// An element: namespace URI, local name, attributes (namespace-qualified, no `xmlns`),
/// text, children.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    ns: String,
    local: String,
    attrs: BTreeMap<String, String>,
    text: String,
    children: Vec<Node>,
}

fn parse_tree(xml: &str) -> Node {
    let mut reader = NsReader::from_str(xml);
    let mut stack: Vec<Node> = Vec::new();
    loop {
        let (resolved, event) = reader.read_resolved_event().unwrap();
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let ns = match resolved {
                    ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
                    _ => String::new(),
                };
                let mut attrs = BTreeMap::new();
                for a in e.attributes().flatten() {
                    let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                    if key == "xmlns" || key.starts_with("xmlns:") {
                        continue;
                    }
                    let (attr_ns, local) = reader.resolve_attribute(a.key);
                    let attr_ns = match attr_ns {
                        ResolveResult::Bound(ns) => {
                            String::from_utf8_lossy(ns.as_ref()).into_owned()
                        }
                        _ => String::new(),
                    };
                    let name = format!("{{{attr_ns}}}{}", String::from_utf8_lossy(local.as_ref()));
                    attrs.insert(name, a.unescape_value().unwrap().into_owned());
                }
                let node = Node {
                    ns,
                    local: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    attrs,
                    text: String::new(),
                    children: Vec::new(),
                };
                if matches!(event, Event::Empty(_)) {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => return node,
                    }
                } else {
                    stack.push(node);
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.unescape().unwrap());
                }
            }
            Event::End(_) => {
                let node = stack.pop().unwrap();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => return node,
                }
            }
            Event::Eof => panic!("unexpected end of document"),
            _ => {}
        }
    }
}

/// Elements whose text is an id, address, or host-specific value.
const VARIABLE_TEXT: [&str; 7] = [
    "MessageID",
    "RelatesTo",
    "ShellId",
    "Selector",
    "CommandId",
    "Address",
    "ActivityId",
];
/// Elements whose text depends on the host and the account.
const HOST_TEXT: [&str; 2] = ["Owner", "ClientIP"];

/// Removes `p:ActivityId` headers: Windows Server 2016 adds one to every response, 2012 to
/// none (both appear in the captures); the lab follows 2012 and never sends it.
fn strip_activity_id(node: &mut Node) {
    node.children.retain(|c| c.local != "ActivityId");
    for c in &mut node.children {
        strip_activity_id(c);
    }
}

fn compare(ours: &Node, theirs: &Node, path: &str, diffs: &mut Vec<String>) {
    let here = format!("{path}/{}", theirs.local);
    if ours.ns != theirs.ns || ours.local != theirs.local {
        diffs.push(format!(
            "{here}: element {{{}}}{} where Windows has {{{}}}{}",
            ours.ns, ours.local, theirs.ns, theirs.local
        ));
        return;
    }
    let our_keys: Vec<&String> = ours.attrs.keys().collect();
    let their_keys: Vec<&String> = theirs.attrs.keys().collect();
    if our_keys != their_keys {
        diffs.push(format!(
            "{here}: attributes {our_keys:?} vs Windows {their_keys:?}"
        ));
    }
    for (key, value) in &theirs.attrs {
        let variable = key.ends_with("}CommandId") || key.ends_with("}Machine");
        if !variable && ours.attrs.get(key) != Some(value) {
            diffs.push(format!(
                "{here}@{key}: {:?} vs Windows {value:?}",
                ours.attrs.get(key)
            ));
        }
    }
    let variable_text = VARIABLE_TEXT.contains(&theirs.local.as_str())
        || HOST_TEXT.contains(&theirs.local.as_str());
    if !variable_text && ours.text.trim() != theirs.text.trim() {
        diffs.push(format!(
            "{here}: text {:?} vs Windows {:?}",
            ours.text.trim(),
            theirs.text.trim()
        ));
    }
    if ours.children.len() != theirs.children.len() {
        diffs.push(format!(
            "{here}: children {:?} vs Windows {:?}",
            ours.children.iter().map(|c| &c.local).collect::<Vec<_>>(),
            theirs.children.iter().map(|c| &c.local).collect::<Vec<_>>()
        ));
    }
    for (o, t) in ours.children.iter().zip(&theirs.children) {
        compare(o, t, &here, diffs);
    }
}

fn find<'a>(node: &'a Node, local: &str) -> Option<&'a Node> {
    if node.local == local {
        return Some(node);
    }
    node.children.iter().find_map(|c| find(c, local))
}

fn find_all<'a>(node: &'a Node, local: &str, out: &mut Vec<&'a Node>) {
    if node.local == local {
        out.push(node);
    }
    for c in &node.children {
        find_all(c, local, out);
    }
}

fn action(tree: &Node) -> String {
    find(tree, "Action")
        .map(|n| n.text.trim().to_owned())
        .unwrap_or_default()
}

fn decode(codepage: u32, bytes: &[u8]) -> String {
    if codepage == 65001 {
        String::from_utf8(bytes.to_vec()).unwrap()
    } else {
        oem_cp::decode_string_complete_table(bytes, &oem_cp::code_table::DECODING_TABLE_CP437)
    }
}

#[derive(serde::Deserialize)]
struct Capture {
    messages: Vec<Exchange>,
}

#[derive(serde::Deserialize)]
struct Exchange {
    request: String,
    response: String,
}

async fn replay(file: &str) {
    let text = std::fs::read_to_string(format!(
        "{}/tests/captures/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let capture: Capture = serde_yaml::from_str(&text).unwrap();
    let backend = Arc::new(Golden::default());
    let server = LabServer::start(
        backend.clone(),
        // The captures' requests are replayed unsealed: the weakened-node opt-in.
        ServerConfig {
            allow_unencrypted: true,
            ..ServerConfig::with_credentials("vagrant", "pw")
        },
    )
    .await
    .unwrap();
    let port: u16 = server.endpoints()["WIN-GOLDEN"]
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/wsman")
        .parse()
        .unwrap();
    let mut client = RawClient::connect(port, "vagrant", "pw").await.unwrap();
    // Capture id -> lab id, and the code page of each lab shell.
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut codepage = 437;
    let mut commands: HashMap<String, usize> = HashMap::new();
    let mut diffs = Vec::new();
    for (step, exchange) in capture.messages.iter().enumerate() {
        let mut theirs = parse_tree(&exchange.response);
        strip_activity_id(&mut theirs);
        let request_tree = parse_tree(&exchange.request);
        let act = action(&request_tree);
        let mut request = exchange.request.clone();
        for (capture_id, lab_id) in &ids {
            request = request.replace(capture_id.as_str(), lab_id);
        }
        let is_timeout = exchange.response.contains("w:TimedOut");
        if act.ends_with("/Create") {
            if let Some(cp) = exchange
                .request
                .split("Name=\"WINRS_CODEPAGE\">")
                .nth(1)
                .and_then(|r| r.split('<').next())
            {
                codepage = cp.parse().unwrap();
            }
        }
        if act.ends_with("/Receive") && !is_timeout {
            // Make the process produce exactly what Windows' process produced.
            let command_id = find(&request_tree, "DesiredStream")
                .and_then(|n| n.attrs.get("{}CommandId"))
                .cloned()
                .unwrap();
            if let Some(index) = commands.get(&command_id) {
                let started = backend.started.lock().unwrap();
                let tx = &started[*index].1;
                let mut streams = Vec::new();
                find_all(&theirs, "Stream", &mut streams);
                for s in streams {
                    let data = base64::engine::general_purpose::STANDARD
                        .decode(s.text.trim())
                        .unwrap();
                    if data.is_empty() {
                        continue;
                    }
                    let text = decode(codepage, &data);
                    let event = if s.attrs["{}Name"] == "stdout" {
                        ProcessEvent::Stdout(text)
                    } else {
                        ProcessEvent::Stderr(text)
                    };
                    tx.send(event).unwrap();
                }
                if let Some(code) = find(&theirs, "ExitCode") {
                    tx.send(ProcessEvent::Exit(code.text.trim().parse().unwrap()))
                        .unwrap();
                }
            }
        }
        if is_timeout {
            // Windows waited the request's full OperationTimeout; the lab is asked for 0.2 s.
            let start = request.find("OperationTimeout>").unwrap() + "OperationTimeout>".len();
            let end = start + request[start..].find('<').unwrap();
            request.replace_range(start..end, "PT0.2S");
        }
        let response = client.post(&request).await.unwrap();
        let expected_status = if theirs.children.iter().any(|b| find(b, "Fault").is_some()) {
            500
        } else {
            200
        };
        assert_eq!(
            response.status, expected_status,
            "{file} step {step} ({act}): {}",
            response.body
        );
        let ours = parse_tree(&response.body);
        let mut step_diffs = Vec::new();
        compare(&ours, &theirs, "", &mut step_diffs);
        diffs.extend(
            step_diffs
                .into_iter()
                .map(|d| format!("{file} step {step} ({act}): {d}")),
        );
        // Learn the ids the lab assigned.
        for local in ["ShellId", "CommandId"] {
            if let (Some(t), Some(o)) = (find(&theirs, local), find(&ours, local)) {
                if local == "ShellId" || act.ends_with("/Command") {
                    ids.insert(t.text.trim().to_owned(), o.text.trim().to_owned());
                }
                if local == "CommandId" && act.ends_with("/Command") {
                    let index = backend.started.lock().unwrap().len() - 1;
                    commands.insert(t.text.trim().to_owned(), index);
                }
            }
        }
    }
    server.shutdown().await;
    assert!(
        diffs.is_empty(),
        "structure differs from Windows:\n{}",
        diffs.join("\n")
    );
}

#[tokio::test]
async fn golden_client_execute_cmd() {
    replay("test_client_execute_cmd.yml").await;
}

#[tokio::test]
async fn golden_winrs_bad_cmd_id() {
    replay("test_winrs_bad_cmd_id.yml").await;
}

#[tokio::test]
async fn golden_winrs_noprofile() {
    replay("test_winrs_noprofile.yml").await;
}

#[tokio::test]
async fn golden_winrs_operation_timeout() {
    replay("test_winrs_operation_timeout.yml").await;
}

#[tokio::test]
async fn golden_winrs_send() {
    replay("test_winrs_send.yml").await;
}

#[tokio::test]
async fn golden_winrs_stderr_rc() {
    replay("test_winrs_stderr_rc.yml").await;
}

#[tokio::test]
async fn golden_winrs_unicode() {
    replay("test_winrs_unicode.yml").await;
}
