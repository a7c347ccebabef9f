//! Lockstep's Kerberos (`sspi`'s client) against the lab's MIT GSSAPI acceptor and a REAL MIT
//! KDC started on loopback with a throwaway realm: tickets from the KDC, one handshake per
//! connection with mutual authentication, sealed bodies (GSS_WrapEx) over plain HTTP, and what
//! a Windows domain refuses (a wrong password at the KDC, a ticket for another host).
//!
//! Needs Debian's krb5-kdc, krb5-admin-server and krb5-user (`.ci/run` installs them); under
//! `CI=true` their absence FAILS the test.

use std::sync::Arc;
use std::time::Duration;

use lockstep_core::{Auth, Name, Transport, TransportError};
use lockstep_lab::kdc::{KdcUser, LabKdc};
use lockstep_lab::server::test_backend::TestBackend;
use lockstep_lab::server::{KerberosConfig, LabServer, ServerConfig};
use lockstep_winrm::{Limits, NodeTarget, Secret, WinrmTransport};

const USER: &str = "labadmin";
const PASSWORD: &str = "Krb-Pass-2";
const REALM: &str = "LAB.TEST";
const T: Duration = Duration::from_secs(30);

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap()
}

fn target(kdc: &LabKdc, host: &str, url: &str, spn_host: &str, password: &str) -> NodeTarget {
    let mut t = NodeTarget::new(
        Name::host(host).unwrap(),
        "127.0.0.1",
        format!("{USER}@{REALM}"),
        Secret::new(password),
    );
    t.port = port_of(url);
    t.auth = Auth::Kerberos;
    t.kerberos_hostname = Some(spn_host.to_owned());
    t.kdc = Some(kdc.addr().to_string());
    t
}

fn limits() -> Limits {
    Limits {
        connect_timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(2),
        retries: 2,
        backoff_base: Duration::from_millis(20),
        ..Limits::default()
    }
}

/// A throwaway realm with the test account, and a service principal per host.
fn kdc(hosts: &[&str]) -> LabKdc {
    LabKdc::start(
        REALM,
        &[KdcUser {
            name: USER.into(),
            password: PASSWORD.into(),
        }],
        &hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>(),
    )
    .unwrap()
}

/// A lab of `nodes` nodes accepting Kerberos with `kdc`'s keytab, and NTLM for the test account
/// with `ntlm_password`.
async fn kerberos_lab(kdc: &LabKdc, ntlm_password: &str, nodes: usize) -> LabServer {
    let mut config = ServerConfig::with_credentials(USER, ntlm_password);
    config.kerberos = Some(KerberosConfig {
        keytab: kdc.keytab(),
        realm: REALM.into(),
    });
    LabServer::start(Arc::new(TestBackend::new(nodes)), config)
        .await
        .unwrap()
}

#[tokio::test]
async fn kerberos_with_a_real_kdc_seals_many_commands_on_one_connection() {
    if !LabKdc::require() {
        return;
    }
    let kdc = kdc(&["node1.lab.test", "node2.lab.test"]);
    let server = kerberos_lab(&kdc, "not-the-kerberos-password", 2).await;
    let endpoints = server.endpoints();
    let node1 = Name::host("NODE1").unwrap();

    let tr = WinrmTransport::new(
        vec![target(
            &kdc,
            "NODE1",
            &endpoints["NODE1"],
            "node1.lab.test",
            PASSWORD,
        )],
        limits(),
    )
    .unwrap();
    for i in 0..5 {
        let out = tr.run(&node1, &format!("echo kerberos {i}"), T).await;
        assert_eq!(
            out.map(|o| (o.stdout, o.exit_code)),
            Ok((format!("kerberos {i}\r\n"), 0))
        );
    }
    let out = tr.run(&node1, "err denied", T).await.unwrap();
    assert_eq!((out.stderr.as_str(), out.exit_code), ("denied\r\n", 1));
    let stats = tr.stats(&node1).unwrap();
    // One connection, one Kerberos leg (AP-REQ out, AP-REP back), then Create and 6 commands
    // of two sealed requests each.
    assert_eq!(stats.connections, 1, "{stats:?}");
    assert_eq!(stats.http_requests, 1 + 1 + 6 * 2, "{stats:?}");
    tr.close().await;

    // A wrong password: the KDC refuses pre-authentication; nothing reaches the node.
    let tr = WinrmTransport::new(
        vec![target(
            &kdc,
            "NODE1",
            &endpoints["NODE1"],
            "node1.lab.test",
            "wrong",
        )],
        limits(),
    )
    .unwrap();
    let err = tr.run(&node1, "echo x", T).await.unwrap_err();
    assert!(
        matches!(err, TransportError::AuthRejected { .. }),
        "{err:?}"
    );
    assert_eq!(tr.stats(&node1).unwrap().http_requests, 0);

    // A ticket for node1 presented to NODE2: refused like a key it cannot decrypt.
    let node2 = Name::host("NODE2").unwrap();
    let tr = WinrmTransport::new(
        vec![target(
            &kdc,
            "NODE2",
            &endpoints["NODE2"],
            "node1.lab.test",
            PASSWORD,
        )],
        limits(),
    )
    .unwrap();
    let err = tr.run(&node2, "echo x", T).await.unwrap_err();
    assert!(
        matches!(err, TransportError::AuthRejected { .. }),
        "{err:?}"
    );
    server.shutdown().await;
}

