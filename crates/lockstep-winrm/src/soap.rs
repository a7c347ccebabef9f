//! The WS-Management messages Lockstep sends (MS-WSMV: Create, Command, Receive, Signal,
//! Delete, Enumerate, Pull) and what it reads from the answers (shell and command ids, output
//! streams, exit code, faults, enumeration items).
//!
//! Envelopes are written as Windows' own client writes them (`winrs`, the captures in
//! /work/shared/captures): the options in the header, one `MessageID` per message. Every value
//! placed in XML is escaped.

use base64::Engine as _;
use quick_xml::events::Event;
use quick_xml::Reader;

const NS: &str = concat!(
    r#"xmlns:s="http://www.w3.org/2003/05/soap-envelope" "#,
    r#"xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" "#,
    r#"xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" "#,
    r#"xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" "#,
    r#"xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration""#
);
const CMD_URI: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";
const TRANSFER: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer";
const SHELL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
const ENUMERATION: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration";
const WQL: &str = "http://schemas.microsoft.com/wbem/wsman/1/WQL";
const TERMINATE: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate";
const DONE: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done";
/// The WSManFault code of an expired Receive long poll (`w:TimedOut`).
pub const TIMED_OUT_FAULT_CODE: &str = "2150858793";

/// Escapes text for an XML element or attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// What every message of one node shares.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// `http(s)://host:port/wsman`.
    pub endpoint: String,
    /// Long-poll length (whole seconds).
    pub operation_timeout_secs: u64,
    /// `MaxEnvelopeSize` asked of the node.
    pub max_envelope_size: u32,
}

impl Envelope {
    fn header(
        &self,
        action: &str,
        resource_uri: &str,
        shell: Option<&str>,
        options: &str,
    ) -> String {
        let selector = shell
            .map(|id| {
                format!(
                    r#"<wsman:SelectorSet><wsman:Selector Name="ShellId">{}</wsman:Selector></wsman:SelectorSet>"#,
                    escape(id)
                )
            })
            .unwrap_or_default();
        format!(
            concat!(
                "<s:Header>",
                "<wsa:To>{to}</wsa:To>",
                r#"<wsman:ResourceURI s:mustUnderstand="true">{uri}</wsman:ResourceURI>"#,
                "<wsa:ReplyTo>",
                r#"<wsa:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:Address>"#,
                "</wsa:ReplyTo>",
                r#"<wsa:Action s:mustUnderstand="true">{action}</wsa:Action>"#,
                r#"<wsman:MaxEnvelopeSize s:mustUnderstand="true">{max}</wsman:MaxEnvelopeSize>"#,
                "<wsa:MessageID>uuid:{id}</wsa:MessageID>",
                r#"<wsman:Locale xml:lang="en-US" s:mustUnderstand="false"/>"#,
                "<wsman:OperationTimeout>PT{secs}S</wsman:OperationTimeout>",
                "{selector}{options}",
                "</s:Header>"
            ),
            to = escape(&self.endpoint),
            uri = escape(resource_uri),
            action = action,
            max = self.max_envelope_size,
            id = uuid(),
            secs = self.operation_timeout_secs,
            selector = selector,
            options = options,
        )
    }

    fn message(&self, header: String, body: &str) -> String {
        format!("<s:Envelope {NS}>{header}<s:Body>{body}</s:Body></s:Envelope>")
    }

    /// Create a cmd shell asking for `codepage`.
    pub fn create(&self, codepage: u32) -> String {
        let options = format!(
            concat!(
                "<wsman:OptionSet>",
                r#"<wsman:Option Name="WINRS_NOPROFILE">TRUE</wsman:Option>"#,
                r#"<wsman:Option Name="WINRS_CODEPAGE">{}</wsman:Option>"#,
                "</wsman:OptionSet>"
            ),
            codepage
        );
        let header = self.header(&format!("{TRANSFER}/Create"), CMD_URI, None, &options);
        self.message(
            header,
            "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams>\
             <rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>",
        )
    }

