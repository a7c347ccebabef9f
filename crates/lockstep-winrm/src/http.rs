//! Lockstep's own WinRM connection layer: one HTTP/1.1 connection, authenticated ONCE (NTLM
//! authenticates a TCP connection, not a request), then many SOAP messages on it, sealed with
//! the NTLM session keys when the connection is plain HTTP (MS-WSMV 2.2.9.1 message
//! encryption, what a default Windows listener demands).
//!
//! Why not winrm-rs 1.1.2's client: it runs the whole NTLM handshake again for every SOAP
//! message (3 HTTP requests per message), leaves the two legs to reqwest's pool (so they can
//! travel on different connections and get a spurious 401), starts a `hostname` process per
//! NTLM request when `$HOSTNAME` is unset, and trusts only the built-in web PKI roots. This layer
//! keeps the handshake and the session on one connection it owns; the NTLM handshake and
//! Kerberos come from the `sspi` crate (Devolutions), NTLM's per-message sealing from
//! [`crate::ntlm_seal`] (in place, without `sspi`'s four copies per message), TLS from
//! rustls.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, WWW_AUTHENTICATE};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use lockstep_core::Scheme;
use sspi::generator::GeneratorState;
use sspi::{
    AuthIdentity, BufferType, ClientRequestFlags, CredentialUse, Credentials, DataRepresentation,
    EncryptionFlags, KdcResolution, Kerberos, KerberosConfig, Negotiate, NegotiateConfig,
    NegotiatedProtocol, NetworkProtocol, NetworkRequest, Ntlm, SecurityBuffer, SecurityBufferRef,
    SecurityStatus, Sspi, SspiImpl, Username,
};

use crate::failure::Failure;
use crate::ntlm_seal::{NtlmSeal, SIGNATURE_LEN};
use crate::target::Secret;

/// How a connection authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// `Authorization: Basic` on every request (HTTPS, or an explicitly allowed HTTP).
    Basic,
    /// NTLMv2 in `Authorization: Negotiate`, once per connection; sealed bodies over HTTP.
    Ntlm,
    /// Kerberos (a raw Kerberos token in `Authorization: Negotiate`, as pywinrm and Windows
    /// send it), once per connection; sealed bodies over HTTP (GSS_WrapEx).
    Kerberos,
    /// SPNEGO (`Authorization: Negotiate`) as Windows clients and pypsrp send it: Kerberos first
    /// when the user is `user@REALM` and the realm's KDC gives a ticket for `HTTP/<spn_host>`,
    /// NTLM when no ticket can be had (no KDC, a KDC that does not know the realm or the
    /// service, an IP address as the service host); sealed bodies over HTTP either way.
    Negotiate,
    /// WinRM certificate authentication: the TLS client certificate of the connection, and on
    /// every request `Authorization: http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual`
    /// (as pywinrm sends it). HTTPS only.
    Certificate,
}

/// The `Authorization` value of certificate authentication (MS-WSMV; pywinrm's `certificate`).
const CERTIFICATE_PROFILE: &str =
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual";

/// Where and how to connect: shared by every connection to one node.
pub struct Endpoint {
    /// Address to connect to.
    pub address: String,
    /// TCP port.
    pub port: u16,
    /// HTTP or HTTPS.
    pub scheme: Scheme,
    /// TLS client configuration (HTTPS only).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The authentication mechanism.
    pub mechanism: Mechanism,
    /// User name as given (`DOMAIN\user`, `user@domain`, `user`).
    pub user: String,
    /// Password.
    pub password: Secret,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Kerberos: the host of the node's service principal `HTTP/<host>` (the address, or
    /// `ansible_winrm_kerberos_hostname_override`).
    pub spn_host: String,
    /// Kerberos: the KDC (`host:port`); `None` reads `krb5.conf` (`KRB5_CONFIG`) for the
    /// user's realm, or `SSPI_KDC_URL`.
    pub kdc: Option<String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.address)
            .field("port", &self.port)
            .field("scheme", &self.scheme)
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// `http(s)://address:port/wsman`.
    pub fn url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        let host = if self.address.contains(':') {
            format!("[{}]", self.address)
        } else {
            self.address.clone()
        };
        format!("{scheme}://{host}:{}/wsman", self.port)
    }

    fn host_header(&self) -> String {
        format!("{}:{}", self.address, self.port)
    }

    /// Message encryption applies: NTLM or Kerberos over plain HTTP.
    fn seals(&self) -> bool {
        !matches!(self.mechanism, Mechanism::Basic | Mechanism::Certificate)
            && self.scheme == Scheme::Http
    }

    fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.user, self.password.expose());
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Counters of HTTP traffic, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct Traffic {
    /// HTTP requests sent (handshake legs included).
    pub requests: std::sync::atomic::AtomicU64,
    /// Connections opened (TCP connects that succeeded).
    pub connections: std::sync::atomic::AtomicU64,
}

