//! Wire-level behaviour of the lab WinRM server: code pages, WQL enumeration, faults, HTTPS,
//! availability and reboots, checked with `winrm-rs` and with a raw HTTP client.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{port_of, RawClient};
use lockstep_lab::backend::{HostInfo, ProtocolFaults, WmiObject};
use lockstep_lab::server::test_backend::TestBackend;
use lockstep_lab::server::{LabServer, ServerConfig, TlsOptions};
use winrm_rs::{
    AuthMethod, EncryptionMode, WinrmClient, WinrmConfig, WinrmCredentials, WinrmError,
};

const USER: &str = "labadmin";
const PASSWORD: &str = "Test-Pass-1";

fn config(port: u16, codepage: u32) -> WinrmConfig {
    WinrmConfig {
        port,
        auth_method: AuthMethod::Basic,
        encryption: EncryptionMode::Never,
        operation_timeout_secs: 5,
        connect_timeout_secs: 5,
        codepage,
        ..WinrmConfig::default()
    }
}

fn client(port: u16, codepage: u32) -> WinrmClient {
    WinrmClient::new(
        config(port, codepage),
        WinrmCredentials::new(USER, PASSWORD, ""),
    )
    .unwrap()
}

async fn start(backend: Arc<TestBackend>) -> LabServer {
    LabServer::start(
        backend,
        ServerConfig {
            // winrm-rs 1.1 (this test's client) cannot seal: the lab's opt-in for a weakened
            // node (AllowUnencrypted=true) lets it exercise the protocol layer.
            allow_unencrypted: true,
            ..ServerConfig::with_credentials(USER, PASSWORD)
        },
    )
    .await
    .unwrap()
}

fn host(name: &str, cp: u32, locale: &str) -> HostInfo {
    HostInfo {
        name: name.to_owned(),
        oem_codepage: cp,
        locale: locale.to_owned(),
    }
}

fn decode(cp: u32, bytes: &[u8]) -> String {
    use oem_cp::code_table::{DECODING_TABLE_CP437, DECODING_TABLE_CP850, DECODING_TABLE_CP852};
    match cp {
        437 => oem_cp::decode_string_complete_table(bytes, &DECODING_TABLE_CP437),
        850 => oem_cp::decode_string_complete_table(bytes, &DECODING_TABLE_CP850),
        852 => oem_cp::decode_string_complete_table(bytes, &DECODING_TABLE_CP852),
        932 => {
            let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(bytes);
            assert!(!bad, "not valid Shift-JIS: {bytes:?}");
            text.into_owned()
        }
        _ => String::from_utf8(bytes.to_vec()).expect("valid UTF-8"),
    }
}

async fn run_to_end(c: &WinrmClient, shell: &str, cmd: &str, args: &[&str]) -> (Vec<u8>, i32) {
    let id = c
        .execute_command("127.0.0.1", shell, cmd, args)
        .await
        .unwrap();
    let mut out = Vec::new();
    loop {
        let r = c.receive_output("127.0.0.1", shell, &id).await.unwrap();
        out.extend_from_slice(&r.stdout);
        if r.done {
            return (out, r.exit_code.unwrap());
        }
    }
}

const TEXTS: [(u32, &str); 5] = [
    (437, "Grüße, Müller: 50°C ±2\r\n"),
    (850, "Il servizio è già avviato. Città: Ørsted\r\n"),
    (852, "Služba byla úspěšně spuštěna. Žluťoučký kůň\r\n"),
    (932, "サービスを開始しています。完了しました\r\n"),
    (65001, "こんにちは — žluťoučký kůň — Grüße\r\n"),
];