    /// Run `command_line` in `shell`.
    pub fn command(&self, shell: &str, command_line: &str) -> String {
        let options = concat!(
            "<wsman:OptionSet>",
            r#"<wsman:Option Name="WINRS_CONSOLEMODE_STDIN">TRUE</wsman:Option>"#,
            r#"<wsman:Option Name="WINRS_SKIP_CMD_SHELL">FALSE</wsman:Option>"#,
            "</wsman:OptionSet>"
        );
        let header = self.header(&format!("{SHELL}/Command"), CMD_URI, Some(shell), options);
        self.message(
            header,
            &format!(
                "<rsp:CommandLine><rsp:Command>{}</rsp:Command></rsp:CommandLine>",
                escape(command_line)
            ),
        )
    }

    /// Receive the output of `command`.
    pub fn receive(&self, shell: &str, command: &str) -> String {
        let header = self.header(&format!("{SHELL}/Receive"), CMD_URI, Some(shell), "");
        self.message(
            header,
            &format!(
                r#"<rsp:Receive><rsp:DesiredStream CommandId="{}">stdout stderr</rsp:DesiredStream></rsp:Receive>"#,
                escape(command)
            ),
        )
    }

    /// Terminate `command`.
    pub fn terminate(&self, shell: &str, command: &str) -> String {
        let header = self.header(&format!("{SHELL}/Signal"), CMD_URI, Some(shell), "");
        self.message(
            header,
            &format!(
                r#"<rsp:Signal CommandId="{}"><rsp:Code>{TERMINATE}</rsp:Code></rsp:Signal>"#,
                escape(command)
            ),
        )
    }

    /// Delete `shell`.
    pub fn delete(&self, shell: &str) -> String {
        let header = self.header(&format!("{TRANSFER}/Delete"), CMD_URI, Some(shell), "");
        self.message(header, "")
    }

    /// Enumerate the answer of a WQL `query` in `namespace` (`root/cimv2`).
    pub fn enumerate(&self, namespace: &str, query: &str) -> String {
        let uri = format!("http://schemas.microsoft.com/wbem/wsman/1/wmi/{namespace}/*");
        let header = self.header(&format!("{ENUMERATION}/Enumerate"), &uri, None, "");
        self.message(
            header,
            &format!(
                r#"<n:Enumerate><wsman:OptimizeEnumeration/><wsman:MaxElements>32000</wsman:MaxElements><wsman:Filter Dialect="{WQL}">{}</wsman:Filter></n:Enumerate>"#,
                escape(query)
            ),
        )
    }

    /// Pull more items of an enumeration.
    pub fn pull(&self, namespace: &str, context: &str) -> String {
        let uri = format!("http://schemas.microsoft.com/wbem/wsman/1/wmi/{namespace}/*");
        let header = self.header(&format!("{ENUMERATION}/Pull"), &uri, None, "");
        self.message(
            header,
            &format!(
                "<n:Pull><n:EnumerationContext>{}</n:EnumerationContext><n:MaxElements>32000</n:MaxElements></n:Pull>",
                escape(context)
            ),
        )
    }
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// A SOAP fault the node answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `s:Subcode/s:Value` (e.g. `w:TimedOut`), else `s:Code/s:Value`.
    pub code: String,
    /// The WSManFault `Code` attribute (e.g. `2150858793`), if any.
    pub wsman_code: Option<String>,
    /// `s:Reason/s:Text`, or the WSManFault message.
    pub reason: String,
}

impl Fault {
    /// The quota a `w:QuotaLimit` fault reports exhausted (MS-WSMV 3.1.4.5.2.1), by its
    /// WSManFault code: 2150859173 `ERROR_WSMAN_QUOTA_MAX_SHELLS`, 2150859174
    /// `ERROR_WSMAN_QUOTA_MAX_OPERATIONS`, 2150859179 `ERROR_WSMAN_QUOTA_MAX_SHELLUSERS`; `None`
    /// when the fault is not a quota fault.
    pub fn quota(&self) -> Option<&'static str> {
        if !self.code.ends_with("QuotaLimit") {
            return None;
        }
        Some(match self.wsman_code.as_deref() {
            Some("2150859173") => "MaxShellsPerUser",
            Some("2150859174") => "MaxConcurrentOperationsPerUser",
            Some("2150859179") => "MaxConcurrentUsers",
            _ => "a WinRM quota (see the fault)",
        })
    }

    /// The long poll expired without output: an empty poll.
    pub fn is_timed_out(&self) -> bool {
        self.code.ends_with("TimedOut") || self.wsman_code.as_deref() == Some(TIMED_OUT_FAULT_CODE)
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SOAP fault `{}`", self.code)?;
        if let Some(code) = &self.wsman_code {
            write!(f, " ({code})")?;
        }
        write!(f, ": {}", self.reason.trim())
    }
}

