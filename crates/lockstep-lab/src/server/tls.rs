//! The lab's certificate authority, the host certificate it signs, and the rustls server
//! configuration.
//!
//! Like an enterprise PKI: a CA certificate (what clients are told to trust, written beside the
//! endpoints by `lockstep lab --https`) signs the listener's certificate. A client that verifies
//! certificates trusts the lab by adding the CA, never by turning verification off.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::config::TlsOptions;
use super::ServerError;

/// A TLS acceptor and the CA certificate clients should trust, in PEM.
pub struct Generated {
    /// Acceptor for tokio streams.
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// The lab CA's certificate, PEM-encoded, for clients to trust.
    pub cert_pem: String,
}

fn tls_error(e: impl std::fmt::Display) -> ServerError {
    ServerError::Tls(e.to_string())
}

/// Generates a CA and a certificate it signs for `options.subject_alt_names`, and a server
/// configuration presenting the chain (TLS 1.2 and 1.3, ring provider, no client certificates).
pub fn generate(options: &TlsOptions) -> Result<Generated, ServerError> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Lockstep lab CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(tls_error)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(tls_error)?;

    let mut leaf_params =
        CertificateParams::new(options.subject_alt_names.clone()).map_err(tls_error)?;
    let cn = options
        .subject_alt_names
        .first()
        .cloned()
        .unwrap_or_else(|| "localhost".to_owned());
    leaf_params.distinguished_name.push(DnType::CommonName, cn);
    leaf_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate().map_err(tls_error)?;
    let leaf_cert = leaf_params
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .map_err(tls_error)?;

    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(tls_error)?;
    Ok(Generated {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        cert_pem: ca_cert.pem(),
    })
}