#[tokio::test]
async fn output_is_encoded_in_the_requested_code_page() {
    let backend = Arc::new(TestBackend::new(1));
    for (cp, text) in TEXTS {
        backend.set_file(&format!("cp{cp}.txt"), text);
    }
    let server = start(backend).await;
    let port = port_of(&server.endpoints()["NODE1"]);
    for (cp, text) in TEXTS {
        let c = client(port, cp);
        let shell = c.create_shell("127.0.0.1").await.unwrap();
        let (bytes, code) = run_to_end(&c, &shell, "type", &[&format!("cp{cp}.txt")]).await;
        assert_eq!(code, 0);
        if cp != 65001 {
            assert!(
                String::from_utf8(bytes.clone()).is_err(),
                "code page {cp}: bytes must not be UTF-8"
            );
        }
        assert_eq!(decode(cp, &bytes), text, "code page {cp}");
        c.delete_shell("127.0.0.1", &shell).await.unwrap();
    }
    server.shutdown().await;
}

#[tokio::test]
async fn without_codepage_option_output_uses_the_node_oem_code_page() {
    let backend = Arc::new(TestBackend::with_hosts(vec![
        host("PRG-N1", 852, "cs-CZ"),
        host("TYO-N1", 932, "ja-JP"),
    ]));
    backend.set_file("852", TEXTS[2].1);
    backend.set_file("932", TEXTS[3].1);
    let server = start(backend).await;
    for (name, cp, lang) in [("PRG-N1", 852u32, "cs-CZ"), ("TYO-N1", 932, "ja-JP")] {
        let mut raw = RawClient::connect(port_of(&server.endpoints()[name]), USER, PASSWORD)
            .await
            .unwrap();
        let created = raw.post(&common::create(None)).await.unwrap();
        assert_eq!(created.status, 200);
        assert!(created.body.contains(&format!("xml:lang=\"{lang}\"")));
        let shell = common::element_text(&created.body, "ShellId")
            .unwrap()
            .to_owned();
        let started = raw
            .post(&common::command(&shell, &format!("type {cp}")))
            .await
            .unwrap();
        let id = common::element_text(&started.body, "CommandId")
            .unwrap()
            .to_owned();
        let received = raw
            .post(&common::receive(&shell, &id, "PT5S"))
            .await
            .unwrap();
        assert_eq!(received.status, 200);
        let bytes = common::stdout_bytes(&received.body);
        assert_eq!(
            decode(cp, &bytes),
            TEXTS.iter().find(|t| t.0 == cp).unwrap().1
        );
        assert!(received.body.contains("CommandState/Done"));
    }
    server.shutdown().await;
}

fn service(name: &str, state: &str) -> WmiObject {
    let mut o = WmiObject::new();
    o.insert("Name".into(), name.into());
    o.insert("State".into(), state.into());
    o
}

