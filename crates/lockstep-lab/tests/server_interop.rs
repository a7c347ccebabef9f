//! The lab against clients no one here wrote, with their DEFAULT settings: pywinrm (NTLM with
//! message encryption `auto` and `always`) and pypsrp (Negotiate/SPNEGO, encryption `auto`),
//! over HTTP (sealed bodies, as a default Windows listener demands) and over HTTPS (verified
//! against the lab CA); pypsrp's `SignalCode.TERMINATE` is accepted. Also what such a listener refuses: unsealed NTLM bodies and Basic over
//! HTTP, and a wrong password.
//!
//! Needs `LOCKSTEP_PYTHON`: a Python that can `import winrm, pypsrp` (`.ci/run` makes a venv and
//! exports it). Required in CI: with `CI=true` and no such Python the test FAILS; elsewhere it
//! says why it did nothing.

#![allow(clippy::print_stderr)] // says why the interoperability check did not run, or what it got

mod common;

mod model_support;

use std::sync::Arc;

use lockstep_lab::server::test_backend::TestBackend;
use lockstep_lab::server::{LabServer, ServerConfig, TlsOptions};

const USER: &str = "labadmin";
const PASSWORD: &str = "Py-Pass-1";

const SCRIPT: &str = r#"
import json, sys
from urllib.parse import urlparse
url, user, password, ca = sys.argv[1:5]
https = url.startswith('https')
out = {}

def attempt(name, fn):
    try:
        out[name] = fn()
    except Exception as e:
        out[name] = 'error: %s: %s' % (type(e).__name__, e)

import winrm
def pywinrm(enc=None, pw=password, transport='ntlm'):
    kw = {'transport': transport}
    if enc is not None:
        kw['message_encryption'] = enc
    if https:
        kw['ca_trust_path'] = ca
    s = winrm.Session(url, auth=(user, pw), **kw)
    r = s.run_cmd('echo', ['hello', 'pywinrm'])
    e = s.run_cmd('err', ['bad'])
    return [r.std_out.decode('ascii'), r.status_code, e.std_err.decode('ascii'), e.status_code]

attempt('pywinrm_default', lambda: pywinrm())
attempt('pywinrm_always', lambda: pywinrm('always'))
attempt('pywinrm_wrong_password', lambda: pywinrm(pw='wrong'))
attempt('pywinrm_never', lambda: pywinrm('never'))
attempt('pywinrm_basic', lambda: pywinrm(transport='basic'))

from pypsrp.client import Client
def pypsrp():
    u = urlparse(url)
    c = Client(u.hostname, port=u.port, username=user, password=password, ssl=https,
               cert_validation=ca if https else True)
    stdout, stderr, rc = c.execute_cmd('echo hello pypsrp')
    return [stdout, rc]
attempt('pypsrp_default', pypsrp)

# pypsrp's own SignalCode.TERMINATE (`.../signal/Terminate`, capital T), as Windows accepts it.
def pypsrp_terminate():
    from pypsrp.shell import Process, SignalCode, WinRS
    from pypsrp.wsman import WSMan
    u = urlparse(url)
    wsman = WSMan(u.hostname, port=u.port, username=user, password=password, ssl=https,
                  cert_validation=ca if https else True)
    with wsman, WinRS(wsman) as shell:
        p = Process(shell, 'wait')
        p.begin_invoke()
        p.signal(SignalCode.TERMINATE)
        return SignalCode.TERMINATE
attempt('pypsrp_terminate', pypsrp_terminate)
print(json.dumps(out))
"#;

fn python() -> Option<String> {
    common::python("pywinrm/pypsrp interoperability")
}

async fn run(python: &str, url: &str, ca: &str) -> serde_json::Value {
    let output = tokio::process::Command::new(python)
        .args(["-c", SCRIPT, url, USER, PASSWORD, ca])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{url}: {stderr}");
    let result = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    eprintln!("{url}: {result}");
    result
}

fn assert_works(result: &serde_json::Value, client: &str, scheme: &str) {
    assert_eq!(
        result[client],
        serde_json::json!(["hello pywinrm\r\n", 0, "bad\r\n", 1]),
        "{client} over {scheme}: {result:#}"
    );
}

#[tokio::test]
async fn pywinrm_and_pypsrp_with_defaults_over_http_and_https() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();

    // HTTP, Windows' defaults: AllowUnencrypted=false.
    let http = LabServer::start(
        Arc::new(TestBackend::new(1)),
        ServerConfig::with_credentials(USER, PASSWORD),
    )
    .await
    .unwrap();
    let result = run(&python, &http.endpoints()["NODE1"], "").await;
    assert_works(&result, "pywinrm_default", "http");
    assert_works(&result, "pywinrm_always", "http");
    assert_eq!(
        result["pypsrp_default"],
        serde_json::json!(["hello pypsrp\r\n", 0]),
        "{result:#}"
    );
    assert_eq!(
        result["pypsrp_terminate"],
        serde_json::json!(
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/Terminate"
        ),
        "{result:#}"
    );
    for refused in ["pywinrm_wrong_password", "pywinrm_never", "pywinrm_basic"] {
        let text = result[refused].as_str().unwrap_or_default();
        assert!(
            text.starts_with("error: InvalidCredentialsError"),
            "{refused} must be refused over HTTP: {result:#}"
        );
    }
    http.shutdown().await;

    // HTTPS with a certificate signed by the lab CA, which the clients are told to trust.
    let mut config = ServerConfig::with_credentials(USER, PASSWORD);
    config.tls = Some(TlsOptions::default());
    let https = LabServer::start(Arc::new(TestBackend::new(1)), config)
        .await
        .unwrap();
    let ca = dir.path().join("lab-ca.pem");
    std::fs::write(&ca, https.cert_pem().unwrap()).unwrap();
    let result = run(&python, &https.endpoints()["NODE1"], ca.to_str().unwrap()).await;
    assert_works(&result, "pywinrm_default", "https");
    assert_works(&result, "pywinrm_always", "https");
    assert_works(&result, "pywinrm_never", "https");
    assert_works(&result, "pywinrm_basic", "https");
    assert_eq!(
        result["pypsrp_default"],
        serde_json::json!(["hello pypsrp\r\n", 0]),
        "{result:#}"
    );
    assert!(
        result["pywinrm_wrong_password"]
            .as_str()
            .unwrap_or_default()
            .starts_with("error: InvalidCredentialsError"),
        "{result:#}"
    );
    https.shutdown().await;
}

