//! `lockstep exec` with Ansible's `certificate` transport: a TLS client certificate
//! (`ansible_winrm_cert_pem`, `ansible_winrm_cert_key_pem`) mapped to the node's account, over
//! HTTPS verified against the lab CA, with no password anywhere. The node is the lab's WinRM
//! server with certificate authentication on (checked first with pywinrm in
//! `crates/lockstep-lab/tests/server_interop.rs`).

use std::sync::Arc;

use lockstep_lab::server::test_backend::TestBackend;
use lockstep_lab::server::{LabServer, ServerConfig, TlsOptions};

use crate::util::{code, lockstep, text};

#[test]
fn exec_with_a_client_certificate_over_https() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut config = ServerConfig::with_credentials("svc-lockstep", "not-used-by-certificates");
    config.tls = Some(TlsOptions {
        client_certificate_upn: Some("svc-lockstep@corp.example".into()),
        ..TlsOptions::default()
    });
    let server = rt
        .block_on(LabServer::start(Arc::new(TestBackend::new(1)), config))
        .unwrap();
    let port = crate::util::port_of(&server.endpoints()["NODE1"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), server.cert_pem().unwrap()).unwrap();
    let (cert, key) = server
        .issue_client_certificate("svc-lockstep@corp.example")
        .unwrap()
        .unwrap();
    std::fs::write(dir.path().join("svc.pem"), cert).unwrap();
    std::fs::write(dir.path().join("svc.key"), &key).unwrap();
    let inventory = |scheme: &str| {
        format!(
            "all:\n  hosts:\n    NODE1:\n      ansible_connection: winrm\n      \
             ansible_host: 127.0.0.1\n      ansible_port: {port}\n      \
             ansible_winrm_scheme: {scheme}\n      ansible_winrm_transport: certificate\n      \
             ansible_winrm_cert_pem: svc.pem\n      ansible_winrm_cert_key_pem: svc.key\n      \
             ansible_winrm_ca_trust_path: ca.pem\n      ansible_user: svc-lockstep\n"
        )
    };
    std::fs::write(dir.path().join("inv.yml"), inventory("https")).unwrap();
    let exec = || {
        lockstep(dir.path())
            .args([
                "exec", "-i", "inv.yml", "-l", "NODE1", "--format", "json", "--yes",
            ])
            .args(["--", "echo", "by", "certificate"])
            .output()
            .unwrap()
    };
    let o = exec();
    assert_eq!(code(&o), 0, "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["stdout"], "by certificate\r\n", "{v:#}");
    assert_eq!(server.stats().certificate_logons, 1);
    let key_body = key.lines().nth(1).unwrap();
    assert!(!text(&o).contains(key_body), "{}", text(&o));

    // Over plain HTTP: bad input (exit 2) naming the file, the host and the setting.
    std::fs::write(dir.path().join("inv.yml"), inventory("http")).unwrap();
    let o = exec();
    assert_eq!(code(&o), 2, "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("inv.yml"), "{t}");
    assert!(t.contains("`NODE1`"), "{t}");
    assert!(t.contains("ansible_winrm_scheme: https"), "{t}");
    rt.block_on(server.shutdown());
}
