//! The generated self-signed certificate and the rustls server configuration.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::config::TlsOptions;
use super::ServerError;

/// A TLS acceptor and the certificate it presents, in PEM.
pub struct Generated {
    /// Acceptor for tokio streams.
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// The certificate, PEM-encoded, for clients to trust.
    pub cert_pem: String,
}

/// Generates a self-signed certificate for `options.subject_alt_names` and a server
/// configuration presenting it (TLS 1.2 and 1.3, ring provider, no client certificates).
pub fn generate(options: &TlsOptions) -> Result<Generated, ServerError> {
    let certified = rcgen::generate_simple_self_signed(options.subject_alt_names.clone())
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let cert_pem = certified.cert.pem();
    let cert_der: CertificateDer<'static> = certified.cert.der().clone();
    let key_der =
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key_der)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    Ok(Generated {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        cert_pem,
    })
}