/// The security context of a sealed connection.
enum Session {
    /// NTLM session security of our own ([`NtlmSeal`]: in place, one copy per message); the
    /// handshake was `sspi`'s.
    Ntlm(Box<NtlmSeal>),
    Kerberos(Box<Kerberos>),
    Negotiate(Box<Negotiate>),
}

impl Session {
    /// Seals `plain` and frames it as MS-WSMV 2.2.9.1 says.
    fn seal(&mut self, plain: &[u8]) -> Result<Vec<u8>, Failure> {
        let context: &mut dyn SealContext = match self {
            Session::Ntlm(ntlm) => {
                let mut out = frame_start(plain.len(), SIGNATURE_LEN);
                let sig_at = out.len();
                out.extend_from_slice(&[0u8; SIGNATURE_LEN]);
                out.extend_from_slice(plain);
                let signature = ntlm.seal_in_place(&mut out[sig_at + SIGNATURE_LEN..]);
                out[sig_at..sig_at + SIGNATURE_LEN].copy_from_slice(&signature);
                out.extend_from_slice(FRAME_END.as_bytes());
                return Ok(out);
            }
            Session::Kerberos(k) => k.as_mut(),
            Session::Negotiate(n) => n.as_mut(),
        };
        seal(context, plain)
    }

    /// Reads a sealed answer: checks the framing, unseals and verifies the signature.
    fn unseal(&mut self, body: &[u8]) -> Result<Vec<u8>, Failure> {
        let (signature, sealed) = split_sealed(body)?;
        let context: &mut dyn SealContext = match self {
            Session::Ntlm(ntlm) => {
                let mut plain = sealed.to_vec();
                return match ntlm.unseal_in_place(signature, &mut plain) {
                    Ok(()) => Ok(plain),
                    Err(e) => Err(Failure::Protocol(format!(
                        "sealed answer does not verify: {e}"
                    ))),
                };
            }
            Session::Kerberos(k) => k.as_mut(),
            Session::Negotiate(n) => n.as_mut(),
        };
        unseal(context, signature, sealed)
    }
}