/// One Receive answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    /// stdout bytes of this answer.
    pub stdout: Vec<u8>,
    /// stderr bytes of this answer.
    pub stderr: Vec<u8>,
    /// `CommandState` is Done.
    pub done: bool,
    /// The exit code, with Done.
    pub exit_code: Option<i32>,
}

/// Attributes of an element: (local name, value).
type Attributes = Vec<(Vec<u8>, String)>;

fn local(name: &[u8]) -> &[u8] {
    name.rsplit(|b| *b == b':').next().unwrap_or(name)
}

/// Walks an answer: calls `on` with (local name, attributes, text) for every element that has
/// text or is empty.
fn walk(xml: &str, mut on: impl FnMut(&[u8], &[(Vec<u8>, String)], &str)) -> Result<(), String> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<(Vec<u8>, Attributes, String)> = Vec::new();
    loop {
        match reader.read_event() {
            Err(e) => return Err(format!("bad XML at byte {}: {e}", reader.error_position())),
            Ok(Event::Eof) => return Ok(()),
            Ok(Event::Start(e)) => {
                let attrs = attributes(&e);
                stack.push((local(e.name().as_ref()).to_vec(), attrs, String::new()));
            }
            Ok(Event::Empty(e)) => {
                let attrs = attributes(&e);
                on(local(e.name().as_ref()), &attrs, "");
            }
            Ok(Event::Text(t)) => {
                if let Some(top) = stack.last_mut() {
                    let text = t.unescape().map_err(|e| e.to_string())?;
                    top.2.push_str(&text);
                }
            }
            Ok(Event::End(_)) => {
                if let Some((name, attrs, text)) = stack.pop() {
                    on(&name, &attrs, &text);
                }
            }
            Ok(_) => {}
        }
    }
}

