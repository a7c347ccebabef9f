//! Helpers shared by the lab server tests and the protocol benchmark: a minimal keep-alive
//! HTTP/1.1 client and the SOAP envelopes of the WinRM shell lifecycle, so raw bytes on the
//! wire can be checked without any client library in between.

#![allow(dead_code)]

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP response.
#[derive(Debug)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Header name (lower case) and value pairs.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

impl RawResponse {
    /// All values of header `name`.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A keep-alive HTTP/1.1 connection speaking to one endpoint.
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
    authorization: Option<String>,
    port: u16,
}

impl RawClient {
    /// Connects to `127.0.0.1:port`, sending Basic credentials with every request.
    pub async fn connect(port: u16, user: &str, password: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Ok(RawClient {
            stream,
            buf: Vec::with_capacity(8192),
            authorization: Some(format!("Basic {token}")),
            port,
        })
    }

    /// Sends no `Authorization` header from now on.
    pub fn without_auth(mut self) -> Self {
        self.authorization = None;
        self
    }

    /// POSTs `body` to `/wsman` and reads the whole response. `Err` when the server closed
    /// the connection instead of answering.
    pub async fn post(&mut self, body: &str) -> std::io::Result<RawResponse> {
        let mut head = String::with_capacity(body.len() + 256);
        head += &format!(
            "POST /wsman HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        if let Some(auth) = &self.authorization {
            head.push_str("Authorization: ");
            head.push_str(auth);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        head.push_str(body);
        // One write per request: head and body in the same segment.
        self.stream.write_all(head.as_bytes()).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> std::io::Result<RawResponse> {
        let closed = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed");
        let header_end = loop {
            if let Some(pos) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos;
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(closed());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..header_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(closed)?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let body_start = header_end + 4;
        while self.buf.len() < body_start + length {
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(closed());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&self.buf[body_start..body_start + length]).into_owned();
        self.buf.drain(..body_start + length);
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }
}

const ENVELOPE_OPEN: &str = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration">"#;

fn header(action: &str, shell_id: Option<&str>, options: &str, timeout: &str) -> String {
    let selector = shell_id
        .map(|id| format!(r#"<wsman:SelectorSet><wsman:Selector Name="ShellId">{id}</wsman:Selector></wsman:SelectorSet>"#))
        .unwrap_or_default();
    format!(
        r#"<s:Header><wsa:To>http://127.0.0.1/wsman</wsa:To><wsman:ResourceURI s:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</wsman:ResourceURI><wsa:ReplyTo><wsa:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:Address></wsa:ReplyTo><wsa:Action s:mustUnderstand="true">{action}</wsa:Action><wsman:MaxEnvelopeSize s:mustUnderstand="true">153600</wsman:MaxEnvelopeSize><wsa:MessageID>uuid:00000000-0000-0000-0000-000000000001</wsa:MessageID><wsman:OperationTimeout>{timeout}</wsman:OperationTimeout>{options}{selector}</s:Header>"#
    )
}

/// Create, with `WINRS_CODEPAGE` when `codepage` is given.
pub fn create(codepage: Option<u32>) -> String {
    let options = codepage
        .map(|cp| format!(r#"<wsman:OptionSet><wsman:Option Name="WINRS_CODEPAGE">{cp}</wsman:Option></wsman:OptionSet>"#))
        .unwrap_or_default();
    format!(
        "{ENVELOPE_OPEN}{}<s:Body><rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell></s:Body></s:Envelope>",
        header("http://schemas.xmlsoap.org/ws/2004/09/transfer/Create", None, &options, "PT20S")
    )
}

/// Command `command` in `shell_id`.
pub fn command(shell_id: &str, command: &str) -> String {
    format!(
        "{ENVELOPE_OPEN}{}<s:Body><rsp:CommandLine><rsp:Command>{command}</rsp:Command></rsp:CommandLine></s:Body></s:Envelope>",
        header("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command", Some(shell_id), "", "PT20S")
    )
}

/// Receive for `command_id` with operation timeout `timeout` (`PT20S`).
pub fn receive(shell_id: &str, command_id: &str, timeout: &str) -> String {
    format!(
        r#"{ENVELOPE_OPEN}{}<s:Body><rsp:Receive><rsp:DesiredStream CommandId="{command_id}">stdout stderr</rsp:DesiredStream></rsp:Receive></s:Body></s:Envelope>"#,
        header(
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive",
            Some(shell_id),
            "",
            timeout
        )
    )
}

/// Signal terminate for `command_id`.
pub fn terminate(shell_id: &str, command_id: &str) -> String {
    format!(
        r#"{ENVELOPE_OPEN}{}<s:Body><rsp:Signal CommandId="{command_id}"><rsp:Code>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate</rsp:Code></rsp:Signal></s:Body></s:Envelope>"#,
        header(
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal",
            Some(shell_id),
            "",
            "PT20S"
        )
    )
}

/// Delete `shell_id`.
pub fn delete(shell_id: &str) -> String {
    format!(
        "{ENVELOPE_OPEN}{}<s:Body/></s:Envelope>",
        header(
            "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete",
            Some(shell_id),
            "",
            "PT20S"
        )
    )
}

/// Text of the first element with local name `local` (any prefix), test use only.
pub fn element_text<'a>(xml: &'a str, local: &str) -> Option<&'a str> {
    let open = format!(":{local}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find("</")? + start;
    Some(&xml[start..end])
}

/// Every decoded `rsp:Stream Name="stdout"` chunk of a Receive response, concatenated.
pub fn stdout_bytes(xml: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(pos) = rest.find("<rsp:Stream Name=\"stdout\"") {
        rest = &rest[pos..];
        let start = rest.find('>').unwrap() + 1;
        let end = rest.find("</rsp:Stream>").unwrap();
        let data = &rest[start..end];
        out.extend(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap(),
        );
        rest = &rest[end..];
    }
    out
}

/// The port of an endpoint URL (`http://127.0.0.1:PORT/wsman`).
pub fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("endpoint URL has a port")
}

/// The Python of `LOCKSTEP_PYTHON` (with pywinrm and pypsrp), or `None` outside CI, saying that
/// `what` is not checked; under `CI=true` a missing one fails the test.
#[allow(clippy::print_stderr)] // says why the check did not run
pub fn python(what: &str) -> Option<String> {
    match std::env::var("LOCKSTEP_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but LOCKSTEP_PYTHON is not set: .ci/run must provide pywinrm and pypsrp"
            );
            eprintln!("LOCKSTEP_PYTHON is not set: {what} NOT checked");
            None
        }
    }
}
