//! Writing WS-Management responses shaped as Windows writes them (see
//! `/work/shared/captures/*.yml`): the same prefixes, namespace declarations, elements,
//! attributes and fault details.

use std::fmt::Write as _;

use super::ns;

const ENVELOPE_NS_TRANSFER: &str = r#" xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd""#;
const ENVELOPE_NS_RECEIVE: &str = r#" xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd""#;
const ENVELOPE_NS_DELETE: &str = r#" xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd""#;
const ENVELOPE_NS_FAULT: &str = r#" xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" xmlns:e="http://schemas.xmlsoap.org/ws/2004/08/eventing" xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd""#;
const ENVELOPE_NS_ENUM: &str = r#" xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd""#;
const ANONYMOUS: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";

/// Which namespace declarations the envelope carries (Windows varies them by response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Create, Command, Signal, Send.
    Transfer,
    /// Receive.
    Receive,
    /// Delete.
    Delete,
    /// Faults.
    Fault,
    /// Enumerate, Pull, Release.
    Enumeration,
}

/// Escapes text for element content and attribute values.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

/// A fresh id: a per-process random UUID with a counter mixed into its last bytes, so ids
/// are unique without a system call per id (they need not be unpredictable in the lab).
fn next_uuid() -> uuid::Uuid {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static BASE: OnceLock<u128> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = *BASE.get_or_init(|| uuid::Uuid::new_v4().as_u128());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Keep the version (4) and variant bits of the base intact: they live in the high half.
    uuid::Uuid::from_u128(base ^ u128::from(n.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
}

/// A fresh message id, `uuid:` and upper-case hex like Windows.
pub fn new_message_id() -> String {
    let mut buf = [0u8; 36];
    let id = next_uuid().hyphenated().encode_upper(&mut buf);
    let mut out = String::with_capacity(41);
    out.push_str("uuid:");
    out.push_str(id);
    out
}

/// A fresh shell or command id: upper-case hyphenated UUID like Windows.
pub fn new_id() -> String {
    let mut buf = [0u8; 36];
    next_uuid().hyphenated().encode_upper(&mut buf).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_upper_case_v4_uuids() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(50) {
            let parsed = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(parsed.get_version_num(), 4);
            assert_eq!(id, &id.to_uppercase());
        }
        assert!(new_message_id().starts_with("uuid:"));
    }
}

/// Opens the envelope and writes the header; the caller writes the body content and calls
/// [`finish`].
pub fn start(flavor: Flavor, lang: &str, action: &str, relates_to: &str) -> String {
    let mut out = String::with_capacity(1536);
    out.push_str("<s:Envelope xml:lang=\"");
    escape_into(&mut out, lang);
    out.push('"');
    out.push_str(match flavor {
        Flavor::Transfer => ENVELOPE_NS_TRANSFER,
        Flavor::Receive => ENVELOPE_NS_RECEIVE,
        Flavor::Delete => ENVELOPE_NS_DELETE,
        Flavor::Fault => ENVELOPE_NS_FAULT,
        Flavor::Enumeration => ENVELOPE_NS_ENUM,
    });
    out.push_str("><s:Header><a:Action>");
    out.push_str(action);
    out.push_str("</a:Action><a:MessageID>");
    out.push_str(&new_message_id());
    // Windows Server 2016 and later add an ETW activity id to every answer (the 2016 captures
    // have it between MessageID and To; 2012's have none).
    out.push_str("</a:MessageID><p:ActivityId>");
    out.push_str(&new_id());
    out.push_str("</p:ActivityId><a:To>");
    out.push_str(ANONYMOUS);
    out.push_str("</a:To><a:RelatesTo>");
    escape_into(&mut out, relates_to);
    out.push_str("</a:RelatesTo></s:Header><s:Body>");
    out
}

/// Closes the body and the envelope.
pub fn finish(mut out: String) -> String {
    out.push_str("</s:Body></s:Envelope>");
    out
}

/// What the shell looked like at creation, for the Create response.
pub struct CreatedShell<'a> {
    /// Endpoint address (`wsa:To` of the request).
    pub address: &'a str,
    /// New shell id.
    pub shell_id: &'a str,
    /// Owner shown (`user`).
    pub owner: &'a str,
    /// Client address.
    pub client_ip: &'a str,
    /// `rsp:InputStreams` echoed.
    pub input_streams: &'a str,
    /// `rsp:OutputStreams` echoed.
    pub output_streams: &'a str,
    /// The shell's `IdleTimeout`.
    pub idle_timeout: std::time::Duration,
}

