//! Construction rules of `WinrmTransport` and the redaction of passwords.

use lockstep_core::{Auth, Name, Scheme, Transport, TransportError};
use lockstep_winrm::{Limits, NodeTarget, Secret, WinrmTransport};

const PASSWORD: &str = "Sup3r-S3cret-Pa55";

fn target(name: &str) -> NodeTarget {
    NodeTarget::new(
        Name::host(name).unwrap(),
        "127.0.0.1",
        "PRG\\svc-lockstep",
        Secret::new(PASSWORD),
    )
}

fn config_detail(r: Result<WinrmTransport, TransportError>) -> String {
    match r {
        Err(TransportError::Config { detail, .. }) => detail,
        Err(e) => panic!("expected a Config error, got {e}"),
        Ok(_) => panic!("expected a Config error, got a transport"),
    }
}

#[test]
fn debug_output_never_shows_the_password() {
    let t = target("PRG-N1");
    let shown = format!("{t:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(
        shown.contains("svc-lockstep") && shown.contains("***"),
        "{shown}"
    );

    let transport = WinrmTransport::new(vec![t, target("PRG-N2")], Limits::default()).unwrap();
    let shown = format!("{transport:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(
        shown.contains("PRG-N1") && shown.contains("PRG-N2"),
        "{shown}"
    );
    let pretty = format!("{transport:#?}");
    assert!(!pretty.contains(PASSWORD));
}

#[test]
fn basic_over_http_needs_explicit_permission() {
    let mut t = target("PRG-N1");
    t.auth = Auth::Basic;
    let detail = config_detail(WinrmTransport::new(vec![t.clone()], Limits::default()));
    assert!(detail.contains("allow_basic_over_http"), "{detail}");

    let mut allowed = t.clone();
    allowed.allow_basic_over_http = true;
    assert!(WinrmTransport::new(vec![allowed], Limits::default()).is_ok());

    let mut https = t;
    https.scheme = Scheme::Https;
    https.port = 5986;
    assert!(WinrmTransport::new(vec![https], Limits::default()).is_ok());
}

#[test]
fn unknown_code_pages_and_duplicates_are_refused() {
    let mut t = target("PRG-N1");
    t.codepage = Some(4242);
    assert!(config_detail(WinrmTransport::new(vec![t], Limits::default())).contains("4242"));

    let mut t = target("PRG-N1");
    t.oem_codepage = 4243;
    assert!(config_detail(WinrmTransport::new(vec![t], Limits::default())).contains("4243"));

    let detail = config_detail(WinrmTransport::new(
        vec![target("PRG-N1"), target("prg-n1")],
        Limits::default(),
    ));
    assert!(detail.contains("twice"), "{detail}");

    let zero = Limits {
        per_host: 0,
        ..Limits::default()
    };
    assert!(
        config_detail(WinrmTransport::new(vec![target("PRG-N1")], zero)).contains("at least 1")
    );
}

#[tokio::test]
async fn unknown_hosts_are_a_config_error() {
    let transport = WinrmTransport::new(vec![target("PRG-N1")], Limits::default()).unwrap();
    let other = Name::host("PRG-N9").unwrap();
    let err = transport
        .run(&other, "echo x", std::time::Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::Config { ref host, .. } if host == &other),
        "{err}"
    );
    assert!(transport.stats(&other).is_none());
    // Names are case-insensitive like Windows computer names.
    assert!(transport.stats(&Name::host("prg-n1").unwrap()).is_some());
}

#[test]
fn targets_come_from_inventory_connections() {
    let conn = lockstep_core::Connection {
        address: "10.1.2.3".to_owned(),
        port: 5986,
        scheme: Scheme::Https,
        auth: Auth::Basic,
        user: "PRG\\svc".to_owned(),
        password: lockstep_core::SecretSource::Env("LOCKSTEP_PW".to_owned()),
        verify_tls: true,
        allow_basic_over_http: false,
        codepage: Some(852),
        ca_trust_path: None,
    };
    let t = NodeTarget::from_connection(
        Name::host("PRG-N1").unwrap(),
        &conn,
        Secret::new(PASSWORD),
        852,
    );
    assert_eq!(
        (
            t.address.as_str(),
            t.port,
            t.scheme,
            t.auth,
            t.user.as_str()
        ),
        ("10.1.2.3", 5986, Scheme::Https, Auth::Basic, "PRG\\svc")
    );
    assert_eq!((t.shell_codepage(), t.oem_codepage), (852, 852));
    assert!(t.verify_tls && !t.allow_basic_over_http);
    // Basic over HTTPS needs no extra permission.
    assert!(WinrmTransport::new(vec![t], Limits::default()).is_ok());
}