/// The double hop, seen by pywinrm with its defaults (NTLM, encrypted): an installer run from a
/// share in that session is refused as Windows refuses it ("Access is denied.", exit 1), and
/// nothing is installed.
#[tokio::test]
async fn pywinrm_cannot_run_an_installer_from_a_share() {
    let Some(python) = python() else { return };
    let fleet = model_support::cluster_fleet(2, 1, lockstep_core::Locale::EN_US);
    let world = model_support::world(&fleet, model_support::fast());
    let server = LabServer::start(
        world.clone(),
        ServerConfig::with_credentials(USER, PASSWORD),
    )
    .await
    .unwrap();
    let line = format!("\"{}\" /q /z", model_support::SP2_PACKAGE);
    let output = tokio::process::Command::new(&python)
        .args([
            "-c",
            DOUBLE_HOP,
            &server.endpoints()["N2"],
            USER,
            PASSWORD,
            &line,
        ])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let v: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(v[0], 1, "{v}");
    assert!(
        v[1].as_str()
            .unwrap_or_default()
            .contains("Access is denied"),
        "{v}"
    );
    assert_eq!(
        world.snapshot().host("N2").unwrap().build,
        model_support::SP1,
        "nothing installed"
    );
    server.shutdown().await;
}

const DOUBLE_HOP: &str = r#"
import json, sys, winrm
url, user, password, line = sys.argv[1:5]
r = winrm.Session(url, auth=(user, password), transport='ntlm').run_cmd(line)
print(json.dumps([r.status_code, r.std_err.decode('ascii')]))
"#;

const CERT_SCRIPT: &str = r#"
import json, sys
import winrm
url, ca, cert, key, other_cert, other_key, user, password = sys.argv[1:9]
out = {}
def attempt(name, fn):
    try:
        out[name] = fn()
    except Exception as e:
        out[name] = 'error: %s: %s' % (type(e).__name__, e)
def certificate(c, k):
    s = winrm.Session(url, auth=('', ''), transport='certificate', cert_pem=c, cert_key_pem=k,
                      ca_trust_path=ca)
    r = s.run_cmd('echo', ['hello', 'certificate'])
    return [r.std_out.decode('ascii'), r.status_code]
attempt('mapped', lambda: certificate(cert, key))
attempt('other_upn', lambda: certificate(other_cert, other_key))
def ntlm():
    s = winrm.Session(url, auth=(user, password), transport='ntlm', ca_trust_path=ca)
    r = s.run_cmd('echo', ['hello', 'ntlm'])
    return [r.std_out.decode('ascii'), r.status_code]
attempt('ntlm', ntlm)
print(json.dumps(out))
"#;

/// WinRM certificate authentication as pywinrm does it (`transport='certificate'`: a TLS client
/// certificate and `Authorization: http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual`
/// on every request): the lab maps a certificate the lab CA issued for the mapped UPN to the lab
/// account, refuses one for another UPN, and still serves password logons on the listener.
#[tokio::test]
async fn pywinrm_certificate_authentication_over_https() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::with_credentials(USER, PASSWORD);
    config.tls = Some(TlsOptions {
        client_certificate_upn: Some("labadmin@lab.test".into()),
        ..TlsOptions::default()
    });
    let server = LabServer::start(Arc::new(TestBackend::new(1)), config)
        .await
        .unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, server.cert_pem().unwrap()).unwrap();
    let mut files = Vec::new();
    for (name, upn) in [
        ("mapped", "labadmin@lab.test"),
        ("other", "intruder@lab.test"),
    ] {
        let (cert, key) = server.issue_client_certificate(upn).unwrap().unwrap();
        let cert_path = dir.path().join(format!("{name}.pem"));
        let key_path = dir.path().join(format!("{name}.key"));
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
        files.push(cert_path.to_str().unwrap().to_owned());
        files.push(key_path.to_str().unwrap().to_owned());
    }
    let url = server.endpoints()["NODE1"].clone();
    let output = tokio::process::Command::new(&python)
        .args(["-c", CERT_SCRIPT, &url, ca.to_str().unwrap()])
        .args(&files)
        .args([USER, PASSWORD])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("{url}: {result}");
    assert_eq!(
        result["mapped"],
        serde_json::json!(["hello certificate\r\n", 0]),
        "{result:#}"
    );
    assert!(
        result["other_upn"]
            .as_str()
            .unwrap_or_default()
            .starts_with("error: InvalidCredentialsError"),
        "{result:#}"
    );
    assert_eq!(
        result["ntlm"],
        serde_json::json!(["hello ntlm\r\n", 0]),
        "{result:#}"
    );
    let stats = server.stats();
    assert_eq!(stats.certificate_logons, 1, "{stats}");
    server.shutdown().await;
}
