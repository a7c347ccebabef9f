//! What a [`super::LabServer`] is started with: credentials, TLS, ports and polling.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

/// The lab's default account name (the CLI may override it).
pub const DEFAULT_LAB_USER: &str = "labadmin";
/// The lab's default password (the CLI may override it). A lab-only secret: loopback only.
pub const DEFAULT_LAB_PASSWORD: &str = "Lockstep-Lab-2003!";
/// The lab's default NetBIOS domain.
pub const DEFAULT_LAB_DOMAIN: &str = "LAB";

/// A password whose `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(secret: impl Into<String>) -> Self {
        Password(secret.into())
    }

    /// The password itself, for the authentication code only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// HTTPS settings: a self-signed certificate is generated at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// Subject alternative names of the generated certificate (IP literals become IP SANs).
    pub subject_alt_names: Vec<String>,
    /// Certificate authentication (`winrm set winrm/config/service/auth @{Certificate="true"}`
    /// plus one `WSMan:\localhost\ClientCertificate` mapping): the listener asks for a client
    /// certificate issued by the lab CA, and a certificate whose UPN (subject alternative name,
    /// else the subject's CN) is this value logs on as the lab account. `None`: Windows'
    /// default, certificate authentication off.
    pub client_certificate_upn: Option<String>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            subject_alt_names: vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
            client_certificate_upn: None,
        }
    }
}

/// Which authentication schemes the endpoints accept (both, like a default Windows listener
/// with `Basic` enabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthSchemes {
    /// `Authorization: Basic`.
    pub basic: bool,
    /// `Authorization: Negotiate` (or `NTLM`) carrying raw NTLMSSP messages.
    pub ntlm: bool,
}

impl Default for AuthSchemes {
    fn default() -> Self {
        AuthSchemes {
            basic: true,
            ntlm: true,
        }
    }
}

/// Kerberos of a domain-joined fleet: the hosts accept tickets of `realm` for their
/// `HTTP/<host>` service principal, whose keys are in `keytab` (what a computer account holds).
/// Needs the `kerberos` feature (MIT's GSSAPI library).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosConfig {
    /// Keytab with the hosts' `HTTP/<host>[.domain]@REALM` keys.
    pub keytab: PathBuf,
    /// The realm whose users are accepted (`LAB.TEST`); the lab account is `<user>@REALM`.
    pub realm: String,
}

/// How a [`super::LabServer`] serves its hosts.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Account name accepted by every host (compared case-insensitively; `DOMAIN\user` and
    /// `user@domain` forms are accepted too).
    pub user: String,
    /// Password of `user`.
    pub password: Password,
    /// NetBIOS domain announced in the NTLM challenge.
    pub domain: String,
    /// Serve HTTPS with a generated self-signed certificate instead of HTTP.
    pub tls: Option<TlsOptions>,
    /// Accepted authentication schemes.
    pub auth: AuthSchemes,
    /// Loopback address to bind (must be in 127.0.0.0/8).
    pub bind: Ipv4Addr,
    /// `None`: every host gets an OS-assigned port. `Some(p)`: host `i` (in
    /// [`crate::backend::Backend::hosts`] order) gets port `p + i`.
    pub base_port: Option<u16>,
    /// How often the server polls every host's availability and closes or reopens its listener.
    /// Requests and accepts also check availability, so this only bounds how long a down host
    /// keeps its listening socket.
    pub availability_poll: Duration,
    /// Largest request body accepted (Windows' default `MaxEnvelopeSizekb` is 500 KiB).
    pub max_request_bytes: usize,
    /// `AllowUnencrypted` of the WinRM service: `false` (Windows' default) makes a plain-HTTP
    /// listener refuse Basic and every NTLM/Negotiate body that is not sealed (MS-WSMV
    /// 2.2.9.1). `true` rehearses an old, weakened configuration. HTTPS ignores it.
    pub allow_unencrypted: bool,
    /// `MaxShellsPerUser`: open shells per host beyond which Create gets the `w:QuotaLimit`
    /// fault (Windows' default 30; 5 on the WinRM 1.1 of Windows Server 2003 R2).
    pub max_shells_per_user: usize,
    /// `MaxConcurrentOperationsPerUser`: requests of the (single) lab user a host serves at once
    /// (a Receive long poll counts while it waits); one more gets the `w:QuotaLimit` fault
    /// 2150859174 (`ERROR_WSMAN_QUOTA_MAX_OPERATIONS`). Windows' default 1500.
    pub max_concurrent_operations_per_user: usize,
    /// `IdleTimeout` of the WinRS shells (Windows' default 7,200,000 ms): a shell no request has
    /// touched for longer is deleted with its commands, and a later request naming it gets the
    /// `w:InvalidSelectors` fault 2150858843 ("the shell was not found on the server").
    pub idle_timeout: Duration,
    /// Kerberos (`None`: NTLM and Basic only, like a workgroup server). Kerberos sessions hold
    /// no delegable credentials unless the client delegated its TGT.
    pub kerberos: Option<KerberosConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            user: DEFAULT_LAB_USER.to_owned(),
            password: Password::new(DEFAULT_LAB_PASSWORD),
            domain: DEFAULT_LAB_DOMAIN.to_owned(),
            tls: None,
            auth: AuthSchemes::default(),
            bind: Ipv4Addr::LOCALHOST,
            base_port: None,
            availability_poll: Duration::from_millis(100),
            max_request_bytes: 512 * 1024,
            allow_unencrypted: false,
            max_shells_per_user: 30,
            max_concurrent_operations_per_user: 1500,
            idle_timeout: Duration::from_millis(7_200_000),
            kerberos: None,
        }
    }
}

impl ServerConfig {
    /// The default configuration with other credentials.
    pub fn with_credentials(user: impl Into<String>, password: impl Into<String>) -> Self {
        ServerConfig {
            user: user.into(),
            password: Password::new(password),
            ..ServerConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let config = ServerConfig::with_credentials("alice", "s3cr3t-value");
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(shown.contains("alice"));
    }
}