/// The Create response: `x:ResourceCreated` with the `ShellId` selector, then `rsp:Shell`.
pub fn create_response(lang: &str, relates_to: &str, shell: &CreatedShell<'_>) -> String {
    let mut out = start(
        Flavor::Transfer,
        lang,
        "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse",
        relates_to,
    );
    out.push_str("<x:ResourceCreated><a:Address>");
    escape_into(&mut out, shell.address);
    out.push_str("</a:Address><a:ReferenceParameters><w:ResourceURI>");
    out.push_str(ns::RESOURCE_CMD);
    out.push_str("</w:ResourceURI><w:SelectorSet><w:Selector Name=\"ShellId\">");
    out.push_str(shell.shell_id);
    out.push_str("</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>");
    out.push_str("<rsp:Shell xmlns:rsp=\"");
    out.push_str(ns::SHELL);
    out.push_str("\"><rsp:ShellId>");
    out.push_str(shell.shell_id);
    out.push_str("</rsp:ShellId><rsp:ResourceUri>");
    out.push_str(ns::RESOURCE_CMD);
    out.push_str("</rsp:ResourceUri><rsp:Owner>");
    escape_into(&mut out, shell.owner);
    out.push_str("</rsp:Owner><rsp:ClientIP>");
    escape_into(&mut out, shell.client_ip);
    let idle = shell.idle_timeout.as_millis();
    let _ = write!(
        out,
        "</rsp:ClientIP><rsp:IdleTimeOut>PT{}.{:03}S</rsp:IdleTimeOut><rsp:InputStreams>",
        idle / 1000,
        idle % 1000
    );
    escape_into(&mut out, shell.input_streams);
    out.push_str("</rsp:InputStreams><rsp:OutputStreams>");
    escape_into(&mut out, shell.output_streams);
    out.push_str("</rsp:OutputStreams><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>");
    finish(out)
}

/// The Command response.
pub fn command_response(lang: &str, relates_to: &str, command_id: &str) -> String {
    let mut out = start(
        Flavor::Transfer,
        lang,
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandResponse",
        relates_to,
    );
    out.push_str("<rsp:CommandResponse><rsp:CommandId>");
    out.push_str(command_id);
    out.push_str("</rsp:CommandId></rsp:CommandResponse>");
    finish(out)
}

/// The Signal response.
pub fn signal_response(lang: &str, relates_to: &str) -> String {
    let mut out = start(
        Flavor::Transfer,
        lang,
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SignalResponse",
        relates_to,
    );
    out.push_str("<rsp:SignalResponse/>");
    finish(out)
}

/// The Send response.
pub fn send_response(lang: &str, relates_to: &str) -> String {
    let mut out = start(
        Flavor::Transfer,
        lang,
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SendResponse",
        relates_to,
    );
    out.push_str("<rsp:SendResponse/>");
    finish(out)
}

/// The Delete response (empty body).
pub fn delete_response(lang: &str, relates_to: &str) -> String {
    finish(start(
        Flavor::Delete,
        lang,
        "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse",
        relates_to,
    ))
}

/// One output chunk of a Receive response.
pub enum Chunk<'a> {
    /// Bytes on stdout (already in the shell's code page).
    Stdout(&'a [u8]),
    /// Bytes on stderr.
    Stderr(&'a [u8]),
}

/// The Receive response: one `rsp:Stream` per chunk; when `exit` is known, the empty
/// `End="true"` streams and `CommandState Done` with `rsp:ExitCode`, else `Running`.
pub fn receive_response(
    lang: &str,
    relates_to: &str,
    command_id: &str,
    chunks: &[Chunk<'_>],
    exit: Option<i32>,
) -> String {
    use base64::Engine as _;
    let mut out = start(
        Flavor::Receive,
        lang,
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse",
        relates_to,
    );
    out.push_str("<rsp:ReceiveResponse>");
    for chunk in chunks {
        let (name, bytes) = match chunk {
            Chunk::Stdout(b) => ("stdout", b),
            Chunk::Stderr(b) => ("stderr", b),
        };
        let _ = write!(
            out,
            "<rsp:Stream Name=\"{name}\" CommandId=\"{command_id}\">"
        );
        base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut out);
        out.push_str("</rsp:Stream>");
    }
    match exit {
        Some(code) => {
            let _ = write!(
                out,
                "<rsp:Stream Name=\"stdout\" CommandId=\"{command_id}\" End=\"true\"></rsp:Stream>\
                 <rsp:Stream Name=\"stderr\" CommandId=\"{command_id}\" End=\"true\"></rsp:Stream>\
                 <rsp:CommandState CommandId=\"{command_id}\" State=\"{}\"><rsp:ExitCode>{code}</rsp:ExitCode></rsp:CommandState>",
                ns::STATE_DONE
            );
        }
        None => {
            let _ = write!(
                out,
                "<rsp:CommandState CommandId=\"{command_id}\" State=\"{}\"></rsp:CommandState>",
                ns::STATE_RUNNING
            );
        }
    }
    out.push_str("</rsp:ReceiveResponse>");
    finish(out)
}

/// A WS-Management fault as Windows sends it (HTTP 500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `s:Sender` or `s:Receiver`.
    pub code: &'static str,
    /// WS-Management subcode, e.g. `w:TimedOut`.
    pub subcode: &'static str,
    /// `s:Reason` text.
    pub reason: String,
    /// Optional `w:FaultDetail` URI.
    pub detail: Option<&'static str>,
    /// `f:WSManFault` `Code`.
    pub wsman_code: u32,
    /// `f:Message` text.
    pub message: String,
}

