//! Sockets and HTTP: one listener per host, hyper HTTP/1.1 connections, authentication,
//! protocol faults, and the availability of each host.
//!
//! A host that is `Down` refuses connections: its listening socket is CLOSED (clients get
//! "connection refused"), its open connections are dropped, and the socket is bound again on
//! the same port when the host is `Up`. The server learns availability three ways: a poller
//! that asks the backend for every host every `availability_poll`, a check at every accept (a
//! connection accepted in the window before the poller noticed is closed before anything is
//! read), and a check at every request (the connection is closed without an answer).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

use super::auth::{Authenticator, ConnAuth, Decision};
use super::handler::{Handler, HostRuntime, Outcome};
use super::seal;
use super::stats::bump;
use crate::backend::Availability;

/// State shared by every listener and connection.
pub struct Shared {
    /// The SOAP layer.
    pub handler: Handler,
    /// Credentials check.
    pub auth: Authenticator,
    /// HTTPS acceptor, when serving TLS.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Certificate authentication: the UPN of the one certificate mapping (to the lab account).
    pub certificate_upn: Option<String>,
    /// Plain HTTP without `AllowUnencrypted`: NTLM/Negotiate bodies must be sealed.
    pub require_encryption: bool,
    /// Largest accepted body.
    pub max_request_bytes: usize,
    /// Set to `true` at shutdown.
    pub shutdown: watch::Sender<bool>,
}

/// The service asks hyper to close the connection without answering.
#[derive(Debug)]
struct CloseConnection;

impl std::fmt::Display for CloseConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed by a lab fault or a host going down")
    }
}

impl std::error::Error for CloseConnection {}

/// Binds a listening socket on `addr` (port 0: OS-assigned), with `SO_REUSEADDR` so a host
/// coming back up gets its port again despite connections in `TIME_WAIT`.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Holds `addr` while its host is down: a bound socket that does not listen, so a connection
/// is refused (RST) as before, but no other process (another lab on the same machine, whose
/// OS-assigned ports come from the same pool) can take the port and answer in the host's
/// place. The listener binds again beside it (`SO_REUSEADDR`: neither listens meanwhile).
fn hold(addr: SocketAddr) -> std::io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

fn is_up(shared: &Shared, host: &HostRuntime) -> bool {
    let up = shared.handler.backend().availability(&host.info.name) == Availability::Up;
    host.up.send_if_modified(|current| {
        let changed = *current != up;
        *current = up;
        changed
    });
    up
}