fn attributes(e: &quick_xml::events::BytesStart<'_>) -> Vec<(Vec<u8>, String)> {
    e.attributes()
        .flatten()
        .map(|a| {
            (
                local(a.key.as_ref()).to_vec(),
                a.unescape_value()
                    .map(|v| v.into_owned())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

fn attr<'a>(attrs: &'a [(Vec<u8>, String)], name: &[u8]) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k.as_slice() == name)
        .map(|(_, v)| v.as_str())
}

/// The fault in an answer, if it is one.
pub fn fault(xml: &str) -> Option<Fault> {
    if !xml.contains("Fault") {
        return None;
    }
    let mut code = None;
    let mut subcode = None;
    let mut wsman_code = None;
    let mut reason = None;
    let mut message = None;
    let mut in_fault = false;
    walk(xml, |name, attrs, text| match name {
        b"Value" if subcode.is_none() && code.is_some() => subcode = Some(text.trim().to_owned()),
        b"Value" if code.is_none() => code = Some(text.trim().to_owned()),
        b"Text" if reason.is_none() => reason = Some(text.trim().to_owned()),
        b"Message" if message.is_none() => message = Some(text.trim().to_owned()),
        b"WSManFault" => {
            wsman_code = attr(attrs, b"Code").map(str::to_owned);
        }
        b"Fault" => in_fault = true,
        _ => {}
    })
    .ok()?;
    if !in_fault {
        return None;
    }
    Some(Fault {
        code: subcode.or(code).unwrap_or_default(),
        wsman_code,
        reason: reason.or(message).unwrap_or_default(),
    })
}

/// The text of the first element named `local_name`.
pub fn text_of(xml: &str, local_name: &str) -> Option<String> {
    let mut found = None;
    walk(xml, |name, _, text| {
        if found.is_none() && name == local_name.as_bytes() {
            found = Some(text.trim().to_owned());
        }
    })
    .ok()?;
    found.filter(|t| !t.is_empty())
}

/// A Receive answer's streams, state and exit code.
pub fn received(xml: &str) -> Result<Received, String> {
    let mut out = Received::default();
    let mut error = None;
    walk(xml, |name, attrs, text| match name {
        b"Stream" => {
            let bytes = match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
                Ok(b) => b,
                Err(e) => {
                    error = Some(format!("stream is not base64: {e}"));
                    return;
                }
            };
            match attr(attrs, b"Name") {
                Some("stdout") => out.stdout.extend_from_slice(&bytes),
                Some("stderr") => out.stderr.extend_from_slice(&bytes),
                _ => {}
            }
        }
        b"CommandState" if attr(attrs, b"State") == Some(DONE) => out.done = true,
        b"ExitCode" => match text.trim().parse() {
            Ok(code) => out.exit_code = Some(code),
            Err(_) => error = Some(format!("exit code `{}` is not a number", text.trim())),
        },
        _ => {}
    })?;
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The raw items (inner XML of `Items`), the enumeration context, and whether it ended.
pub fn enumeration(xml: &str) -> Result<(String, Option<String>, bool), String> {
    let items = inner_xml(xml, "Items").unwrap_or_default();
    let context = text_of(xml, "EnumerationContext");
    let ended = xml.contains("EndOfSequence");
    Ok((items, context, ended))
}

/// The inner XML of the first element named `local_name`.
fn inner_xml(xml: &str, local_name: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event().ok()? {
            Event::Eof => return None,
            Event::Start(e) if local(e.name().as_ref()) == local_name.as_bytes() => {
                let end = e.to_end().into_owned();
                let span = reader.read_to_end(end.name()).ok()?;
                return xml
                    .get(span.start as usize..span.end as usize)
                    .map(str::to_owned);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMED_OUT: &str = r#"<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header/><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:TimedOut</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  </s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150858793" Machine="win"><f:Message>...</f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>"#;

    #[test]
    fn reads_the_timed_out_fault_of_the_windows_capture() {
        let f = fault(TIMED_OUT).unwrap();
        assert_eq!(f.code, "w:TimedOut");
        assert_eq!(f.wsman_code.as_deref(), Some("2150858793"));
        assert!(f.is_timed_out());
        assert!(f.reason.starts_with("The WS-Management service"));
        assert!(fault("<s:Envelope><s:Body><rsp:Shell/></s:Body></s:Envelope>").is_none());
    }

    #[test]
    fn reads_streams_state_and_exit_code() {
        let xml = format!(
            r#"<s:Envelope xmlns:s="a" xmlns:rsp="b"><s:Body><rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C">aGVsbG8=</rsp:Stream><rsp:Stream Name="stderr" CommandId="C">YmFk</rsp:Stream><rsp:Stream Name="stdout" CommandId="C" End="true"></rsp:Stream><rsp:CommandState CommandId="C" State="{DONE}"><rsp:ExitCode>3010</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse></s:Body></s:Envelope>"#
        );
        let r = received(&xml).unwrap();
        assert_eq!(r.stdout, b"hello");
        assert_eq!(r.stderr, b"bad");
        assert!(r.done);
        assert_eq!(r.exit_code, Some(3010));
    }

    #[test]
    fn escapes_what_it_writes() {
        let e = Envelope {
            endpoint: "http://h:5985/wsman".into(),
            operation_timeout_secs: 60,
            max_envelope_size: 153_600,
        };
        let xml = e.command("S-1", r#"echo <a & "b">"#);
        assert!(xml.contains("echo &lt;a &amp; &quot;b&quot;&gt;"), "{xml}");
        assert_eq!(
            text_of(&xml, "Command").as_deref(),
            Some(r#"echo <a & "b">"#)
        );
        let items = r#"<s:Envelope xmlns:s="a" xmlns:w="b"><s:Body><n:EnumerateResponse xmlns:n="c"><w:Items><p:X xmlns:p="d"><p:Name>a</p:Name></p:X></w:Items><w:EndOfSequence/></n:EnumerateResponse></s:Body></s:Envelope>"#;
        let (inner, _, ended) = enumeration(items).unwrap();
        assert_eq!(inner, r#"<p:X xmlns:p="d"><p:Name>a</p:Name></p:X>"#);
        assert!(ended);
    }
}