impl Fault {
    /// `w:TimedOut` (2150858793): the Receive long poll ended with no output.
    pub fn timed_out() -> Fault {
        let text = "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  ";
        Fault {
            code: "s:Receiver",
            subcode: "w:TimedOut",
            reason: text.to_owned(),
            detail: None,
            wsman_code: 2_150_858_793,
            message: text.to_owned(),
        }
    }

    /// `w:InvalidSelectors` (2150858843) for a command id the shell does not know.
    pub fn unknown_command() -> Fault {
        Fault {
            code: "s:Sender",
            subcode: "w:InvalidSelectors",
            reason: "The WS-Management service cannot process the request because the request contained invalid selectors for the resource. ".to_owned(),
            detail: Some("http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors"),
            wsman_code: 2_150_858_843,
            message: "The Windows Remote Shell received a request to perform an operation on a command identifier that does not exist. Either the command has completed execution or the client specified an invalid command identifier. ".to_owned(),
        }
    }

    /// `w:InvalidSelectors` (2150858843) for a shell id the host does not know.
    pub fn unknown_shell(shell_id: &str) -> Fault {
        Fault {
            code: "s:Sender",
            subcode: "w:InvalidSelectors",
            reason: "The WS-Management service cannot process the request because the request contained invalid selectors for the resource. ".to_owned(),
            detail: Some("http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors"),
            wsman_code: 2_150_858_843,
            message: format!("The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. Provide the correct ShellId or create a new shell and retry the operation. "),
        }
    }

    /// `w:QuotaLimit` (2150859173, `ERROR_WSMAN_QUOTA_MAX_SHELLS`): `MaxShellsPerUser` reached.
    pub fn shell_quota(max: usize) -> Fault {
        Fault {
            code: "s:Receiver",
            subcode: "w:QuotaLimit",
            reason: format!("The WS-Management service cannot process the request. This user is allowed a maximum number of {max} shells, which has been exceeded. Reduce the number of shells or increase the quota limit. "),
            detail: None,
            wsman_code: 2_150_859_173,
            message: format!("The WS-Management service cannot process the request. This user is allowed a maximum number of {max} shells, which has been exceeded. Reduce the number of shells or increase the quota limit. "),
        }
    }

    /// `w:QuotaLimit` (2150859174, `ERROR_WSMAN_QUOTA_MAX_OPERATIONS`):
    /// `MaxConcurrentOperationsPerUser` reached.
    pub fn operations_quota(max: usize) -> Fault {
        let text = format!("The WS-Management service cannot process the request. This user is allowed a maximum number of {max} concurrent operations, which has been exceeded. Close existing operations for this user, or raise the quota for this user. ");
        Fault {
            code: "s:Receiver",
            subcode: "w:QuotaLimit",
            reason: text.clone(),
            detail: None,
            wsman_code: 2_150_859_174,
            message: text,
        }
    }

    /// `w:EncodingLimit` (2150858823, `ERROR_WSMAN_MAX_ENVELOPE_SIZE`) with the
    /// `MinimumEnvelopeLimit` detail: a `MaxEnvelopeSize` below 8192 octets (MS-WSMV 3.1.4.1.7,
    /// DSP0226 6.2: the server MUST refuse it rather than raise it).
    pub fn envelope_below_minimum(requested: usize, minimum: usize) -> Fault {
        Fault {
            code: "s:Sender",
            subcode: "w:EncodingLimit",
            reason: "The WS-Management service cannot process the request because the envelope size in the request is too small. ".to_owned(),
            detail: Some("http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/MinimumEnvelopeLimit"),
            wsman_code: 2_150_858_823,
            message: format!("The WS-Management service cannot process the request because the MaxEnvelopeSize of {requested} octets is below the minimum of {minimum}. Raise MaxEnvelopeSize and retry the request. "),
        }
    }