/// Serves one host until shutdown: accepts while up, closes the socket while down.
pub async fn run_host(
    shared: Arc<Shared>,
    host: Arc<HostRuntime>,
    listener: TcpListener,
    addr: SocketAddr,
) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut up_rx = host.up.subscribe();
    let mut listener = Some(listener);
    let mut _held: Option<TcpSocket> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let up = *up_rx.borrow_and_update();
        if !up {
            if listener.take().is_some() {
                _held = hold(addr)
                    .map_err(|e| tracing::warn!(host = %host.info.name, %addr, error = %e, "cannot hold the port while down"))
                    .ok();
                tracing::debug!(host = %host.info.name, %addr, "host down: listener closed");
            }
            tokio::select! {
                _ = up_rx.changed() => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        let Some(active) = listener.as_ref() else {
            match bind(addr) {
                Ok(l) => {
                    tracing::debug!(host = %host.info.name, %addr, "host up: listener open");
                    listener = Some(l);
                    _held = None;
                }
                Err(e) => {
                    tracing::warn!(host = %host.info.name, %addr, error = %e, "cannot listen again; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            }
            continue;
        };
        tokio::select! {
            accepted = active.accept() => match accepted {
                Ok((stream, peer)) => {
                    if !is_up(&shared, &host) {
                        // Down since the last poll: close before reading anything.
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_connection(shared.clone(), host.clone(), stream, peer));
                }
                Err(e) => {
                    tracing::warn!(host = %host.info.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = up_rx.changed() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Polls every host's availability and updates the listeners.
pub async fn poll_availability(shared: Arc<Shared>, hosts: Vec<Arc<HostRuntime>>, every: Duration) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                for host in &hosts {
                    is_up(&shared, host);
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

async fn serve_connection(
    shared: Arc<Shared>,
    host: Arc<HostRuntime>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    match shared.tls.clone() {
        None => serve_io(shared, host, stream, peer, None).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
            match handshake.await {
                Ok(Ok(tls)) => {
                    // A client certificate (verified against the lab CA by the handshake).
                    let identity = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(|leaf| super::tls::client_identity(leaf));
                    serve_io(shared, host, tls, peer, identity).await
                }
                Ok(Err(e)) => {
                    tracing::debug!(host = %host.info.name, error = %e, "TLS handshake failed")
                }
                Err(_) => tracing::debug!(host = %host.info.name, "TLS handshake timed out"),
            }
        }
    }
}

/// What a connection's client certificate says, for certificate authentication.
#[derive(Debug, Default)]
struct ClientCertificate {
    /// The UPN (or subject CN) of the certificate the client presented in the TLS handshake.
    identity: Option<String>,
    /// Whether a request of this connection logged on with it (counted once).
    logged_on: std::sync::atomic::AtomicBool,
}

/// The `Authorization` value of WinRM certificate authentication (pywinrm and Windows send it on
/// every request of an HTTPS connection that presented a client certificate).
const CERTIFICATE_PROFILE: &str =
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual";

async fn serve_io<IO>(
    shared: Arc<Shared>,
    host: Arc<HostRuntime>,
    io: IO,
    peer: SocketAddr,
    client_identity: Option<String>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn_auth = Arc::new(Mutex::new(ConnAuth::Fresh));
    let certificate = Arc::new(ClientCertificate {
        identity: client_identity,
        ..ClientCertificate::default()
    });
    let client_ip: Arc<str> = peer.ip().to_string().into();
    let service_shared = shared.clone();
    let service_host = host.clone();
    let service = hyper::service::service_fn(move |req| {
        let shared = service_shared.clone();
        let host = service_host.clone();
        let conn_auth = conn_auth.clone();
        let client_ip = client_ip.clone();
        let certificate = certificate.clone();
        async move { serve_request(&shared, &host, &conn_auth, &certificate, &client_ip, req).await }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut up_rx = host.up.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::trace!(host = %host.info.name, error = %e, "connection ended");
            }
        }
        _ = up_rx.wait_for(|up| !*up) => {
            tracing::debug!(host = %host.info.name, "host down: connection dropped");
        }
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
}

fn plain(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

fn unauthorized(shared: &Shared, challenge: Option<String>) -> Response<Full<Bytes>> {
    let mut response = plain(StatusCode::UNAUTHORIZED);
    let headers = response.headers_mut();
    match challenge {
        Some(token) => {
            if let Ok(value) = HeaderValue::from_str(&token) {
                headers.append(WWW_AUTHENTICATE, value);
            }
        }
        None => {
            for offer in shared.auth.offers() {
                headers.append(WWW_AUTHENTICATE, HeaderValue::from_static(offer));
            }
        }
    }
    response
}

async fn serve_request(
    shared: &Shared,
    host: &HostRuntime,
    conn_auth: &Mutex<ConnAuth>,
    certificate: &ClientCertificate,
    client_ip: &str,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, CloseConnection> {
    let name = host.info.name.as_str();
    if !is_up(shared, host) {
        return Err(CloseConnection);
    }
    let counters = shared.handler.counters();
    bump(&counters.http_requests);
    let faults = shared.handler.backend().protocol_faults(name);
    if let Some(delay) = faults.delay {
        tokio::time::sleep(delay).await;
    }
    let authorization = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let encrypted = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(seal::is_encrypted);
    let method = req.method().clone();
    let path_ok = req.uri().path().eq_ignore_ascii_case("/wsman");
    let body = match Limited::new(req.into_body(), shared.max_request_bytes)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE)),
    };
    let decision = authenticate(
        shared,
        name,
        conn_auth,
        certificate,
        authorization.as_deref(),
    );
    let final_token = match decision {
        Decision::Allow(token) => token,
        Decision::Challenge(token) => {
            bump(&counters.challenges);
            return Ok(unauthorized(shared, Some(token)));
        }
        Decision::Reject => {
            bump(&counters.rejections);
            return Ok(unauthorized(shared, None));
        }
    };
    if method != Method::POST {
        return Ok(plain(StatusCode::METHOD_NOT_ALLOWED));
    }
    if !path_ok {
        return Ok(plain(StatusCode::NOT_FOUND));
    }
    let mut protocol = seal::SPNEGO_PROTOCOL;
    let body = match open_body(
        shared,
        name,
        conn_auth,
        encrypted,
        body,
        &final_token,
        &mut protocol,
    ) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    if faults.http_500 {
        return Ok(plain(StatusCode::INTERNAL_SERVER_ERROR));
    }
    // The double hop: Basic, NTLM and Negotiate-NTLM leave the session no credentials to pass
    // on to a second server; a Kerberos session would with a forwarded ticket (the connection
    // says which).
    let delegable = conn_auth.lock().unwrap().delegable_credentials();
    match shared
        .handler
        .handle(host, &body, client_ip, &faults, delegable)
        .await
    {
        Outcome::DropConnection => Err(CloseConnection),
        Outcome::Reply { status, body } => {
            reply(conn_auth, encrypted, protocol, status, body, final_token)
        }
    }
}

/// Whom the request authenticates as: a mapped client certificate, or the connection's
/// Basic/NTLM/Negotiate exchange (counting each new logon by its mechanism).
fn authenticate(
    shared: &Shared,
    name: &str,
    conn_auth: &Mutex<ConnAuth>,
    certificate: &ClientCertificate,
    authorization: Option<&str>,
) -> Decision {
    let counters = shared.handler.counters();
    let certificate_profile =
        authorization.is_some_and(|a| a.trim().eq_ignore_ascii_case(CERTIFICATE_PROFILE));
    if certificate_profile {
        // Certificate mapping: only over HTTPS with certificate authentication on, and only a
        // certificate that names the mapped UPN (the handshake checked it was the lab CA's).
        let mapped = match (&shared.certificate_upn, &certificate.identity) {
            (Some(upn), Some(identity)) => identity.eq_ignore_ascii_case(upn),
            _ => false,
        };
        if mapped {
            if !certificate
                .logged_on
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                bump(&counters.certificate_logons);
            }
            Decision::Allow(None)
        } else {
            tracing::debug!(host = %name, identity = ?certificate.identity, "certificate authentication refused");
            Decision::Reject
        }
    } else {
        let mut state = conn_auth.lock().unwrap();
        let was_authenticated = matches!(*state, ConnAuth::Authenticated { .. });
        let decision = shared.auth.decide(authorization, &mut state, name);
        if !was_authenticated && matches!(*state, ConnAuth::Authenticated { .. }) {
            // A new logon of this connection: which mechanism (tests and benchmarks ask).
            bump(if state.is_kerberos() {
                &counters.kerberos_logons
            } else {
                &counters.ntlm_logons
            });
        }
        if authorization.is_some() && matches!(decision, Decision::Allow(_)) {
            // What the double hop will ask: could a process of this logon reach a share?
            tracing::debug!(
                host = %name,
                delegable_credentials = state.delegable_credentials(),
                "connection authenticated"
            );
        }
        decision
    }
}

/// Message encryption (MS-WSMV 2.2.9.1): a sealed body is unsealed with the connection's
/// NTLM or Kerberos session (`protocol` becomes the request's, which answers go back in); a
/// plain body is refused on a listener that requires encryption, except the empty POST clients
/// send to authenticate before sealing anything. `Err`: the answer to send instead.
#[allow(clippy::result_large_err)]
fn open_body(
    shared: &Shared,
    name: &str,
    conn_auth: &Mutex<ConnAuth>,
    encrypted: bool,
    body: Bytes,
    final_token: &Option<String>,
    protocol: &mut &'static str,
) -> Result<Bytes, Response<Full<Bytes>>> {
    let counters = shared.handler.counters();
    if encrypted {
        let mut state = conn_auth.lock().unwrap();
        let unsealed = match state.security() {
            None => Err(seal::SealError::NotSealed),
            Some(security) => seal::parse(&body).and_then(|parsed| {
                *protocol = parsed.protocol;
                security.unseal(parsed.header, parsed.payload, parsed.length)
            }),
        };
        match unsealed {
            Ok(plain_body) => Ok(Bytes::from(plain_body)),
            Err(e) => {
                tracing::debug!(host = %name, error = %e, "encrypted body refused");
                *state = ConnAuth::Fresh;
                Err(plain(StatusCode::BAD_REQUEST))
            }
        }
    } else if body.is_empty() {
        let mut response = plain(StatusCode::OK);
        if let Some(token) = final_token
            .as_deref()
            .and_then(|t| HeaderValue::from_str(t).ok())
        {
            response.headers_mut().insert(WWW_AUTHENTICATE, token);
        }
        Err(response)
    } else {
        if shared.require_encryption {
            // (Basic never gets here: it is refused outright on such a listener.)
            tracing::debug!(host = %name, "unencrypted body refused (AllowUnencrypted=false)");
            bump(&counters.rejections);
            *conn_auth.lock().unwrap() = ConnAuth::Fresh;
            return Err(unauthorized(shared, None));
        }
        Ok(body)
    }
}

/// The SOAP answer as an HTTP response: sealed with the connection's session when the request
/// was (in its protocol), with the final SPNEGO token if any.
fn reply(
    conn_auth: &Mutex<ConnAuth>,
    encrypted: bool,
    protocol: &str,
    status: u16,
    body: String,
    final_token: Option<String>,
) -> Result<Response<Full<Bytes>>, CloseConnection> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = if encrypted {
        let mut state = conn_auth.lock().unwrap();
        let Some(security) = state.security() else {
            return Err(CloseConnection);
        };
        let Ok((sig, sealed)) = security.seal(body.as_bytes()) else {
            return Err(CloseConnection);
        };
        let mut response = Response::new(Full::new(Bytes::from(seal::frame(
            protocol,
            &sig,
            &sealed,
            body.len(),
        ))));
        if let Ok(value) = HeaderValue::from_str(&seal::content_type(protocol)) {
            response.headers_mut().insert(CONTENT_TYPE, value);
        }
        response
    } else {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/soap+xml;charset=UTF-8"),
        );
        response
    };
    *response.status_mut() = status;
    if let Some(token) = final_token.and_then(|t| HeaderValue::from_str(&t).ok()) {
        response.headers_mut().insert(WWW_AUTHENTICATE, token);
    }
    Ok(response)
}
