//! Kerberos as a domain-joined Windows fleet speaks it, against a REAL MIT KDC: the test starts
//! `krb5kdc` on loopback with a throwaway realm ([`lockstep_lab::kdc::LabKdc`]), gets a TGT with
//! `kinit` into a temporary ccache, and drives the lab with clients no one here wrote, with their
//! default message encryption over plain HTTP:
//! - pywinrm `transport='kerberos'` (pykerberos; `Negotiate` with a raw Kerberos token,
//!   GSS_WrapEx sealing in `HTTP-SPNEGO-session-encrypted`);
//! - pypsrp `auth='kerberos'` and its default `auth='negotiate'` (pyspnego over MIT GSSAPI:
//!   SPNEGO-wrapped Kerberos);
//! - a bare `Authorization: Kerberos` exchange (python-gssapi), checking the server's AP-REP
//!   (mutual authentication).
//!
//! And what a Windows host refuses: a ticket for another host, a user without a ticket, an
//! unsealed body.
//!
//! Needs the KDC binaries (Debian's krb5-kdc, krb5-admin-server, krb5-user) and
//! `LOCKSTEP_PYTHON` with pywinrm[kerberos] and pypsrp[kerberos]; `.ci/run` installs them.
//! Under `CI=true` their absence FAILS the test.
#![cfg(feature = "kerberos")]
#![allow(clippy::print_stderr)] // says why the check did not run, or what it got

mod common;

use std::sync::Arc;

use lockstep_lab::kdc::{KdcUser, LabKdc};
use lockstep_lab::server::test_backend::TestBackend;
use lockstep_lab::server::{KerberosConfig, LabServer, ServerConfig};

const USER: &str = "labadmin";
const PASSWORD: &str = "Krb-Pass-1";
const REALM: &str = "LAB.TEST";

const SCRIPT: &str = r#"
import base64, json, sys
from urllib.parse import urlparse
url1, url2, realm = sys.argv[1:4]
out = {}

def attempt(name, fn):
    try:
        out[name] = fn()
    except Exception as e:
        out[name] = 'error: %s: %s' % (type(e).__name__, e)

import winrm
def pywinrm(url, host):
    s = winrm.Session(url, auth=('labadmin@' + realm, ''), transport='kerberos',
                      kerberos_hostname_override=host)
    r = s.run_cmd('echo', ['hello', 'kerberos'])
    e = s.run_cmd('err', ['bad'])
    return [r.std_out.decode('ascii'), r.status_code, e.std_err.decode('ascii'), e.status_code]
attempt('pywinrm_kerberos', lambda: pywinrm(url1, 'node1.lab.test'))
attempt('pywinrm_ticket_for_another_host', lambda: pywinrm(url2, 'node1.lab.test'))

from pypsrp.client import Client
def pypsrp(auth):
    u = urlparse(url1)
    kw = {} if auth is None else {'auth': auth}
    c = Client(u.hostname, port=u.port, ssl=False, username='labadmin@' + realm,
               negotiate_hostname_override='node1.lab.test', **kw)
    stdout, stderr, rc = c.execute_cmd('echo hello pypsrp')
    return [stdout, rc]
attempt('pypsrp_kerberos', lambda: pypsrp('kerberos'))
attempt('pypsrp_default', lambda: pypsrp(None))

import gssapi, requests
def bare_kerberos():
    name = gssapi.Name('HTTP@node1.lab.test', gssapi.NameType.hostbased_service)
    ctx = gssapi.SecurityContext(name=name, mech=gssapi.MechType.kerberos, usage='initiate',
                                 flags=gssapi.RequirementFlag.mutual_authentication)
    token = ctx.step()
    with requests.Session() as s:
        r = s.post(url1, data=b'', headers={'Authorization': 'Kerberos ' + base64.b64encode(token).decode()})
        offered = r.headers.get('WWW-Authenticate', '')
        scheme, _, answer = offered.partition(' ')
        ctx.step(base64.b64decode(answer))
        # An unsealed SOAP body on the authenticated connection: refused (AllowUnencrypted=false).
        plain = s.post(url1, data=b'<s:Envelope/>', headers={'Content-Type': 'application/soap+xml;charset=UTF-8'})
    return [r.status_code, scheme, ctx.complete, plain.status_code]
attempt('bare_kerberos', bare_kerberos)
print(json.dumps(out))
"#;

fn python() -> Option<String> {
    common::python("Kerberos interoperability")
}

#[tokio::test]
async fn pywinrm_and_pypsrp_speak_kerberos_with_a_real_kdc() {
    if !LabKdc::require() {
        return;
    }
    let Some(python) = python() else { return };
    let hosts = ["node1.lab.test".to_owned(), "node2.lab.test".to_owned()];
    let kdc = LabKdc::start(
        REALM,
        &[KdcUser {
            name: USER.into(),
            password: PASSWORD.into(),
        }],
        &hosts,
    )
    .unwrap();
    let ccache = kdc.ccache("labadmin");
    kdc.kinit(USER, PASSWORD, &ccache).unwrap();

    let mut config = ServerConfig::with_credentials(USER, "not-the-kerberos-password");
    config.kerberos = Some(KerberosConfig {
        keytab: kdc.keytab(),
        realm: REALM.into(),
    });
    let server = LabServer::start(Arc::new(TestBackend::new(2)), config)
        .await
        .unwrap();
    let endpoints = server.endpoints();
    let mut cmd = tokio::process::Command::new(&python);
    cmd.args([
        "-c",
        SCRIPT,
        &endpoints["NODE1"],
        &endpoints["NODE2"],
        REALM,
    ]);
    for (k, v) in kdc.env(Some(&ccache)) {
        cmd.env(k, v);
    }
    let output = cmd.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let result: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    eprintln!("{result:#}");

    assert_eq!(
        result["pywinrm_kerberos"],
        serde_json::json!(["hello kerberos\r\n", 0, "bad\r\n", 1]),
        "{result:#}"
    );
    for client in ["pypsrp_kerberos", "pypsrp_default"] {
        assert_eq!(
            result[client],
            serde_json::json!(["hello pypsrp\r\n", 0]),
            "{client}: {result:#}"
        );
    }
    assert_eq!(
        result["bare_kerberos"],
        serde_json::json!([200, "Kerberos", true, 401]),
        "{result:#}"
    );
    let other = result["pywinrm_ticket_for_another_host"]
        .as_str()
        .unwrap_or_default();
    assert!(
        other.starts_with("error:"),
        "NODE2 must refuse a ticket for node1: {result:#}"
    );
    server.shutdown().await;
}