#[tokio::test]
async fn wql_enumeration_with_winrm_rs_and_with_pull() {
    let backend = Arc::new(TestBackend::new(1));
    backend.set_wql(
        "Win32_Service",
        vec![
            service("MSExchangeIS", "Running"),
            service("MSExchangeMTA", "Stopped"),
            service("W3SVC", "Running"),
        ],
    );
    let server = start(backend.clone()).await;
    let port = port_of(&server.endpoints()["NODE1"]);
    let c = client(port, 65001);
    let items = c
        .run_wql("127.0.0.1", "SELECT Name,State FROM Win32_Service", None)
        .await
        .unwrap();
    assert_eq!(items.matches("<p:Win32_Service ").count(), 3, "{items}");
    assert!(items.contains("<p:Name>MSExchangeMTA</p:Name><p:State>Stopped</p:State>"));

    // Without OptimizeEnumeration: Enumerate gives a context, Pull one item at a time.
    let mut raw = RawClient::connect(port, USER, PASSWORD).await.unwrap();
    let enumerate = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration"><s:Header><wsa:Action>http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate</wsa:Action><wsa:MessageID>uuid:1</wsa:MessageID><wsman:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*</wsman:ResourceURI></s:Header><s:Body><n:Enumerate><wsman:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">SELECT * FROM Win32_Service</wsman:Filter></n:Enumerate></s:Body></s:Envelope>"#;
    let r = raw.post(enumerate).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("Items"));
    let mut context = common::element_text(&r.body, "EnumerationContext")
        .unwrap()
        .to_owned();
    let mut names = Vec::new();
    for _ in 0..10 {
        let pull = format!(
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration"><s:Header><wsa:Action>http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull</wsa:Action><wsa:MessageID>uuid:2</wsa:MessageID><wsman:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*</wsman:ResourceURI></s:Header><s:Body><n:Pull><n:EnumerationContext>{context}</n:EnumerationContext><n:MaxElements>1</n:MaxElements></n:Pull></s:Body></s:Envelope>"#
        );
        let r = raw.post(&pull).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        names.push(common::element_text(&r.body, "Name").unwrap().to_owned());
        if r.body.contains("EndOfSequence") {
            assert!(!r.body.contains("EnumerationContext"));
            break;
        }
        context = common::element_text(&r.body, "EnumerationContext")
            .unwrap()
            .to_owned();
    }
    assert_eq!(names, ["MSExchangeIS", "MSExchangeMTA", "W3SVC"]);
    // The finished context is gone.
    let again = raw
        .post(&enumerate.replace("Enumerate<", "Pull<").replace(
            "<n:Enumerate><wsman:Filter Dialect=\"http://schemas.microsoft.com/wbem/wsman/1/WQL\">SELECT * FROM Win32_Service</wsman:Filter></n:Enumerate>",
            &format!("<n:Pull><n:EnumerationContext>{context}</n:EnumerationContext></n:Pull>"),
        ))
        .await
        .unwrap();
    assert_eq!(again.status, 500);
    assert!(
        again.body.contains("InvalidEnumerationContext"),
        "{}",
        again.body
    );

    // Without a filter, the class named by the resource URI is enumerated.
    let by_uri = enumerate
        .replace("root/cimv2/*", "root/cimv2/Win32_Service")
        .replace(
            "<wsman:Filter Dialect=\"http://schemas.microsoft.com/wbem/wsman/1/WQL\">SELECT * FROM Win32_Service</wsman:Filter>",
            "<wsman:OptimizeEnumeration/><wsman:MaxElements>10</wsman:MaxElements>",
        );
    let r = raw.post(&by_uri).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.matches("<p:Win32_Service ").count(), 3, "{}", r.body);
    assert!(r.body.contains("<w:EndOfSequence/>"));

    // A stopped provider namespace and an unknown class are faults.
    backend.set_namespace_down("root/MSCluster", true);
    let e = c
        .run_wql(
            "127.0.0.1",
            "SELECT * FROM MSCluster_Resource",
            Some("root/MSCluster"),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("InternalError"), "{e}");
    let e = c
        .run_wql("127.0.0.1", "SELECT * FROM NoSuchClass", None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("CannotProcessFilter"), "{e}");
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_shell_and_command_ids_get_windows_faults() {
    let backend = Arc::new(TestBackend::new(1));
    let server = start(backend).await;
    let port = port_of(&server.endpoints()["NODE1"]);
    let c = client(port, 65001);
    let Err(e) = c
        .receive_output("127.0.0.1", "00000000-0000-0000-0000-000000000000", "X")
        .await
    else {
        panic!("an unknown shell must be a fault");
    };
    let WinrmError::Soap(soap) = e else {
        panic!("expected a SOAP fault, got {e}")
    };
    assert!(soap.to_string().contains("w:InvalidSelectors"), "{soap}");
    let shell = c.create_shell("127.0.0.1").await.unwrap();
    let mut raw = RawClient::connect(port, USER, PASSWORD).await.unwrap();
    let r = raw
        .post(&common::receive(
            &shell,
            "87E77BEB-6761-4C48-9D70-A00266B8459A",
            "PT5S",
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 500);
    assert!(r.body.contains(r#"Code="2150858843""#), "{}", r.body);
    assert!(r.body.contains("command identifier that does not exist"));
    assert!(r.body.contains(r#"Machine="NODE1""#));
    server.shutdown().await;
}

#[tokio::test]
async fn unauthenticated_requests_get_401_offering_negotiate_and_basic() {
    let backend = Arc::new(TestBackend::new(1));
    let server = start(backend).await;
    let port = port_of(&server.endpoints()["NODE1"]);
    let mut raw = RawClient::connect(port, USER, PASSWORD)
        .await
        .unwrap()
        .without_auth();
    let r = raw.post(&common::create(None)).await.unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header_values("www-authenticate"),
        ["Negotiate", "Basic realm=\"WSMAN\""]
    );
    // The connection stays usable after a 401 (NTLM needs it).
    let r = raw.post(&common::create(None)).await.unwrap();
    assert_eq!(r.status, 401);
    server.shutdown().await;
}

#[tokio::test]
async fn https_with_the_generated_certificate() {
    let backend = Arc::new(TestBackend::new(1));
    let mut cfg = ServerConfig::with_credentials(USER, PASSWORD);
    cfg.tls = Some(TlsOptions::default());
    let server = LabServer::start(backend, cfg).await.unwrap();
    let url = server.endpoints()["NODE1"].clone();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let pem = server.cert_pem().expect("a certificate when serving TLS");
    let port = port_of(&url);

    // A client that trusts exactly the generated certificate.
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
        .unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut stream = connector.connect(name, tcp).await.unwrap();
    let body = common::create(Some(65001));
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let request = format!(
        "POST /wsman HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {token}\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("ShellId"));

    // And winrm-rs over HTTPS (it cannot add a root, so it skips verification).
    let c = WinrmClient::new(
        WinrmConfig {
            use_tls: true,
            accept_invalid_certs: true,
            ..config(port, 65001)
        },
        WinrmCredentials::new(USER, PASSWORD, ""),
    )
    .unwrap();
    let out = c
        .run_command("127.0.0.1", "echo", &["over tls"])
        .await
        .unwrap();
    assert_eq!(out.stdout, b"over tls\r\n");
    server.shutdown().await;
}

#[tokio::test]
async fn down_host_refuses_connections_and_comes_back() {
    let backend = Arc::new(TestBackend::new(2));
    let server = start(backend.clone()).await;
    let port = port_of(&server.endpoints()["NODE1"]);
    let c = client(port, 65001);
    let shell = c.create_shell("127.0.0.1").await.unwrap();
    let mut open = RawClient::connect(port, USER, PASSWORD).await.unwrap();
    backend.set_up("NODE1", false);
    // A request on an open connection is not answered.
    assert!(open.post(&common::create(None)).await.is_err());
    // New connections are refused (the listener is closed), within a bounded wait.
    let mut refused = false;
    for _ in 0..200 {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                refused = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    assert!(refused, "a down host must refuse connections");
    let e = c.create_shell("127.0.0.1").await.unwrap_err();
    assert!(matches!(e, WinrmError::Http(_)), "{e}");
    // The other host is unaffected.
    let other = client(port_of(&server.endpoints()["NODE2"]), 65001);
    assert_eq!(
        other
            .run_command("127.0.0.1", "exit", &["0"])
            .await
            .unwrap()
            .exit_code,
        0
    );
    // Up again on the same port; the shell survived (no reboot).
    backend.set_up("NODE1", true);
    let mut back = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(back, "the host must accept connections again");
    let (out, _) = run_to_end(&c, &shell, "echo", &["back"]).await;
    assert_eq!(out, b"back\r\n");
    server.shutdown().await;
}

/// A down host's port stays reserved (bound, not listening: connections are still refused), so
/// that another process on the machine (another lab, given ports by the OS) cannot take it and
/// answer in the host's place: a controller once reached another lab's Exchange 2000 host that
/// way and halted on its build.
#[tokio::test]
async fn a_down_hosts_port_is_not_given_to_anyone_else() {
    let backend = Arc::new(TestBackend::new(1));
    let server = start(backend.clone()).await;
    let port = port_of(&server.endpoints()["NODE1"]);
    backend.set_up("NODE1", false);
    // No connection is made (a closed connection's TIME_WAIT would hold the port too): the
    // availability poller (every 100 ms) closes the listener meanwhile.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let squatter = tokio::net::TcpSocket::new_v4().unwrap();
    let taken = squatter.bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(
        taken.map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::AddrInUse
    );
    drop(squatter);
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    assert_eq!(
        refused.map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    server.shutdown().await;
}

#[tokio::test]
async fn base_port_and_hosts_down_at_start() {
    // Find two free consecutive ports (bounded attempts).
    let mut base = None;
    for _ in 0..20 {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        if port < 65000 && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            base = Some(port);
            break;
        }
    }
    let base = base.expect("two free consecutive ports");
    let backend = Arc::new(TestBackend::new(2));
    backend.set_up("NODE2", false);
    let mut cfg = ServerConfig::with_credentials(USER, PASSWORD);
    cfg.allow_unencrypted = true;
    cfg.base_port = Some(base);
    let server = LabServer::start(backend.clone(), cfg).await.unwrap();
    let endpoints = server.endpoints();
    assert_eq!(endpoints["NODE1"], format!("http://127.0.0.1:{base}/wsman"));
    assert_eq!(
        endpoints["NODE2"],
        format!("http://127.0.0.1:{}/wsman", base + 1)
    );
    assert_eq!(
        client(base, 65001)
            .run_command("127.0.0.1", "exit", &["4"])
            .await
            .unwrap()
            .exit_code,
        4
    );
    // NODE2 was down from the start: refused until it comes up.
    let mut refused = false;
    for _ in 0..200 {
        match tokio::net::TcpStream::connect(("127.0.0.1", base + 1)).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                refused = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    assert!(refused);
    backend.set_up("NODE2", true);
    let mut answered = false;
    for _ in 0..200 {
        if let Ok(out) = client(base + 1, 65001)
            .run_command("127.0.0.1", "exit", &["5"])
            .await
        {
            assert_eq!(out.exit_code, 5);
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(answered, "NODE2 must answer once up");
    server.shutdown().await;
}

#[tokio::test]
async fn a_reboot_forgets_the_hosts_shells() {
    let backend = Arc::new(TestBackend::new(1));
    let server = start(backend.clone()).await;
    let c = client(port_of(&server.endpoints()["NODE1"]), 65001);
    let shell = c.create_shell("127.0.0.1").await.unwrap();
    backend.reboot("NODE1");
    let e = c
        .execute_command("127.0.0.1", &shell, "echo", &["x"])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("InvalidSelectors"), "{e}");
    // A new shell works.
    let shell = c.create_shell("127.0.0.1").await.unwrap();
    let (out, _) = run_to_end(&c, &shell, "echo", &["fresh"]).await;
    assert_eq!(out, b"fresh\r\n");
    server.shutdown().await;
}

#[tokio::test]
async fn http_500_fault_answers_every_request_with_500() {
    let backend = Arc::new(TestBackend::new(1));
    let server = start(backend.clone()).await;
    let port = port_of(&server.endpoints()["NODE1"]);
    backend.set_faults(
        "NODE1",
        ProtocolFaults {
            http_500: true,
            ..ProtocolFaults::default()
        },
    );
    let mut raw = RawClient::connect(port, USER, PASSWORD).await.unwrap();
    let r = raw.post(&common::create(None)).await.unwrap();
    assert_eq!(r.status, 500);
    assert!(r.body.is_empty());
    let e = client(port, 65001)
        .create_shell("127.0.0.1")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("500"), "{e}");
    backend.set_faults("NODE1", ProtocolFaults::default());
    assert!(client(port, 65001).create_shell("127.0.0.1").await.is_ok());
    server.shutdown().await;
}

#[tokio::test]
async fn delay_fault_holds_responses_back() {
    let backend = Arc::new(TestBackend::new(2));
    let server = start(backend.clone()).await;
    backend.set_faults(
        "NODE1",
        ProtocolFaults {
            delay: Some(Duration::from_millis(300)),
            ..ProtocolFaults::default()
        },
    );
    let finished = Arc::new(AtomicUsize::new(0));
    let mut order = Vec::new();
    let mut tasks = Vec::new();
    for name in ["NODE1", "NODE2"] {
        let port = port_of(&server.endpoints()[name]);
        let finished = finished.clone();
        tasks.push(tokio::spawn(async move {
            let out = client(port, 65001)
                .run_command("127.0.0.1", "echo", &[name])
                .await
                .unwrap();
            assert_eq!(out.stdout, format!("{name}\r\n").into_bytes());
            (name, finished.fetch_add(1, Ordering::SeqCst))
        }));
        // NODE1's first request is sent first.
        tokio::task::yield_now().await;
    }
    for t in tasks {
        order.push(t.await.unwrap());
    }
    order.sort_by_key(|(_, rank)| *rank);
    assert_eq!(
        order[0].0, "NODE2",
        "the undelayed host finishes first: {order:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn drop_mid_receive_closes_the_connection_once_and_keeps_the_output() {
    let backend = Arc::new(TestBackend::new(1));
    let server = start(backend.clone()).await;
    let c = client(port_of(&server.endpoints()["NODE1"]), 65001);
    let shell = c.create_shell("127.0.0.1").await.unwrap();
    backend.set_faults(
        "NODE1",
        ProtocolFaults {
            drop_mid_receive: true,
            ..ProtocolFaults::default()
        },
    );
    let id = c
        .execute_command("127.0.0.1", &shell, "echo", &["survives"])
        .await
        .unwrap();
    let Err(e) = c.receive_output("127.0.0.1", &shell, &id).await else {
        panic!("the armed Receive must fail");
    };
    assert!(matches!(e, WinrmError::Http(_)), "{e}");
    assert_eq!(backend.faults_used("NODE1"), 1);
    let r = c.receive_output("127.0.0.1", &shell, &id).await.unwrap();
    assert!(r.done);
    assert_eq!(r.stdout, b"survives\r\n");
    assert_eq!(backend.faults_used("NODE1"), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn many_concurrent_commands_per_host_keep_their_output_apart() {
    let backend = Arc::new(TestBackend::new(4));
    let server = start(backend).await;
    let mut tasks = Vec::new();
    for (h, url) in server.endpoints().into_values().enumerate() {
        let port = port_of(&url);
        for i in 0..25usize {
            tasks.push(tokio::spawn(async move {
                let mut raw = RawClient::connect(port, USER, PASSWORD).await.unwrap();
                let created = raw.post(&common::create(Some(65001))).await.unwrap();
                let shell = common::element_text(&created.body, "ShellId")
                    .unwrap()
                    .to_owned();
                // Two commands in the same shell at once, then their output.
                let n1 = 1 + (h * 25 + i) % 40;
                let n2 = 1 + (h * 7 + i) % 30;
                let a = raw
                    .post(&common::command(&shell, &format!("lines {n1}")))
                    .await
                    .unwrap();
                let b = raw
                    .post(&common::command(&shell, &format!("lines {n2}")))
                    .await
                    .unwrap();
                for (reply, n) in [(b, n2), (a, n1)] {
                    let id = common::element_text(&reply.body, "CommandId")
                        .unwrap()
                        .to_owned();
                    let mut out = Vec::new();
                    loop {
                        let r = raw
                            .post(&common::receive(&shell, &id, "PT5S"))
                            .await
                            .unwrap();
                        assert_eq!(r.status, 200, "{}", r.body);
                        out.extend(common::stdout_bytes(&r.body));
                        if r.body.contains("CommandState/Done") {
                            break;
                        }
                    }
                    let expected: String = (1..=n).map(|k| format!("line {k}\r\n")).collect();
                    assert_eq!(String::from_utf8(out).unwrap(), expected);
                }
                let deleted = raw.post(&common::delete(&shell)).await.unwrap();
                assert_eq!(deleted.status, 200);
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    server.shutdown().await;
}