/// Ansible's `negotiate` (pypsrp's default, what a Windows client sends): SPNEGO that offers
/// Kerberos first for `user@REALM` and falls back to NTLM when no ticket can be had. The lab
/// counts which mechanism each connection logged on with.
#[tokio::test]
async fn negotiate_prefers_kerberos_and_falls_back_to_ntlm_without_a_kdc() {
    if !LabKdc::require() {
        return;
    }
    let kdc = kdc(&["node1.lab.test"]);
    // The same account for NTLM (the computer's view of the domain account) and Kerberos.
    let server = kerberos_lab(&kdc, PASSWORD, 1).await;
    let endpoints = server.endpoints();
    let node1 = Name::host("NODE1").unwrap();
    let negotiate = |kdc_addr: String, spn_host: &str| {
        let mut t = target(&kdc, "NODE1", &endpoints["NODE1"], spn_host, PASSWORD);
        t.auth = Auth::Negotiate;
        t.kdc = Some(kdc_addr);
        t
    };

    // A KDC that answers: Kerberos, sealed, one logon for three commands.
    let tr = WinrmTransport::new(
        vec![negotiate(kdc.addr().to_string(), "node1.lab.test")],
        limits(),
    )
    .unwrap();
    for i in 0..3 {
        let out = tr.run(&node1, &format!("echo negotiate {i}"), T).await;
        assert_eq!(
            out.map(|o| (o.stdout, o.exit_code)),
            Ok((format!("negotiate {i}\r\n"), 0))
        );
    }
    tr.close().await;
    let stats = server.stats();
    assert_eq!(
        (stats.kerberos_logons, stats.ntlm_logons),
        (1, 0),
        "{stats}"
    );

    // No KDC listening where the realm's KDC should be: NTLM in the same SPNEGO envelope.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let tr = WinrmTransport::new(vec![negotiate(closed_addr, "node1.lab.test")], limits()).unwrap();
    let out = tr.run(&node1, "echo fallback", T).await.unwrap();
    assert_eq!((out.stdout.as_str(), out.exit_code), ("fallback\r\n", 0));
    tr.close().await;
    let stats = server.stats();
    assert_eq!(
        (stats.kerberos_logons, stats.ntlm_logons),
        (1, 1),
        "{stats}"
    );

    // A wrong password is the KDC's verdict, not a reason to try NTLM.
    let mut wrong = negotiate(kdc.addr().to_string(), "node1.lab.test");
    wrong.password = Secret::new("wrong");
    let tr = WinrmTransport::new(vec![wrong], limits()).unwrap();
    let err = tr.run(&node1, "echo x", T).await.unwrap_err();
    assert!(
        matches!(err, TransportError::AuthRejected { .. }),
        "{err:?}"
    );
    let stats = server.stats();
    assert_eq!(
        (stats.kerberos_logons, stats.ntlm_logons),
        (1, 1),
        "{stats}"
    );
    server.shutdown().await;
}
