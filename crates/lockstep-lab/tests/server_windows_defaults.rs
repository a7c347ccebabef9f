//! Windows' quotas and the small protocol behaviours the captures and MS-WSMV show, checked on
//! the wire with a raw HTTP client: `MaxConcurrentOperationsPerUser`, the shell `IdleTimeout`,
//! `xml:lang` following `wsman:Locale`, unsupported `WINRS_CODEPAGE` and too-small
//! `MaxEnvelopeSize` refused with their faults, and every signal code of MS-WSMV 2.2.5.6
//! (pypsrp's `signal/Terminate` spelling included). (CRLF line ends are the model's: the server
//! passes a process's bytes as they are, `tests/golden_captures.rs`.)

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{port_of, RawClient, RawResponse};
use lockstep_lab::server::test_backend::TestBackend;
use lockstep_lab::server::{LabServer, ServerConfig};

const USER: &str = "labadmin";
const PASSWORD: &str = "Quirk-Pass-1";

async fn start(config: ServerConfig) -> (LabServer, u16) {
    let server = LabServer::start(
        Arc::new(TestBackend::new(1)),
        ServerConfig {
            // The raw client sends unsealed bodies: the weakened-node opt-in.
            allow_unencrypted: true,
            ..config
        },
    )
    .await
    .unwrap();
    let port = port_of(&server.endpoints()["NODE1"]);
    (server, port)
}

fn defaults() -> ServerConfig {
    ServerConfig::with_credentials(USER, PASSWORD)
}

async fn connect(port: u16) -> RawClient {
    RawClient::connect(port, USER, PASSWORD).await.unwrap()
}

fn text<'a>(r: &'a RawResponse, local: &str) -> &'a str {
    common::element_text(&r.body, local).unwrap_or_else(|| panic!("no {local}: {}", r.body))
}

async fn new_shell(raw: &mut RawClient) -> String {
    let created = raw.post(&common::create(None)).await.unwrap();
    assert_eq!(created.status, 200, "{}", created.body);
    text(&created, "ShellId").to_owned()
}

async fn start_command(raw: &mut RawClient, shell: &str, line: &str) -> String {
    let started = raw.post(&common::command(shell, line)).await.unwrap();
    assert_eq!(started.status, 200, "{}", started.body);
    text(&started, "CommandId").to_owned()
}

/// The Delete of a shell that does not exist: the cheapest request that reaches the handler.
async fn probe(raw: &mut RawClient) -> RawResponse {
    raw.post(&common::delete("00000000-0000-0000-0000-00000000DEAD"))
        .await
        .unwrap()
}