    /// `w:InternalError` (2150859072, `ERROR_WINRS_CODE_PAGE_NOT_SUPPORTED`): a
    /// `WINRS_CODEPAGE` the host cannot use (Windows refuses the Create; it does not fall back).
    pub fn codepage_not_supported(option: &str) -> Fault {
        Fault {
            code: "s:Receiver",
            subcode: "w:InternalError",
            reason: "The WS-Management service cannot process the request. The code page is not supported on the server. ".to_owned(),
            detail: None,
            wsman_code: 2_150_859_072,
            message: format!("The Windows Remote Shell cannot process the request; the code page `{option}` is not valid or is not installed on the server. Retry the request with a valid code page. "),
        }
    }

    /// `a:ActionNotSupported` (2150858754).
    pub fn action_not_supported(action: &str) -> Fault {
        Fault {
            code: "s:Sender",
            subcode: "a:ActionNotSupported",
            reason: "The action is not supported by the service. ".to_owned(),
            detail: None,
            wsman_code: 2_150_858_754,
            message: format!("The WS-Management service cannot process the request because the action {action} is not supported. "),
        }
    }

    /// `w:SchemaValidationError` (2150858817) for a request the server cannot parse.
    pub fn schema_validation(why: &str) -> Fault {
        Fault {
            code: "s:Sender",
            subcode: "w:SchemaValidationError",
            reason: "The SOAP XML in the message does not match the corresponding XML schema definition. Change the XML and retry. ".to_owned(),
            detail: None,
            wsman_code: 2_150_858_817,
            message: format!("The WS-Management service cannot process the request because the XML is invalid: {why} "),
        }
    }

    /// `w:CannotProcessFilter` for a WQL query the model rejects.
    pub fn cannot_process_filter(why: &str) -> Fault {
        Fault {
            code: "s:Sender",
            subcode: "w:CannotProcessFilter",
            reason: "The data source could not process the filter. The filter might be missing or it might be invalid. Change the filter and try the request again.  ".to_owned(),
            detail: None,
            wsman_code: 2_150_859_002,
            message: format!("The WS-Management service cannot process the request because the WQL query is invalid: {why} "),
        }
    }

    /// `w:InternalError` for a WMI namespace that is not available (`root/MSCluster` while
    /// the Cluster service is stopped): WMI's `WBEM_E_INVALID_NAMESPACE` (0x8004100E).
    pub fn namespace_unavailable(namespace: &str) -> Fault {
        Fault {
            code: "s:Receiver",
            subcode: "w:InternalError",
            reason: "The WS-Management service cannot process the request. The WMI service returned an 'invalid namespace' error. ".to_owned(),
            detail: None,
            wsman_code: 2_150_858_778,
            message: format!("The WS-Management service cannot process the request. The WMI service returned an 'invalid namespace' error for `{namespace}`. "),
        }
    }

    /// `n:InvalidEnumerationContext` for a Pull on an unknown or finished enumeration.
    pub fn invalid_enumeration_context() -> Fault {
        Fault {
            code: "s:Receiver",
            subcode: "n:InvalidEnumerationContext",
            reason: "The enumeration context supplied in the message is not valid. ".to_owned(),
            detail: None,
            wsman_code: 2_150_858_792,
            message: "The WS-Management service cannot process the request because the enumeration context is not valid. Retry the enumeration. ".to_owned(),
        }
    }

    /// Renders the fault envelope.
    pub fn render(&self, lang: &str, relates_to: &str, machine: &str) -> String {
        let mut out = start(
            Flavor::Fault,
            lang,
            "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault",
            relates_to,
        );
        let _ = write!(
            out,
            "<s:Fault><s:Code><s:Value>{}</s:Value><s:Subcode><s:Value>{}</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang=\"",
            self.code, self.subcode
        );
        escape_into(&mut out, lang);
        out.push_str("\">");
        escape_into(&mut out, &self.reason);
        out.push_str("</s:Text></s:Reason><s:Detail>");
        if let Some(detail) = self.detail {
            out.push_str("<w:FaultDetail>");
            out.push_str(detail);
            out.push_str("</w:FaultDetail>");
        }
        let _ = write!(
            out,
            "<f:WSManFault xmlns:f=\"http://schemas.microsoft.com/wbem/wsman/1/wsmanfault\" Code=\"{}\" Machine=\"",
            self.wsman_code
        );
        escape_into(&mut out, machine);
        out.push_str("\"><f:Message>");
        escape_into(&mut out, &self.message);
        out.push_str("</f:Message></f:WSManFault></s:Detail></s:Fault>");
        finish(out)
    }
}