/// What sealing needs of an `sspi` context.
trait SealContext {
    fn encrypt(&mut self, buffers: &mut [SecurityBufferRef<'_>]) -> Result<(), sspi::Error>;
    fn decrypt(&mut self, buffers: &mut [SecurityBufferRef<'_>]) -> Result<(), sspi::Error>;
    fn trailer_len(&mut self) -> Result<usize, sspi::Error>;
}

impl<T: Sspi> SealContext for T {
    fn encrypt(&mut self, buffers: &mut [SecurityBufferRef<'_>]) -> Result<(), sspi::Error> {
        self.encrypt_message(EncryptionFlags::empty(), buffers)
            .map(|_| ())
    }
    fn decrypt(&mut self, buffers: &mut [SecurityBufferRef<'_>]) -> Result<(), sspi::Error> {
        self.decrypt_message(buffers).map(|_| ())
    }
    fn trailer_len(&mut self) -> Result<usize, sspi::Error> {
        Ok(self.query_context_sizes()?.security_trailer as usize)
    }
}

/// One authenticated connection to a node.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    /// The NTLM or Kerberos session, when bodies are sealed.
    session: Option<Session>,
}

const ENCRYPTED_CONTENT_TYPE: &str = "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"Encrypted Boundary\"";
const SOAP_CONTENT_TYPE: &str = "application/soap+xml;charset=UTF-8";

fn sspi_failure(what: &str, e: sspi::Error) -> Failure {
    Failure::Protocol(format!("{what}: {e}"))
}

impl Connection {
    /// Connects (TCP, then TLS for HTTPS) and, for NTLM, authenticates the connection with an
    /// empty POST (two round trips, as pywinrm and Windows clients do). A failure before any
    /// SOAP body was sent is [`Failure::Connect`] or [`Failure::AuthRejected`].
    pub async fn open(endpoint: &Endpoint, traffic: &Traffic) -> Result<Connection, Failure> {
        let addr = (endpoint.address.as_str(), endpoint.port);
        let tcp = tokio::time::timeout(
            endpoint.connect_timeout,
            tokio::net::TcpStream::connect(addr),
        )
        .await
        .map_err(|_| {
            Failure::Connect(format!(
                "no TCP connection to {} within {} s",
                endpoint.host_header(),
                endpoint.connect_timeout.as_secs()
            ))
        })?
        .map_err(|e| Failure::Connect(format!("{}: {e}", endpoint.host_header())))?;
        let _ = tcp.set_nodelay(true);
        traffic
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sender = match (&endpoint.scheme, &endpoint.tls) {
            (Scheme::Https, Some(config)) => {
                let name = rustls::pki_types::ServerName::try_from(endpoint.address.clone())
                    .map_err(|e| {
                        Failure::Protocol(format!("`{}` is not a TLS name: {e}", endpoint.address))
                    })?;
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let tls =
                    tokio::time::timeout(endpoint.connect_timeout, connector.connect(name, tcp))
                        .await
                        .map_err(|_| Failure::Connect("TLS handshake timed out".to_owned()))?
                        .map_err(|e| {
                            Failure::Connect(format!("TLS with {}: {e}", endpoint.host_header()))
                        })?;
                handshake(TokioIo::new(tls)).await?
            }
            _ => handshake(TokioIo::new(tcp)).await?,
        };
        let mut connection = Connection {
            sender,
            session: None,
        };
        match endpoint.mechanism {
            Mechanism::Ntlm => connection.authenticate(endpoint, traffic).await?,
            Mechanism::Kerberos => connection.authenticate_kerberos(endpoint, traffic).await?,
            Mechanism::Negotiate => connection.authenticate_negotiate(endpoint, traffic).await?,
            Mechanism::Basic | Mechanism::Certificate => {}
        }
        Ok(connection)
    }

    /// Whether the peer closed the connection (a pooled connection is then dropped).
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// NEGOTIATE → CHALLENGE → AUTHENTICATE on this connection.
    async fn authenticate(
        &mut self,
        endpoint: &Endpoint,
        traffic: &Traffic,
    ) -> Result<(), Failure> {
        let (account, domain) = match endpoint.user.split_once('\\') {
            Some((domain, user)) => (user, Some(domain)),
            None => (endpoint.user.as_str(), None),
        };
        let username = Username::new(account, domain)
            .map_err(|e| Failure::Protocol(format!("user `{}`: {e}", endpoint.user)))?;
        let identity = AuthIdentity {
            username,
            password: endpoint.password.expose().to_owned().into(),
        };
        let mut ntlm = Ntlm::new();
        let mut credentials = ntlm
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Outbound)
            .with_auth_data(&identity)
            .execute(&mut ntlm)
            .map_err(|e| sspi_failure("NTLM credentials", e))?;
        let target = format!("HTTP/{}", endpoint.address);
        let flags = ClientRequestFlags::CONFIDENTIALITY
            | ClientRequestFlags::INTEGRITY
            | ClientRequestFlags::SEQUENCE_DETECT
            | ClientRequestFlags::REPLAY_DETECT
            | ClientRequestFlags::ALLOCATE_MEMORY;
        let mut input: Option<Vec<u8>> = None;
        // The last token sent: the AUTHENTICATE_MESSAGE once the loop ends.
        let mut authenticate: Vec<u8>;
        loop {
            let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
            let mut input_buffers = input
                .take()
                .map(|token| vec![SecurityBuffer::new(token, BufferType::Token)])
                .unwrap_or_default();
            let mut builder = ntlm
                .initialize_security_context()
                .with_credentials_handle(&mut credentials.credentials_handle)
                .with_context_requirements(flags)
                .with_target_data_representation(DataRepresentation::Native)
                .with_target_name(&target)
                .with_output(&mut output);
            if !input_buffers.is_empty() {
                builder = builder.with_input(&mut input_buffers);
            }
            let result = ntlm
                .initialize_security_context_impl(&mut builder)
                .and_then(|mut g| g.resolve_to_result())
                .map_err(|e| sspi_failure("NTLM", e))?;
            if matches!(
                result.status,
                SecurityStatus::CompleteNeeded | SecurityStatus::CompleteAndContinue
            ) {
                ntlm.complete_auth_token(&mut output)
                    .map_err(|e| sspi_failure("NTLM", e))?;
            }
            let token = std::mem::take(&mut output[0].buffer);
            let (status, challenge) = self
                .send_token(endpoint, traffic, &token, &["Negotiate "])
                .await?;
            authenticate = token;
            let continues = matches!(
                result.status,
                SecurityStatus::ContinueNeeded | SecurityStatus::CompleteAndContinue
            );
            match (continues, status, challenge) {
                (true, StatusCode::UNAUTHORIZED, Some(token)) => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(token.trim())
                        .map_err(|e| Failure::Protocol(format!("NTLM challenge: {e}")))?;
                    input = Some(bytes);
                }
                (false, s, _) if s.is_success() => break,
                (_, StatusCode::UNAUTHORIZED, _) => {
                    return Err(Failure::AuthRejected(
                        "the node refused the NTLM credentials (HTTP 401)".to_owned(),
                    ))
                }
                (_, s, _) => {
                    return Err(Failure::Protocol(format!(
                        "NTLM handshake answered HTTP {s}"
                    )))
                }
            }
        }
        if endpoint.seals() {
            // Per-message security from the exported session key and the flags the
            // AUTHENTICATE_MESSAGE carried (what was negotiated), derived once here.
            let key = ntlm
                .query_context_session_key()
                .map_err(|e| sspi_failure("NTLM session key", e))?;
            let key: [u8; 16] = key
                .session_key
                .as_ref()
                .as_slice()
                .try_into()
                .map_err(|_| {
                    Failure::Protocol("the NTLM session key is not 16 bytes".to_owned())
                })?;
            let security = NtlmSeal::authenticate_flags(&authenticate)
                .and_then(|flags| NtlmSeal::new(&key, flags))
                .ok_or_else(|| {
                    Failure::Protocol(
                        "the NTLM handshake negotiated no message encryption (sealing with \
                         extended session security)"
                            .to_owned(),
                    )
                })?;
            self.session = Some(Session::Ntlm(Box::new(security)));
        }
        Ok(())
    }

    /// Kerberos on this connection: a TGT and a service ticket for `HTTP/<spn_host>` from the
    /// KDC (`sspi`'s client; the KDC exchanges go over TCP from here), the AP-REQ in an empty
    /// POST, the server's AP-REP (mutual authentication) in its answer.
    async fn authenticate_kerberos(
        &mut self,
        endpoint: &Endpoint,
        traffic: &Traffic,
    ) -> Result<(), Failure> {
        // `user@REALM` goes to the KDC as the principal `user` of realm `REALM` (NT-PRINCIPAL):
        // every KDC knows it (an MIT KDC does not look up the NT-ENTERPRISE name that sspi would
        // send for a UPN; Active Directory accepts both).
        let Some((account, realm)) = endpoint
            .user
            .rsplit_once('@')
            .filter(|(a, r)| !a.is_empty() && !r.is_empty() && !a.contains('\\'))
        else {
            return Err(Failure::Protocol(format!(
                "Kerberos needs the user as user@REALM, found `{}`",
                endpoint.user
            )));
        };
        let username = Username::new(account, Some(realm))
            .map_err(|e| Failure::Protocol(format!("user `{}`: {e}", endpoint.user)))?;
        let identity = AuthIdentity {
            username,
            password: endpoint.password.expose().to_owned().into(),
        };
        let kdc_url = endpoint
            .kdc
            .as_deref()
            .and_then(sspi::kerberos::config::parse_kdc_url);
        let config = KerberosConfig {
            kdc_resolution: KdcResolution::KdcUrl(kdc_url),
            client_computer_name: "lockstep".to_owned(),
        };
        let mut kerberos =
            Kerberos::new_client_from_config(config).map_err(|e| sspi_failure("Kerberos", e))?;
        let credentials_data = Credentials::AuthIdentity(identity);
        let mut credentials = kerberos
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Outbound)
            .with_auth_data(&credentials_data)
            .execute(&mut kerberos)
            .map_err(|e| sspi_failure("Kerberos credentials", e))?;
        let target = format!("HTTP/{}", endpoint.spn_host);
        let mut input: Option<Vec<u8>> = None;
        let mut complete = false;
        for _leg in 0..4 {
            let (status, mut output) = security_step(
                &mut kerberos,
                &mut credentials.credentials_handle,
                &target,
                input.take().unwrap_or_default(),
                endpoint.connect_timeout,
                "Kerberos",
            )
            .await?;
            let token = std::mem::take(&mut output[0].buffer);
            if status == SecurityStatus::Ok && token.is_empty() {
                complete = true;
                break;
            }
            let (http_status, answer) = self
                .send_token(endpoint, traffic, &token, &["Negotiate ", "Kerberos "])
                .await?;
            match (http_status, answer) {
                (StatusCode::UNAUTHORIZED, None) => {
                    return Err(Failure::AuthRejected(format!(
                        "the node refused the Kerberos ticket for {target} (HTTP 401)"
                    )))
                }
                (s, Some(token)) if s.is_success() || s == StatusCode::UNAUTHORIZED => {
                    input = Some(
                        base64::engine::general_purpose::STANDARD
                            .decode(token.trim())
                            .map_err(|e| Failure::Protocol(format!("Kerberos answer: {e}")))?,
                    );
                    if status == SecurityStatus::Ok {
                        // Complete on our side already; the answer was the AP-REP.
                        complete = true;
                        break;
                    }
                }
                (s, None) if s.is_success() => {
                    return Err(Failure::Protocol(
                        "the node accepted Kerberos without the AP-REP of mutual authentication"
                            .to_owned(),
                    ))
                }
                (s, _) => {
                    return Err(Failure::Protocol(format!(
                        "Kerberos handshake answered HTTP {s}"
                    )))
                }
            }
        }
        if !complete {
            return Err(Failure::Protocol(
                "the Kerberos context did not complete".to_owned(),
            ));
        }
        if endpoint.seals() {
            self.session = Some(Session::Kerberos(Box::new(kerberos)));
        }
        Ok(())
    }

    /// SPNEGO on this connection with `sspi`'s Negotiate: for `user@REALM`, a Kerberos AP-REQ
    /// (tickets from the realm's KDC) in a NegTokenInit that also lists NTLM; when no ticket can
    /// be had (`sspi` falls back on an unreachable KDC, an unknown realm or service principal,
    /// a clock skew), NTLM in the same SPNEGO envelope. Other user forms (`DOMAIN\user`, `user`)
    /// have no realm to ask: NTLM in SPNEGO, as Windows sends it outside a domain.
    async fn authenticate_negotiate(
        &mut self,
        endpoint: &Endpoint,
        traffic: &Traffic,
    ) -> Result<(), Failure> {
        let realm_user = endpoint
            .user
            .rsplit_once('@')
            .filter(|(a, r)| !a.is_empty() && !r.is_empty() && !a.contains('\\'));
        let (username, config) = match realm_user {
            Some((account, realm)) => {
                let kdc_url = endpoint
                    .kdc
                    .as_deref()
                    .and_then(sspi::kerberos::config::parse_kdc_url);
                let kerberos = KerberosConfig {
                    kdc_resolution: KdcResolution::KdcUrl(kdc_url),
                    client_computer_name: "lockstep".to_owned(),
                };
                (
                    Username::new(account, Some(realm)),
                    NegotiateConfig::new(
                        Box::new(kerberos),
                        Some("kerberos,ntlm,!pku2u".to_owned()),
                        "lockstep".to_owned(),
                    ),
                )
            }
            None => {
                let (account, domain) = match endpoint.user.split_once('\\') {
                    Some((domain, user)) => (user, Some(domain)),
                    None => (endpoint.user.as_str(), None),
                };
                (
                    Username::new(account, domain),
                    NegotiateConfig::new(
                        Box::new(sspi::ntlm::NtlmConfig::new("lockstep".to_owned())),
                        Some("ntlm,!kerberos,!pku2u".to_owned()),
                        "lockstep".to_owned(),
                    ),
                )
            }
        };
        let username =
            username.map_err(|e| Failure::Protocol(format!("user `{}`: {e}", endpoint.user)))?;
        let credentials_data = Credentials::AuthIdentity(AuthIdentity {
            username,
            password: endpoint.password.expose().to_owned().into(),
        });
        let mut negotiate =
            Negotiate::new_client(config).map_err(|e| sspi_failure("Negotiate", e))?;
        let mut credentials = negotiate
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Outbound)
            .with_auth_data(&credentials_data)
            .execute(&mut negotiate)
            .map_err(|e| sspi_failure("Negotiate credentials", e))?;
        let target = format!("HTTP/{}", endpoint.spn_host);
        let mut input: Option<Vec<u8>> = None;
        let mut complete = false;
        // NTLM: NegTokenInit, AUTHENTICATE (+ mechListMIC), the server's final token;
        // Kerberos: the AP-REQ, then the AP-REP.
        for _leg in 0..5 {
            let (status, mut output) = security_step(
                &mut negotiate,
                &mut credentials.credentials_handle,
                &target,
                input.take().unwrap_or_default(),
                endpoint.connect_timeout,
                "Negotiate",
            )
            .await?;
            if matches!(
                status,
                SecurityStatus::CompleteNeeded | SecurityStatus::CompleteAndContinue
            ) {
                negotiate
                    .complete_auth_token(&mut output)
                    .map_err(|e| sspi_failure("Negotiate", e))?;
            }
            let token = std::mem::take(&mut output[0].buffer);
            if token.is_empty() {
                if status == SecurityStatus::Ok {
                    complete = true;
                }
                break;
            }
            let (http_status, answer) = self
                .send_token(endpoint, traffic, &token, &["Negotiate "])
                .await?;
            let mechanism = negotiated_name(&negotiate);
            match (http_status, answer) {
                (StatusCode::UNAUTHORIZED, None) => {
                    return Err(Failure::AuthRejected(format!(
                        "the node refused the {mechanism} credentials for {target} (HTTP 401)"
                    )))
                }
                (s, Some(token)) if s.is_success() || s == StatusCode::UNAUTHORIZED => {
                    input = Some(
                        base64::engine::general_purpose::STANDARD
                            .decode(token.trim())
                            .map_err(|e| Failure::Protocol(format!("SPNEGO answer: {e}")))?,
                    );
                }
                (s, None) if s.is_success() && status == SecurityStatus::Ok => {
                    // Accepted; no final token to check (NTLM without a server mechListMIC).
                    complete = !matches!(
                        negotiate.negotiated_protocol(),
                        NegotiatedProtocol::Kerberos(_)
                    );
                    if !complete {
                        return Err(Failure::Protocol(
                            "the node accepted Kerberos without the AP-REP of mutual authentication"
                                .to_owned(),
                        ));
                    }
                    break;
                }
                (s, _) => {
                    return Err(Failure::Protocol(format!(
                        "SPNEGO ({mechanism}) handshake answered HTTP {s}"
                    )))
                }
            }
        }
        if !complete {
            return Err(Failure::Protocol(
                "the SPNEGO context did not complete".to_owned(),
            ));
        }
        tracing::debug!(
            host = %endpoint.address,
            mechanism = negotiated_name(&negotiate),
            "connection authenticated with Negotiate"
        );
        if endpoint.seals() {
            self.session = Some(Session::Negotiate(Box::new(negotiate)));
        }
        Ok(())
    }

    /// Sends one security token (`Authorization: Negotiate <base64>`) on this connection and
    /// reads the node's answer: its HTTP status and the token of its `WWW-Authenticate` header
    /// under one of `schemes` (`"Negotiate "`), if any.
    async fn send_token(
        &mut self,
        endpoint: &Endpoint,
        traffic: &Traffic,
        token: &[u8],
        schemes: &[&str],
    ) -> Result<(StatusCode, Option<String>), Failure> {
        let header = format!(
            "Negotiate {}",
            base64::engine::general_purpose::STANDARD.encode(token)
        );
        let request = self.request(endpoint, Some(header), None, Bytes::new());
        let response = self.round_trip(request, traffic).await?;
        let status = response.status();
        let answer = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                schemes
                    .iter()
                    .find_map(|scheme| v.strip_prefix(scheme))
                    .map(str::to_owned)
            });
        let _ = response.into_body().collect().await;
        Ok((status, answer))
    }

    fn request(
        &self,
        endpoint: &Endpoint,
        authorization: Option<String>,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri("/wsman")
            .header(HOST, endpoint.host_header())
            .header(CONTENT_LENGTH, body.len())
            .header("User-Agent", "Lockstep WinRM");
        if let Some(auth) = authorization {
            builder = builder.header(AUTHORIZATION, auth);
        }
        if let Some(ct) = content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        builder
            .body(Full::new(body))
            .expect("a request of valid parts")
    }

    async fn round_trip(
        &mut self,
        request: Request<Full<Bytes>>,
        traffic: &Traffic,
    ) -> Result<hyper::Response<hyper::body::Incoming>, Failure> {
        // A connection the peer closed fails here, before anything is written.
        self.sender
            .ready()
            .await
            .map_err(|e| Failure::Connect(format!("connection closed: {e}")))?;
        traffic
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.sender
            .send_request(request)
            .await
            .map_err(|e| Failure::Broken(format!("HTTP: {e}")))
    }

    /// Sends one SOAP message and returns the SOAP answer (HTTP 200), or the classified failure
    /// (a SOAP fault with HTTP 500 is [`Failure::Fault`] or [`Failure::PollTimedOut`]).
    pub async fn send(
        &mut self,
        endpoint: &Endpoint,
        soap: &str,
        traffic: &Traffic,
    ) -> Result<String, Failure> {
        let authorization = match endpoint.mechanism {
            Mechanism::Basic => Some(endpoint.basic_header()),
            Mechanism::Certificate => Some(CERTIFICATE_PROFILE.to_owned()),
            _ => None,
        };
        let request = match self.session.as_mut() {
            Some(session) => {
                let body = session.seal(soap.as_bytes())?;
                self.request(
                    endpoint,
                    authorization,
                    Some(ENCRYPTED_CONTENT_TYPE),
                    body.into(),
                )
            }
            None => self.request(
                endpoint,
                authorization,
                Some(SOAP_CONTENT_TYPE),
                Bytes::from(soap.to_owned()),
            ),
        };
        let response = self.round_trip(request, traffic).await?;
        let status = response.status();
        let encrypted = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/encrypted"));
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Failure::Broken(format!("reading the answer: {e}")))?
            .to_bytes();
        let body = if encrypted {
            let Some(session) = self.session.as_mut() else {
                return Err(Failure::Protocol(
                    "the node sealed an answer on a connection without a session".to_owned(),
                ));
            };
            session.unseal(&body)?
        } else if self.session.is_some() && !body.is_empty() {
            return Err(Failure::Protocol(format!(
                "the node answered HTTP {status} unsealed on a sealed connection"
            )));
        } else {
            body.to_vec()
        };
        let text = String::from_utf8(body)
            .map_err(|_| Failure::Protocol("the answer is not UTF-8".to_owned()))?;
        match status {
            StatusCode::OK => Ok(text),
            StatusCode::UNAUTHORIZED => Err(Failure::AuthRejected(
                "the node refused the credentials (HTTP 401)".to_owned(),
            )),
            s => match crate::soap::fault(&text) {
                Some(f) if f.is_timed_out() => Err(Failure::PollTimedOut),
                Some(f) => match f.quota() {
                    Some(quota) => Err(Failure::Quota {
                        quota,
                        detail: f.to_string(),
                    }),
                    None => Err(Failure::Fault(f.to_string())),
                },
                None => Err(Failure::Protocol(format!("the node answered HTTP {s}"))),
            },
        }
    }
}

