//! Where and how to reach each node: [`NodeTarget`], its [`Secret`], and the [`Limits`].

use std::fmt;
use std::time::Duration;

use lockstep_core::{Auth, Connection, Name, Scheme};
use secrecy::{ExposeSecret, SecretString};

/// A password. Its `Debug` never shows it, it is zeroed when dropped, and it is only handed to
/// the WinRM client.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Secret(SecretString::from(password.into()))
    }

    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret::new(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A client certificate for WinRM certificate authentication: PEM files. The key is a secret:
/// its path may appear in an error, its content never leaves the TLS configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientCertificate {
    /// The certificate (`ansible_winrm_cert_pem`), PEM; a chain may follow the leaf.
    pub cert_pem: std::path::PathBuf,
    /// Its private key (`ansible_winrm_cert_key_pem`), PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: std::path::PathBuf,
}

/// How to reach one node over WinRM.
///
/// Over plain HTTP with NTLM the messages are not sealed (winrm-rs 1.1 cannot seal): the node
/// needs `winrm set winrm/config/service @{AllowUnencrypted="true"}`, or use HTTPS.
#[derive(Debug, Clone)]
pub struct NodeTarget {
    /// The node's name (what the engine calls it).
    pub name: Name,
    /// DNS name or IP address to connect to.
    pub address: String,
    /// TCP port (5985 HTTP, 5986 HTTPS by default on Windows).
    pub port: u16,
    /// HTTP or HTTPS.
    pub scheme: Scheme,
    /// NTLM, Kerberos (both sealed over HTTP) or Basic.
    pub auth: Auth,
    /// `DOMAIN\user`, `user@domain` or `user`.
    pub user: String,
    /// The password.
    pub password: Secret,
    /// Verify the server certificate over HTTPS against the public web PKI roots (true unless
    /// explicitly disabled).
    pub verify_tls: bool,
    /// Explicit permission to send Basic credentials over plain HTTP.
    pub allow_basic_over_http: bool,
    /// Code page the shell asks for (`WINRS_CODEPAGE`); `None` asks for 65001 (UTF-8).
    pub codepage: Option<u32>,
    /// A PEM file of CA certificates trusted for HTTPS besides the system trust store
    /// (`ansible_winrm_ca_trust_path`).
    pub ca_trust_path: Option<std::path::PathBuf>,
    /// The node's OEM code page (437, 850, 852, 932): output that is not valid in the requested
    /// code page is decoded with it.
    pub oem_codepage: u32,
    /// Kerberos: the host name of the node's service principal `HTTP/<name>` when it is not
    /// [`NodeTarget::address`] (`ansible_winrm_kerberos_hostname_override`).
    pub kerberos_hostname: Option<String>,
    /// Kerberos: the KDC as `host:port`; `None` finds it in `krb5.conf` (`KRB5_CONFIG`) for the
    /// user's realm, or in `SSPI_KDC_URL`.
    pub kdc: Option<String>,
    /// Certificate authentication: the client certificate presented over HTTPS.
    pub client_certificate: Option<ClientCertificate>,
}

impl NodeTarget {
    /// A target with the defaults: NTLM over HTTP on 5985, TLS verified, UTF-8 shell, OEM code
    /// page 437.
    pub fn new(
        name: Name,
        address: impl Into<String>,
        user: impl Into<String>,
        password: Secret,
    ) -> Self {
        NodeTarget {
            name,
            address: address.into(),
            port: 5985,
            scheme: Scheme::Http,
            auth: Auth::Ntlm,
            user: user.into(),
            password,
            verify_tls: true,
            allow_basic_over_http: false,
            codepage: None,
            ca_trust_path: None,
            oem_codepage: 437,
            kerberos_hostname: None,
            kdc: None,
            client_certificate: None,
        }
    }

    /// The target of an inventory host's connection. The password comes from the connection's
    /// [`SecretSource`](lockstep_core::SecretSource), resolved by the caller; `oem_codepage` from
    /// the site's locale ([`Locale::oem_codepage`](lockstep_core::Locale::oem_codepage)).
    pub fn from_connection(
        name: Name,
        connection: &Connection,
        password: Secret,
        oem_codepage: u32,
    ) -> Self {
        NodeTarget {
            name,
            address: connection.address.clone(),
            port: connection.port,
            scheme: connection.scheme,
            auth: connection.auth,
            user: connection.user.clone(),
            password,
            verify_tls: connection.verify_tls,
            allow_basic_over_http: connection.allow_basic_over_http,
            codepage: connection.codepage,
            ca_trust_path: connection
                .ca_trust_path
                .as_ref()
                .map(std::path::PathBuf::from),
            oem_codepage,
            kerberos_hostname: None,
            kdc: None,
            client_certificate: None,
        }
    }

    /// The code page the shell asks for.
    pub fn shell_codepage(&self) -> u32 {
        self.codepage.unwrap_or(crate::codepage::UTF8)
    }
}

/// Concurrency, timeouts and retries of a [`crate::WinrmTransport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Commands running at once on one node (and shells kept open per node).
    pub per_host: usize,
    /// Commands running at once on all nodes.
    pub total: usize,
    /// TCP (and TLS) connect timeout (whole seconds, at least 1).
    pub connect_timeout: Duration,
    /// The long-poll length of a Receive: a command silent this long answers an empty poll
    /// (whole seconds, at least 1).
    pub operation_timeout: Duration,
    /// Retries of a request that cannot have started the command (connection refused).
    pub retries: u32,
    /// First retry delay; doubled at each retry.
    ///
    /// The default (5 retries from 100 ms: 0.1, 0.2, 0.4, 0.8, 1.6 s) is as patient in total as
    /// 3 retries from 500 ms (3.1 s against 3.5 s) but retries a short outage sooner: a node
    /// polled while it restarts is found back up to a second earlier, on every reboot of a
    /// unit's chain.
    pub backoff_base: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_host: 2,
            total: 64,
            connect_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(60),
            retries: 5,
            backoff_base: Duration::from_millis(100),
        }
    }
}
