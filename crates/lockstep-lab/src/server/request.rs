//! Parsing a SOAP 1.2 WS-Management request with a streaming, namespace-aware reader.
//!
//! Elements are matched by namespace URI and local name, never by prefix. Only the headers and
//! body elements the server acts on are kept.

use std::time::Duration;

use base64::Engine as _;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use super::ns;

/// Why a request could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not well-formed XML.
    #[error("request is not well-formed XML: {0}")]
    Xml(String),
    /// Not a SOAP 1.2 envelope.
    #[error("request is not a SOAP 1.2 envelope (root `{0}`)")]
    NotSoap(String),
    /// A `Send` stream is not valid base64.
    #[error("stream `{0}` is not valid base64")]
    BadBase64(String),
}

/// The body of a request, by its root element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// No body element (`Delete`).
    Empty,
    /// `rsp:Shell` (Create).
    Shell {
        /// `rsp:InputStreams`.
        input_streams: String,
        /// `rsp:OutputStreams`.
        output_streams: String,
    },
    /// `rsp:CommandLine` (Command).
    CommandLine {
        /// `rsp:Command`.
        command: String,
        /// Each `rsp:Arguments`.
        arguments: Vec<String>,
    },
    /// `rsp:Receive`.
    Receive {
        /// `CommandId` of `rsp:DesiredStream`.
        command_id: Option<String>,
    },
    /// `rsp:Send`.
    Send {
        /// Each `rsp:Stream`.
        streams: Vec<SendStream>,
    },
    /// `rsp:Signal`.
    Signal {
        /// `CommandId` attribute.
        command_id: Option<String>,
        /// `rsp:Code`.
        code: String,
    },
    /// `n:Enumerate`.
    Enumerate {
        /// `Dialect` of `wsman:Filter`.
        dialect: Option<String>,
        /// Text of `wsman:Filter`.
        filter: Option<String>,
        /// `wsman:OptimizeEnumeration` present.
        optimize: bool,
        /// `wsman:MaxElements`.
        max_elements: Option<u32>,
    },
    /// `n:Pull`.
    Pull {
        /// `n:EnumerationContext`.
        context: String,
        /// `n:MaxElements`.
        max_elements: Option<u32>,
    },
    /// `n:Release`.
    Release {
        /// `n:EnumerationContext`.
        context: String,
    },
    /// Any other body root (local name).
    Other(String),
}

/// One `rsp:Stream` of a `Send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendStream {
    /// `Name` (`stdin`).
    pub name: String,
    /// `CommandId`.
    pub command_id: Option<String>,
    /// `End="true"`: the input is closed after these bytes.
    pub end: bool,
    /// Decoded bytes.
    pub data: Vec<u8>,
}

/// A parsed WS-Management request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapRequest {
    /// `wsa:Action`.
    pub action: String,
    /// `wsa:MessageID`.
    pub message_id: String,
    /// `wsa:To`.
    pub to: String,
    /// `wsman:ResourceURI`.
    pub resource_uri: String,
    /// `wsman:OperationTimeout`.
    pub operation_timeout: Option<Duration>,
    /// `wsman:MaxEnvelopeSize` in bytes.
    pub max_envelope_size: Option<usize>,
    /// `wsman:Selector Name="ShellId"`.
    pub shell_id: Option<String>,
    /// `wsman:Option` name and value pairs.
    pub options: Vec<(String, String)>,
    /// `xml:lang` of `wsman:Locale`: the language the client wants faults and answers in.
    pub locale: Option<String>,
    /// The body.
    pub body: Body,
}