async fn handshake<IO>(io: TokioIo<IO>) -> Result<SendRequest<Full<Bytes>>, Failure>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| Failure::Connect(format!("HTTP handshake: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::trace!(error = %e, "WinRM connection ended");
        }
    });
    Ok(sender)
}

const BOUNDARY: &str = "--Encrypted Boundary";
const PROTOCOL: &str = "application/HTTP-SPNEGO-session-encrypted";

const FRAME_END: &str = "--Encrypted Boundary--\r\n";

/// The MS-WSMV 2.2.9.1 frame up to the signature's length (included), with room for the rest.
fn frame_start(plain_len: usize, signature_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(plain_len + signature_len + 256);
    out.extend_from_slice(
        format!(
            "{BOUNDARY}\r\n\tContent-Type: {PROTOCOL}\r\n\tOriginalContent: type={SOAP_CONTENT_TYPE};Length={plain_len}\r\n{BOUNDARY}\r\n\tContent-Type: application/octet-stream\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(&(signature_len as u32).to_le_bytes());
    out
}

/// Seals `plain` with an `sspi` context and frames it: the GSS_WrapEx header (Kerberos: token
/// header and rotated trailer), then the ciphertext.
fn seal(context: &mut dyn SealContext, plain: &[u8]) -> Result<Vec<u8>, Failure> {
    let trailer = context
        .trailer_len()
        .map_err(|e| sspi_failure("sealing", e))?;
    let mut signature = vec![0u8; trailer];
    let mut data = plain.to_vec();
    {
        let mut buffers = [
            SecurityBufferRef::token_buf(&mut signature),
            SecurityBufferRef::data_buf(&mut data),
        ];
        context
            .encrypt(&mut buffers)
            .map_err(|e| sspi_failure("sealing", e))?;
        let written = buffers[0].data().len();
        signature.truncate(written);
    }
    let mut out = frame_start(plain.len(), signature.len());
    out.extend_from_slice(&signature);
    out.extend_from_slice(&data);
    out.extend_from_slice(FRAME_END.as_bytes());
    Ok(out)
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        // First byte before the whole comparison: one `memcmp` call per position was measurable.
        .position(|w| w[0] == needle[0] && w == needle)
        .map(|p| p + from)
}

/// The signature (or wrap header) and the ciphertext of a sealed answer, framing checked.
fn split_sealed(body: &[u8]) -> Result<(&[u8], &[u8]), Failure> {
    let bad = |what: &str| Failure::Protocol(format!("sealed answer: {what}"));
    let octets = b"\tContent-Type: application/octet-stream\r\n";
    let headers_end = find(body, octets, 0).ok_or_else(|| bad("no octet-stream part"))?;
    let headers = String::from_utf8_lossy(&body[..headers_end]);
    let length: usize = headers
        .split(';')
        .find_map(|p| p.trim().strip_prefix("Length="))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| bad("no Length"))?;
    let data = &body[headers_end + octets.len()..];
    if data.len() < 4 {
        return Err(bad("truncated"));
    }
    let sig_len = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let rest = &data[4..];
    if sig_len > 1024 || rest.len() < sig_len + length {
        return Err(bad("lengths do not match"));
    }
    Ok((&rest[..sig_len], &rest[sig_len..sig_len + length]))
}

/// Unseals an answer with an `sspi` context and verifies its signature.
fn unseal(
    context: &mut dyn SealContext,
    signature: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, Failure> {
    let length = sealed.len();
    let mut signature = signature.to_vec();
    let mut sealed = sealed.to_vec();
    {
        let mut buffers = [
            SecurityBufferRef::token_buf(&mut signature),
            SecurityBufferRef::data_buf(&mut sealed),
        ];
        context
            .decrypt(&mut buffers)
            .map_err(|e| Failure::Protocol(format!("sealed answer does not verify: {e}")))?;
        let plain_len = buffers[1].data().len();
        sealed.truncate(plain_len);
    }
    if sealed.len() != length {
        return Err(Failure::Protocol(
            "sealed answer: the plaintext length differs from Length".to_owned(),
        ));
    }
    Ok(sealed)
}

/// One step of a client security context (Kerberos, or SPNEGO with sspi's Negotiate): feeds the
/// node's last token (empty at first: sspi's Kerberos wants an input buffer from the first call
/// on), asks the realm's KDC whatever the step needs, and returns the status with the output
/// buffers (the token to send is the first).
async fn security_step<S: sspi::Sspi>(
    context: &mut S,
    credentials: &mut S::CredentialsHandle,
    target: &str,
    input: Vec<u8>,
    kdc_timeout: Duration,
    what: &str,
) -> Result<(SecurityStatus, Vec<SecurityBuffer>), Failure> {
    let flags = ClientRequestFlags::MUTUAL_AUTH
        | ClientRequestFlags::CONFIDENTIALITY
        | ClientRequestFlags::INTEGRITY
        | ClientRequestFlags::SEQUENCE_DETECT
        | ClientRequestFlags::REPLAY_DETECT;
    let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
    let mut input_buffers = vec![SecurityBuffer::new(input, BufferType::Token)];
    let status = {
        let mut builder = context
            .initialize_security_context()
            .with_credentials_handle(credentials)
            .with_context_requirements(flags)
            .with_target_data_representation(DataRepresentation::Native)
            .with_target_name(target)
            .with_output(&mut output)
            .with_input(&mut input_buffers);
        let mut generator = context
            .initialize_security_context_impl(&mut builder)
            .map_err(|e| sspi_failure(what, e))?;
        let mut state = generator.start();
        loop {
            match state {
                GeneratorState::Suspended(request) => {
                    let answer = kdc_exchange(&request, kdc_timeout).await;
                    state = generator.resume(answer);
                }
                GeneratorState::Completed(result) => {
                    break result.map_err(|e| kerberos_failure(target, e))?.status
                }
            }
        }
    };
    Ok((status, output))
}

fn kerberos_failure(target: &str, e: sspi::Error) -> Failure {
    use sspi::ErrorKind;
    // The KDC's verdicts on the user's password or account are a refusal, not a fault.
    let refused_by_kdc = e.error_type == ErrorKind::KdcInvalidRequest
        && ["PREAUTH_FAILED", "CLIENT_REVOKED", "KEY_EXPIRED"]
            .iter()
            .any(|code| e.description.contains(code));
    match e.error_type {
        ErrorKind::LogonDenied
        | ErrorKind::WrongCredentialHandle
        | ErrorKind::UnknownCredentials => {
            Failure::AuthRejected(format!("the KDC refused the credentials for {target}: {e}"))
        }
        _ if refused_by_kdc => {
            Failure::AuthRejected(format!("the KDC refused the credentials for {target}: {e}"))
        }
        ErrorKind::NoAuthenticatingAuthority => {
            Failure::Connect(format!("no KDC reachable for {target}: {e}"))
        }
        _ => Failure::Protocol(format!("Kerberos for {target}: {e}")),
    }
}

/// One KDC exchange for `sspi`'s Kerberos client: TCP only (the request is already framed
/// with its 4-byte length; the answer is returned with it).
async fn kdc_exchange(request: &NetworkRequest, timeout: Duration) -> sspi::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let kdc_error =
        |what: String| sspi::Error::new(sspi::ErrorKind::NoAuthenticatingAuthority, what);
    if request.protocol != NetworkProtocol::Tcp {
        return Err(kdc_error(format!(
            "KDC `{}`: only TCP is supported (write `kdc = host:port` in krb5.conf)",
            request.url
        )));
    }
    let host = request
        .url
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']']);
    let port = request.url.port().unwrap_or(88);
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect((host, port)).await?;
        stream.write_all(&request.data).await?;
        let len = stream.read_u32().await?;
        if len > 1 << 20 {
            return Err(std::io::Error::other("KDC answer larger than 1 MiB"));
        }
        let mut answer = vec![0u8; 4 + len as usize];
        answer[..4].copy_from_slice(&len.to_be_bytes());
        stream.read_exact(&mut answer[4..]).await?;
        Ok::<_, std::io::Error>(answer)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(kdc_error(format!("KDC {host}:{port}: {e}"))),
        Err(_) => Err(kdc_error(format!("KDC {host}:{port}: no answer in time"))),
    }
}

/// The mechanism SPNEGO settled on, for messages.
fn negotiated_name(negotiate: &Negotiate) -> &'static str {
    match negotiate.negotiated_protocol() {
        NegotiatedProtocol::Kerberos(_) => "Kerberos",
        NegotiatedProtocol::Ntlm(_) => "NTLM",
        _ => "SPNEGO",
    }
}
