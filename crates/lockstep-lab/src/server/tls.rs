//! The lab's certificate authority, the host certificate it signs, and the rustls server
//! configuration.
//!
//! Like an enterprise PKI: a CA certificate (what clients are told to trust, written beside the
//! endpoints by `lockstep lab --https`) signs the listener's certificate. A client that verifies
//! certificates trusts the lab by adding the CA, never by turning verification off.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
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
    /// The lab CA, to issue client certificates.
    pub ca: Arc<LabCa>,
}

/// The lab CA's certificate and key.
pub struct LabCa {
    cert: Certificate,
    key: KeyPair,
}

/// The DER OID of a UPN in a subject alternative name (szOID_NT_PRINCIPAL_NAME).
const UPN_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 20, 2, 3];

impl std::fmt::Debug for LabCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never shows.
        f.write_str("LabCa(***)")
    }
}

impl LabCa {
    /// A client certificate (PEM certificate, PEM PKCS#8 key) for `upn`, as an enterprise CA
    /// issues one for WinRM certificate authentication: subject CN and the UPN as a subject
    /// alternative name, extended key usage client authentication.
    pub fn issue_client(&self, upn: &str) -> Result<(String, String), ServerError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
        params.distinguished_name.push(DnType::CommonName, upn);
        params.subject_alt_names = vec![SanType::OtherName((
            UPN_OID.to_vec(),
            upn.to_owned().into(),
        ))];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(tls_error)?;
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(tls_error)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

fn tls_error(e: impl std::fmt::Display) -> ServerError {
    ServerError::Tls(e.to_string())
}

/// Generates a CA and a certificate it signs for `options.subject_alt_names`, and a server
/// configuration presenting the chain (TLS 1.2 and 1.3, ring provider). With certificate
/// authentication on, the server asks for a client certificate the lab CA issued (a client
/// may still send none and log on otherwise).
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
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?;
    let builder = if options.client_certificate_upn.is_some() {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_cert.der().clone()).map_err(tls_error)?;
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(tls_error)?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(chain, key_der)
        .map_err(tls_error)?;
    Ok(Generated {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        cert_pem: ca_cert.pem(),
        ca: Arc::new(LabCa {
            cert: ca_cert,
            key: ca_key,
        }),
    })
}

/// The identity a client certificate (DER) names for certificate mapping: the UPN of its
/// subject alternative names, else its subject's common name.
pub fn client_identity(der: &[u8]) -> Option<String> {
    use super::spnego::tlv;
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version, serial, signature,
    // issuer, validity, subject, subjectPublicKeyInfo, ..., [3] extensions } ... }
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let mut fields = Vec::new();
    let mut rest = tbs;
    while !rest.is_empty() {
        let (tag, value, next) = tlv(rest)?;
        fields.push((tag, value));
        rest = next;
    }
    let offset = usize::from(fields.first()?.0 == 0xa0);
    let subject = fields.get(offset + 4)?.1;
    let extensions = fields.iter().find(|(tag, _)| *tag == 0xa3).map(|f| f.1);
    extensions
        .and_then(upn_of_extensions)
        .or_else(|| common_name(subject))
}

/// DER of OID 2.5.29.17 (subjectAltName).
const SAN_OID_DER: &[u8] = &[0x55, 0x1d, 0x11];
/// DER of OID 1.3.6.1.4.1.311.20.2.3 (UPN).
const UPN_OID_DER: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x14, 0x02, 0x03];
/// DER of OID 2.5.4.3 (commonName).
const CN_OID_DER: &[u8] = &[0x55, 0x04, 0x03];

fn upn_of_extensions(explicit: &[u8]) -> Option<String> {
    use super::spnego::tlv;
    let (_, list, _) = tlv(explicit)?;
    let mut rest = list;
    while !rest.is_empty() {
        let (_, extension, next) = tlv(rest)?;
        rest = next;
        let (_, oid, mut value) = tlv(extension)?;
        if oid != SAN_OID_DER {
            continue;
        }
        // Optional `critical` BOOLEAN, then the OCTET STRING holding GeneralNames.
        let (mut tag, mut octets, after) = tlv(value)?;
        if tag == 0x01 {
            value = after;
            (tag, octets, _) = tlv(value)?;
        }
        if tag != 0x04 {
            return None;
        }
        let (_, names, _) = tlv(octets)?;
        let mut names = names;
        while !names.is_empty() {
            let (tag, name, next) = tlv(names)?;
            names = next;
            // otherName [0] IMPLICIT SEQUENCE { type-id OID, value [0] EXPLICIT ANY }
            if tag != 0xa0 {
                continue;
            }
            let (_, type_id, value) = tlv(name)?;
            if type_id != UPN_OID_DER {
                continue;
            }
            let (_, explicit, _) = tlv(value)?;
            let (_, text, _) = tlv(explicit)?;
            return String::from_utf8(text.to_vec()).ok();
        }
    }
    None
}

fn common_name(name: &[u8]) -> Option<String> {
    use super::spnego::tlv;
    // Name ::= SEQUENCE OF SET OF SEQUENCE { type OID, value ANY }
    let mut sets = name;
    let mut found = None;
    while !sets.is_empty() {
        let (_, set, next) = tlv(sets)?;
        sets = next;
        let (_, attribute, _) = tlv(set)?;
        let (_, oid, value) = tlv(attribute)?;
        if oid == CN_OID_DER {
            let (_, text, _) = tlv(value)?;
            found = String::from_utf8(text.to_vec()).ok();
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_certificate_names_its_upn() {
        let generated = generate(&TlsOptions {
            client_certificate_upn: Some("labadmin@lab.test".into()),
            ..TlsOptions::default()
        })
        .unwrap();
        let (pem, _key) = generated.ca.issue_client("labadmin@lab.test").unwrap();
        use rustls::pki_types::pem::PemObject as _;
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(client_identity(&der).as_deref(), Some("labadmin@lab.test"));
        // Without a UPN: the subject's CN.
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "someone");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(client_identity(cert.der()).as_deref(), Some("someone"));
    }
}