impl SoapRequest {
    /// The value of option `name` (case-insensitive name).
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ns {
    Soap,
    Addressing,
    Wsman,
    Shell,
    Enumeration,
    Other,
}

fn classify(resolved: &ResolveResult<'_>) -> Ns {
    match resolved {
        ResolveResult::Bound(ns) => match ns.as_ref() {
            b if b == ns::SOAP.as_bytes() => Ns::Soap,
            b if b == ns::ADDRESSING.as_bytes() => Ns::Addressing,
            b if b == ns::WSMAN.as_bytes() => Ns::Wsman,
            b if b == ns::SHELL.as_bytes() => Ns::Shell,
            b if b == ns::ENUMERATION.as_bytes() => Ns::Enumeration,
            _ => Ns::Other,
        },
        _ => Ns::Other,
    }
}

fn attr(start: &BytesStart<'_>, local: &[u8]) -> Option<String> {
    start
        .attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == local)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// Parses an ISO 8601 duration as WS-Management sends one (`xs:duration`: `PT20S`, `PT0.5S`,
/// `PT1M30S`, `P0DT0H0M20S`, days of 24 hours); `None` for anything else, a negative one, or
/// one in months or years (of no fixed length).
pub fn parse_duration(text: &str) -> Option<Duration> {
    static PARSER: jiff::fmt::temporal::SpanParser = jiff::fmt::temporal::SpanParser::new();
    let span = PARSER.parse_span(text.trim()).ok()?;
    let d = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .ok()?;
    Duration::try_from(d).ok()
}

/// Parses one request envelope.
pub fn parse(xml: &[u8]) -> Result<SoapRequest, RequestError> {
    let mut reader = NsReader::from_reader(xml);
    reader.config_mut().trim_text(false);
    let mut p = Parser::default();
    loop {
        let (resolved, event) = reader
            .read_resolved_event()
            .map_err(|e| RequestError::Xml(e.to_string()))?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let is_empty = matches!(event, Event::Empty(_));
                p.open(&resolved, start, is_empty)?;
            }
            Event::Text(t) => {
                let s = t.unescape().map_err(|e| RequestError::Xml(e.to_string()))?;
                p.text.push_str(&s);
            }
            Event::CData(c) => {
                p.text.push_str(&String::from_utf8_lossy(&c.into_inner()));
            }
            Event::End(_) => {
                p.close()?;
                p.text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    p.finish()
}

/// What [`parse`] has read so far of an envelope.
struct Parser {
    /// Open elements.
    stack: Vec<(Ns, String)>,
    /// Text of the element being read.
    text: String,
    req: SoapRequest,
    /// Attributes of the element whose text is being collected.
    pending_name_attr: Option<String>,
    send_stream: Option<SendStream>,
    send_streams: Vec<SendStream>,
    arguments: Vec<String>,
    command: String,
    input_streams: String,
    output_streams: String,
    signal_code: String,
    enum_ctx: String,
    dialect: Option<String>,
    filter: Option<String>,
    optimize: bool,
    max_elements: Option<u32>,
    /// The first element of the SOAP body.
    body_root: Option<(Ns, String)>,
    /// Whether the root element was seen (and is a SOAP envelope).
    root_checked: bool,
}

impl Default for Parser {
    fn default() -> Parser {
        Parser {
            stack: Vec::with_capacity(8),
            text: String::new(),
            req: SoapRequest {
                action: String::new(),
                message_id: String::new(),
                to: String::new(),
                resource_uri: String::new(),
                operation_timeout: None,
                max_envelope_size: None,
                shell_id: None,
                options: Vec::new(),
                locale: None,
                body: Body::Empty,
            },
            pending_name_attr: None,
            send_stream: None,
            send_streams: Vec::new(),
            arguments: Vec::new(),
            command: String::new(),
            input_streams: String::new(),
            output_streams: String::new(),
            signal_code: String::new(),
            enum_ctx: String::new(),
            dialect: None,
            filter: None,
            optimize: false,
            max_elements: None,
            body_root: None,
            root_checked: false,
        }
    }
}

impl Parser {
    /// An element opens (`is_empty`: and closes at once).
    fn open(
        &mut self,
        resolved: &ResolveResult<'_>,
        start: &BytesStart<'_>,
        is_empty: bool,
    ) -> Result<(), RequestError> {
        let ns = classify(resolved);
        let local = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
        if !self.root_checked {
            self.root_checked = true;
            if ns != Ns::Soap || local != "Envelope" {
                return Err(RequestError::NotSoap(local));
            }
        }
        let depth = self.stack.len();
        let in_body = depth >= 2 && self.stack[1].0 == Ns::Soap && self.stack[1].1 == "Body";
        if in_body && depth == 2 {
            self.body_root = Some((ns, local.clone()));
            match (ns, local.as_str()) {
                (Ns::Shell, "Receive") => {}
                (Ns::Shell, "Signal") => {
                    self.req.body = Body::Signal {
                        command_id: attr(start, b"CommandId"),
                        code: String::new(),
                    };
                }
                _ => {}
            }
        }
        match (ns, local.as_str()) {
            (Ns::Wsman, "Selector") | (Ns::Wsman, "Option") => {
                self.pending_name_attr = attr(start, b"Name");
            }
            (Ns::Shell, "DesiredStream") if in_body => {
                self.req.body = Body::Receive {
                    command_id: attr(start, b"CommandId"),
                };
            }
            (Ns::Shell, "Stream") if in_body => {
                let end = attr(start, b"End")
                    .map(|v| v.eq_ignore_ascii_case("true"))
                    .unwrap_or(false);
                self.send_stream = Some(SendStream {
                    name: attr(start, b"Name").unwrap_or_default(),
                    command_id: attr(start, b"CommandId"),
                    end,
                    data: Vec::new(),
                });
            }
            (Ns::Wsman, "Filter") if in_body => {
                self.dialect = attr(start, b"Dialect");
            }
            (Ns::Wsman, "OptimizeEnumeration") if in_body => self.optimize = true,
            (Ns::Wsman, "Locale") if !in_body => {
                self.req.locale = attr(start, b"lang").filter(|l| !l.trim().is_empty());
            }
            _ => {}
        }
        self.text.clear();
        if is_empty {
            // An empty element ends here: treat it like Start+End with no text.
            self.stack.push((ns, local));
            self.close()?;
        } else {
            self.stack.push((ns, local));
        }
        Ok(())
    }

    /// The innermost open element closes.
    fn close(&mut self) -> Result<(), RequestError> {
        close_element(
            &mut self.stack,
            &self.text,
            &mut self.req,
            &mut self.pending_name_attr,
            &mut self.send_stream,
            &mut self.send_streams,
            &mut self.arguments,
            &mut self.command,
            &mut self.input_streams,
            &mut self.output_streams,
            &mut self.signal_code,
            &mut self.enum_ctx,
            &mut self.filter,
            &mut self.max_elements,
        )
    }

    /// The request, once the envelope is read: its body from the body's root element.
    fn finish(self) -> Result<SoapRequest, RequestError> {
        let Parser {
            mut req,
            body_root,
            root_checked,
            input_streams,
            output_streams,
            command,
            arguments,
            send_streams,
            signal_code,
            dialect,
            filter,
            optimize,
            max_elements,
            enum_ctx,
            ..
        } = self;
        if !root_checked {
            return Err(RequestError::NotSoap(String::new()));
        }
        req.body = match body_root {
            None => Body::Empty,
            Some((Ns::Shell, root)) => match root.as_str() {
                "Shell" => Body::Shell {
                    input_streams,
                    output_streams,
                },
                "CommandLine" => Body::CommandLine { command, arguments },
                "Receive" => match req.body {
                    Body::Receive { .. } => req.body,
                    _ => Body::Receive { command_id: None },
                },
                "Send" => Body::Send {
                    streams: send_streams,
                },
                "Signal" => match req.body {
                    Body::Signal { command_id, .. } => Body::Signal {
                        command_id,
                        code: signal_code,
                    },
                    _ => Body::Signal {
                        command_id: None,
                        code: signal_code,
                    },
                },
                _ => Body::Other(root),
            },
            Some((Ns::Enumeration, root)) => match root.as_str() {
                "Enumerate" => Body::Enumerate {
                    dialect,
                    filter,
                    optimize,
                    max_elements,
                },
                "Pull" => Body::Pull {
                    context: enum_ctx,
                    max_elements,
                },
                "Release" => Body::Release { context: enum_ctx },
                _ => Body::Other(root),
            },
            Some((_, root)) => Body::Other(root),
        };
        Ok(req)
    }
}

#[allow(clippy::too_many_arguments)]
fn close_element(
    stack: &mut Vec<(Ns, String)>,
    text: &str,
    req: &mut SoapRequest,
    pending_name_attr: &mut Option<String>,
    send_stream: &mut Option<SendStream>,
    send_streams: &mut Vec<SendStream>,
    arguments: &mut Vec<String>,
    command: &mut String,
    input_streams: &mut String,
    output_streams: &mut String,
    signal_code: &mut String,
    enum_ctx: &mut String,
    filter: &mut Option<String>,
    max_elements: &mut Option<u32>,
) -> Result<(), RequestError> {
    let Some((ns, local)) = stack.pop() else {
        return Ok(());
    };
    let depth = stack.len();
    let in_header = depth >= 2 && stack[1].0 == Ns::Soap && stack[1].1 == "Header";
    let in_body = depth >= 2 && stack[1].0 == Ns::Soap && stack[1].1 == "Body";
    if in_header {
        match (ns, local.as_str()) {
            (Ns::Addressing, "Action") => req.action = text.trim().to_owned(),
            (Ns::Addressing, "MessageID") => req.message_id = text.trim().to_owned(),
            (Ns::Addressing, "To") if depth == 2 => req.to = text.trim().to_owned(),
            (Ns::Wsman, "ResourceURI") => req.resource_uri = text.trim().to_owned(),
            (Ns::Wsman, "OperationTimeout") => req.operation_timeout = parse_duration(text),
            (Ns::Wsman, "MaxEnvelopeSize") => req.max_envelope_size = text.trim().parse().ok(),
            (Ns::Wsman, "Selector") if pending_name_attr.take().as_deref() == Some("ShellId") => {
                req.shell_id = Some(text.trim().to_owned());
            }
            _ => {}
        }
    }
    if !in_body && ns == Ns::Wsman && local == "Option" {
        // Options are read in the header and also in a `wsman:OptionSet` placed directly
        // under the envelope, where winrm-rs 1.1 puts the Create options (Windows' own
        // clients put them in the header): the lab accepts both.
        if let Some(name) = pending_name_attr.take() {
            req.options.push((name, text.trim().to_owned()));
        }
    }
    if in_body {
        match (ns, local.as_str()) {
            (Ns::Shell, "InputStreams") => *input_streams = text.trim().to_owned(),
            (Ns::Shell, "OutputStreams") => *output_streams = text.trim().to_owned(),
            (Ns::Shell, "Command") => *command = text.trim().to_owned(),
            (Ns::Shell, "Arguments") => arguments.push(text.to_owned()),
            (Ns::Shell, "Code") => *signal_code = text.trim().to_owned(),
            (Ns::Shell, "Stream") => {
                if let Some(mut stream) = send_stream.take() {
                    let trimmed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                    stream.data = base64::engine::general_purpose::STANDARD
                        .decode(trimmed.as_bytes())
                        .map_err(|_| RequestError::BadBase64(stream.name.clone()))?;
                    send_streams.push(stream);
                }
            }
            (Ns::Enumeration, "EnumerationContext") => *enum_ctx = text.trim().to_owned(),
            (Ns::Wsman, "Filter") => *filter = Some(text.trim().to_owned()),
            (Ns::Wsman, "MaxElements") | (Ns::Enumeration, "MaxElements") => {
                *max_elements = text.trim().parse().ok();
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIVE: &str = r#"<s:Envelope xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header><wsa:Action s:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive</wsa:Action><wsa:MessageID>uuid:99A5</wsa:MessageID><wsman:OperationTimeout>PT20S</wsman:OperationTimeout><wsa:ReplyTo><wsa:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:Address></wsa:ReplyTo><wsman:ResourceURI s:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</wsman:ResourceURI><wsa:To>https://127.0.0.1:55986/wsman</wsa:To><wsman:OptionSet s:mustUnderstand="true"><wsman:Option Name="WSMAN_CMDSHELL_OPTION_KEEPALIVE">True</wsman:Option></wsman:OptionSet><wsman:SelectorSet><wsman:Selector Name="ShellId">19CE36E9</wsman:Selector></wsman:SelectorSet></s:Header><s:Body><rsp:Receive><rsp:DesiredStream CommandId="789B">stdout stderr</rsp:DesiredStream></rsp:Receive></s:Body></s:Envelope>"#;

    #[test]
    fn parses_receive_headers_and_body() {
        let req = parse(RECEIVE.as_bytes()).unwrap();
        assert_eq!(req.action, ns::ACTION_RECEIVE);
        assert_eq!(req.message_id, "uuid:99A5");
        assert_eq!(req.to, "https://127.0.0.1:55986/wsman");
        assert_eq!(req.shell_id.as_deref(), Some("19CE36E9"));
        assert_eq!(req.operation_timeout, Some(Duration::from_secs(20)));
        assert_eq!(req.max_envelope_size, None);
        assert_eq!(req.option("wsman_cmdshell_option_keepalive"), Some("True"));
        assert_eq!(
            req.body,
            Body::Receive {
                command_id: Some("789B".into())
            }
        );
    }

    #[test]
    fn matches_by_namespace_not_prefix() {
        // Same document with other prefixes: still understood.
        let other = RECEIVE
            .replace("rsp:", "q1:")
            .replace("xmlns:rsp", "xmlns:q1")
            .replace("wsa:", "addr:")
            .replace("xmlns:wsa", "xmlns:addr");
        let req = parse(other.as_bytes()).unwrap();
        assert_eq!(req.action, ns::ACTION_RECEIVE);
        assert!(matches!(
            req.body,
            Body::Receive {
                command_id: Some(_)
            }
        ));
        // A look-alike element in a foreign namespace is ignored.
        let foreign = RECEIVE.replace(
            "xmlns:wsa=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\"",
            "xmlns:wsa=\"urn:not-addressing\"",
        );
        assert_eq!(parse(foreign.as_bytes()).unwrap().action, "");
    }

    #[test]
    fn parses_command_line_with_escaped_arguments() {
        let xml = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header/><s:Body><rsp:CommandLine><rsp:Command>cmd.exe</rsp:Command><rsp:Arguments>/c echo out &amp;&amp; exit 1</rsp:Arguments></rsp:CommandLine></s:Body></s:Envelope>"#;
        let req = parse(xml.as_bytes()).unwrap();
        assert_eq!(
            req.body,
            Body::CommandLine {
                command: "cmd.exe".into(),
                arguments: vec!["/c echo out && exit 1".into()]
            }
        );
    }

    #[test]
    fn rejects_non_soap_and_broken_xml() {
        assert!(matches!(
            parse(b"<html><body/></html>"),
            Err(RequestError::NotSoap(_))
        ));
        assert!(
            parse(b"<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><a></b>")
                .is_err()
        );
    }

    #[test]
    fn option_set_under_the_envelope_is_read_too() {
        let xml = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header/><wsman:OptionSet><wsman:Option Name="WINRS_CODEPAGE">850</wsman:Option></wsman:OptionSet><s:Body><rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams></rsp:Shell></s:Body></s:Envelope>"#;
        let req = parse(xml.as_bytes()).unwrap();
        assert_eq!(req.option("WINRS_CODEPAGE"), Some("850"));
        assert!(matches!(req.body, Body::Shell { .. }));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT20S"), Some(Duration::from_secs(20)));
        assert_eq!(parse_duration("PT0.5S"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("PT1M30S"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("P0DT0H0M20S"), Some(Duration::from_secs(20)));
        assert_eq!(parse_duration("20"), None);
        assert_eq!(parse_duration("PT5"), None);
        assert_eq!(parse_duration("-PT5S"), None);
        assert_eq!(parse_duration("20s"), None);
        assert_eq!(parse_duration("P1D"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("P1M"), None);
    }
}