/// `MaxConcurrentOperationsPerUser` (Windows' default 1500): a request beyond it while the others
/// are served gets `w:QuotaLimit` with `ERROR_WSMAN_QUOTA_MAX_OPERATIONS` (2150859174). Here
/// the quota is 1 and a Receive long poll holds it.
#[tokio::test]
async fn a_request_beyond_max_concurrent_operations_gets_the_quota_fault() {
    assert_eq!(defaults().max_concurrent_operations_per_user, 1500);
    let (server, port) = start(ServerConfig {
        max_concurrent_operations_per_user: 1,
        ..defaults()
    })
    .await;
    let mut poller = connect(port).await;
    let shell = new_shell(&mut poller).await;
    let command = start_command(&mut poller, &shell, "slow 4000 done").await;
    let poll = tokio::spawn(async move {
        let r = poller
            .post(&common::receive(&shell, &command, "PT60S"))
            .await
            .unwrap();
        (poller, r)
    });
    let mut other = connect(port).await;
    // While the long poll is served, every other request is refused by the quota (the probe
    // may come before the poll reaches the server: it then gets the unknown-shell fault).
    let mut refused = None;
    for _ in 0..400 {
        let r = probe(&mut other).await;
        assert_eq!(r.status, 500, "{}", r.body);
        if r.body.contains("w:QuotaLimit") {
            refused = Some(r);
            break;
        }
        assert!(r.body.contains(r#"Code="2150858843""#), "{}", r.body);
        if poll.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let refused = refused.expect("a request beyond the quota must be refused");
    assert!(
        refused.body.contains(r#"Code="2150859174""#),
        "{}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains("maximum number of 1 concurrent operations"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("<s:Value>s:Receiver</s:Value>"));
    // The poll itself was served, and once it is answered the quota is free again.
    let (_poller, answered) = poll.await.unwrap();
    assert_eq!(answered.status, 200, "{}", answered.body);
    assert!(answered.body.contains("CommandState/Done"));
    let after = probe(&mut other).await;
    assert!(
        after.body.contains(r#"Code="2150858843""#),
        "{}",
        after.body
    );
    server.shutdown().await;
}

/// The shell `IdleTimeout` (Windows' default 7,200,000 ms, announced in the Create answer as
/// `PT7200.000S`): a shell no request touched for longer is deleted, and a request naming it
/// gets `w:InvalidSelectors` 2150858843 "... the shell was not found on the server". A Receive
/// long poll is activity: a shell is never deleted under a waiting poll.
#[tokio::test]
async fn a_shell_idle_longer_than_idle_timeout_is_deleted() {
    assert_eq!(defaults().idle_timeout, Duration::from_millis(7_200_000));
    let (server, port) = start(ServerConfig {
        idle_timeout: Duration::from_millis(1500),
        ..defaults()
    })
    .await;
    let mut raw = connect(port).await;
    let created = raw.post(&common::create(None)).await.unwrap();
    assert_eq!(text(&created, "IdleTimeOut"), "PT1.500S");
    let shell = text(&created, "ShellId").to_owned();

    // A poll waiting longer than the idle timeout keeps the shell.
    let command = start_command(&mut raw, &shell, "slow 3000 late").await;
    let polled = raw
        .post(&common::receive(&shell, &command, "PT60S"))
        .await
        .unwrap();
    assert_eq!(polled.status, 200, "{}", polled.body);
    assert!(polled.body.contains("CommandState/Done"), "{}", polled.body);
    assert_eq!(server.open_shells()["NODE1"], 1);

    // Idle past the timeout: gone, with Windows' fault.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let refused = raw.post(&common::command(&shell, "echo x")).await.unwrap();
    assert_eq!(refused.status, 500);
    assert!(
        refused.body.contains("w:InvalidSelectors"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains(r#"Code="2150858843""#));
    assert!(
        refused.body.contains(&format!(
            "The request for the Windows Remote Shell with ShellId {shell} failed because the shell was not found on the server."
        )),
        "{}",
        refused.body
    );
    assert_eq!(server.open_shells()["NODE1"], 0);
    server.shutdown().await;
}

/// `xml:lang` of every answer (and of a fault's `s:Text`) is the request's `wsman:Locale`
/// (MS-WSMV 3.1.4.1.4; the captures send `en-US` and get `en-US`), else the host's locale.
#[tokio::test]
async fn answers_are_in_the_requested_locale() {
    let (server, port) = start(defaults()).await;
    let mut raw = connect(port).await;
    let with_locale = |request: String, lang: &str| {
        request.replace(
            "</s:Header>",
            &format!(r#"<wsman:Locale s:mustUnderstand="false" xml:lang="{lang}"/></s:Header>"#),
        )
    };
    let created = raw
        .post(&with_locale(common::create(None), "cs-CZ"))
        .await
        .unwrap();
    assert_eq!(created.status, 200);
    assert!(
        created.body.starts_with(r#"<s:Envelope xml:lang="cs-CZ""#),
        "{}",
        created.body
    );
    let fault = raw
        .post(&with_locale(
            common::delete("00000000-0000-0000-0000-00000000DEAD"),
            "ja-JP",
        ))
        .await
        .unwrap();
    assert!(fault.body.starts_with(r#"<s:Envelope xml:lang="ja-JP""#));
    assert!(
        fault.body.contains(r#"<s:Text xml:lang="ja-JP">"#),
        "{}",
        fault.body
    );
    // No wsman:Locale: the host's (TestBackend hosts are en-US).
    let plain = raw.post(&common::create(None)).await.unwrap();
    assert!(plain.body.starts_with(r#"<s:Envelope xml:lang="en-US""#));
    server.shutdown().await;
}

/// An unsupported `WINRS_CODEPAGE` is refused (Windows answers
/// `ERROR_WINRS_CODE_PAGE_NOT_SUPPORTED`, 2150859072; it does not fall back to the OEM code
/// page), and no shell is created.
#[tokio::test]
async fn an_unsupported_code_page_is_refused() {
    let (server, port) = start(defaults()).await;
    let mut raw = connect(port).await;
    for bad in ["1234", "utf-8"] {
        let request = common::create(Some(65001)).replace(">65001<", &format!(">{bad}<"));
        let r = raw.post(&request).await.unwrap();
        assert_eq!(r.status, 500, "{bad}: {}", r.body);
        assert!(r.body.contains(r#"Code="2150859072""#), "{}", r.body);
        assert!(r.body.contains(&format!("code page `{bad}`")), "{}", r.body);
    }
    assert_eq!(server.open_shells()["NODE1"], 0);
    let ok = raw.post(&common::create(Some(852))).await.unwrap();
    assert_eq!(ok.status, 200);
    server.shutdown().await;
}

/// A `MaxEnvelopeSize` below 8192 octets is refused with `w:EncodingLimit` and the
/// `MinimumEnvelopeLimit` detail (MS-WSMV 3.1.4.1.7: the server MUST return the fault), not
/// raised to the minimum.
#[tokio::test]
async fn a_max_envelope_size_below_the_minimum_is_refused() {
    let (server, port) = start(defaults()).await;
    let mut raw = connect(port).await;
    let sized = |size: u32| {
        common::create(None).replace(
            ">153600</wsman:MaxEnvelopeSize>",
            &format!(">{size}</wsman:MaxEnvelopeSize>"),
        )
    };
    let r = raw.post(&sized(8191)).await.unwrap();
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(
        r.body.contains("<s:Value>w:EncodingLimit</s:Value>"),
        "{}",
        r.body
    );
    assert!(r.body.contains("faultDetail/MinimumEnvelopeLimit"));
    assert!(r.body.contains(r#"Code="2150858823""#));
    assert_eq!(server.open_shells()["NODE1"], 0);
    let ok = raw.post(&sized(8192)).await.unwrap();
    assert_eq!(ok.status, 200, "{}", ok.body);
    server.shutdown().await;
}

fn signal(shell: &str, command: &str, code: &str) -> String {
    common::terminate(shell, command).replace(
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate",
        code,
    )
}

/// Every signal code of MS-WSMV 2.2.5.6 is accepted, compared without regard to case as Windows
/// does: pypsrp's `SignalCode.TERMINATE` is `.../signal/Terminate`. Terminate ends the command
/// (its id is then unknown); Ctrl+C, Ctrl+Break and PowerShell's Ctrl+C stop the process.
/// An unknown code is a fault.
#[tokio::test]
async fn every_windows_signal_code_is_accepted() {
    let (server, port) = start(defaults()).await;
    let mut raw = connect(port).await;
    let shell = new_shell(&mut raw).await;
    let base = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/";
    for code in [
        format!("{base}ctrl_c"),
        format!("{base}ctrl_break"),
        "powershell/signal/ctrl_c".to_owned(),
        format!("{base}CTRL_C"),
    ] {
        let id = start_command(&mut raw, &shell, "slow 60000 never").await;
        let r = raw.post(&signal(&shell, &id, &code)).await.unwrap();
        assert_eq!(r.status, 200, "{code}: {}", r.body);
        let out = raw
            .post(&common::receive(&shell, &id, "PT10S"))
            .await
            .unwrap();
        // 0xC000013A, STATUS_CONTROL_C_EXIT.
        assert!(
            out.body
                .contains("<rsp:ExitCode>-1073741510</rsp:ExitCode>"),
            "{code}: {}",
            out.body
        );
    }
    for code in [format!("{base}Terminate"), format!("{base}terminate")] {
        let id = start_command(&mut raw, &shell, "slow 60000 never").await;
        let r = raw.post(&signal(&shell, &id, &code)).await.unwrap();
        assert_eq!(r.status, 200, "{code}: {}", r.body);
        let gone = raw
            .post(&common::receive(&shell, &id, "PT10S"))
            .await
            .unwrap();
        assert!(
            gone.body.contains("command identifier that does not exist"),
            "{code}: {}",
            gone.body
        );
    }
    let id = start_command(&mut raw, &shell, "slow 60000 never").await;
    let bad = raw
        .post(&signal(&shell, &id, &format!("{base}sigkill")))
        .await
        .unwrap();
    assert_eq!(bad.status, 500, "{}", bad.body);
    server.shutdown().await;
}
