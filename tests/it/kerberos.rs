//! `lockstep exec` over Kerberos, as a domain-joined fleet is reached: the inventory says
//! `ansible_winrm_transport: kerberos` with `ansible_user: user@REALM` and
//! `ansible_winrm_kerberos_hostname_override`; the controller finds the KDC in the `krb5.conf`
//! of `KRB5_CONFIG`. The KDC is a REAL MIT KDC started on loopback with a throwaway realm
//! ([`lockstep_lab::kdc::LabKdc`]); the node is the lab's WinRM server with its GSSAPI acceptor,
//! refusing unsealed bodies as a default Windows listener does. `negotiate` (SPNEGO) picks
//! Kerberos there too. Under `CI=true` missing KDC
//! binaries FAIL the test.

use std::sync::Arc;

use lockstep_lab::kdc::{KdcUser, LabKdc};
use lockstep_lab::server::test_backend::TestBackend;
use lockstep_lab::server::{KerberosConfig, LabServer, ServerConfig};

use crate::util::{code, lab_inventory, lockstep, text, Lab, LAB_PASSWORD};

const PASSWORD: &str = "Krb-Exec-Pass-3";

#[test]
fn exec_over_kerberos_with_a_real_kdc() {
    if !LabKdc::require() {
        return;
    }
    let kdc = LabKdc::start(
        "LAB.TEST",
        &[KdcUser {
            name: "svc-lockstep".into(),
            password: PASSWORD.into(),
        }],
        &["node1.lab.test".to_owned()],
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut config = ServerConfig::with_credentials("svc-lockstep", "not-the-kerberos-password");
    config.kerberos = Some(KerberosConfig {
        keytab: kdc.keytab(),
        realm: "LAB.TEST".into(),
    });
    let server = rt
        .block_on(LabServer::start(Arc::new(TestBackend::new(1)), config))
        .unwrap();
    let url = server.endpoints()["NODE1"].clone();
    let port = crate::util::port_of(&url);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inv.yml"),
        format!(
            "all:\n  hosts:\n    NODE1:\n      ansible_connection: winrm\n      \
             ansible_host: 127.0.0.1\n      ansible_port: {port}\n      \
             ansible_winrm_scheme: http\n      ansible_winrm_transport: kerberos\n      \
             ansible_user: svc-lockstep@LAB.TEST\n      \
             ansible_winrm_kerberos_hostname_override: node1.lab.test\n      \
             lockstep_password_env: KRB_TEST_PASSWORD\n"
        ),
    )
    .unwrap();
    let run = |password: &str| {
        let mut c = lockstep(dir.path());
        for (k, v) in kdc.env(None) {
            c.env(k, v);
        }
        c.env("KRB_TEST_PASSWORD", password)
            .args([
                "exec", "-i", "inv.yml", "-l", "NODE1", "--format", "json", "--yes", "--", "echo",
                "over", "kerberos",
            ])
            .output()
            .unwrap()
    };
    let o = run(PASSWORD);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["host"], "NODE1", "{v:#}");
    assert_eq!(v[0]["exit_code"], 0, "{v:#}");
    assert_eq!(v[0]["stdout"], "over kerberos\r\n", "{v:#}");

    // A wrong password: the KDC refuses it, the host is reported unreachable by its credentials
    // and the password never shows.
    let o = run("Wrong-Pass-9");
    assert_ne!(code(&o), 0, "{}", text(&o));
    assert!(!text(&o).contains("Wrong-Pass-9"), "{}", text(&o));

    // Ansible's `negotiate` with the same user@REALM: SPNEGO picks Kerberos (the KDC from
    // KRB5_CONFIG gives a ticket); the lab's NTLM password is another, so NTLM could not pass.
    let inventory = std::fs::read_to_string(dir.path().join("inv.yml")).unwrap();
    std::fs::write(
        dir.path().join("inv.yml"),
        inventory.replace(
            "ansible_winrm_transport: kerberos",
            "ansible_winrm_transport: negotiate",
        ),
    )
    .unwrap();
    let before = server.stats();
    let o = run(PASSWORD);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["stdout"], "over kerberos\r\n", "{v:#}");
    let after = server.stats();
    assert!(
        after.kerberos_logons > before.kerberos_logons,
        "{before} -> {after}"
    );
    assert_eq!(after.ntlm_logons, 0, "{after}");
    rt.block_on(server.shutdown());
}

/// `lockstep lab --kerberos`: a throwaway realm beside the lab for an administrator to rehearse
/// Kerberos by hand. The printed `KRB5_CONFIG` and `kinit` work as printed (the lab password),
/// and the overlay it writes reaches a host with Kerberos only (no NTLM to fall back on).
#[test]
fn lab_with_kerberos_writes_a_realm_an_administrator_can_use() {
    if !LabKdc::require() {
        return;
    }
    let lab = Lab::start_with_options(&["--kerberos"]);
    let conf = lab.path().join("endpoints.krb5.conf");
    assert!(conf.is_file(), "no krb5.conf beside the endpoints");
    let err = std::fs::read_to_string(lab.path().join("lab.err")).unwrap();
    assert!(
        err.contains(&format!("export KRB5_CONFIG={}", conf.display())),
        "{err}"
    );
    assert!(err.contains("kinit svc-lockstep@LAB.TEST"), "{err}");
    assert!(
        !err.contains(LAB_PASSWORD),
        "the password is printed: {err}"
    );
    let overlay = std::fs::read_to_string(lab.path().join("overlay.yml")).unwrap();
    assert!(
        overlay.contains("ansible_winrm_transport: kerberos"),
        "{overlay}"
    );
    assert!(
        overlay.contains("ansible_user: 'svc-lockstep@LAB.TEST'"),
        "{overlay}"
    );

    // By hand: kinit with the lab password into a private ccache.
    let ccache = lab.path().join("ccache");
    let kinit = lockstep_lab::kdc::find_binary("kinit").unwrap();
    let mut child = std::process::Command::new(kinit)
        .env("KRB5_CONFIG", &conf)
        .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
        .arg("svc-lockstep@LAB.TEST")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{LAB_PASSWORD}").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "kinit: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(ccache.is_file());

    // Lockstep over the overlay: Kerberos with the hosts' names in the realm.
    let inv = lab_inventory();
    let o = lockstep(lab.path())
        .env("KRB5_CONFIG", &conf)
        .args(["exec", "-i", inv.to_str().unwrap(), "-i", "overlay.yml"])
        .args([
            "-l", "PRG-FE01", "--format", "json", "--yes", "--", "hostname",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["exit_code"], 0, "{v:#}");
}
