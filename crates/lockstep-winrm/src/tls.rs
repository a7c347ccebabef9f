//! TLS client configurations: the system trust store plus an optional CA file
//! (`ansible_winrm_ca_trust_path`), or no verification at all for a rehearsal
//! (`ansible_winrm_server_cert_validation: ignore`). Built once per distinct setting, not per
//! node: loading the system store costs tens of milliseconds and megabytes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::target::NodeTarget;

/// TLS configurations built so far, by (verify, CA file).
#[derive(Default)]
pub struct Configs {
    built: HashMap<(bool, Option<PathBuf>), Arc<rustls::ClientConfig>>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Configs {
    /// The configuration for `target` (an error names the CA file or the store problem).
    pub fn get(&mut self, target: &NodeTarget) -> Result<Arc<rustls::ClientConfig>, String> {
        let key = (target.verify_tls, target.ca_trust_path.clone());
        if let Some(config) = self.built.get(&key) {
            return Ok(config.clone());
        }
        let config = Arc::new(if target.verify_tls {
            verified(target.ca_trust_path.as_deref())?
        } else {
            unverified()?
        });
        self.built.insert(key, config.clone());
        Ok(config)
    }
}

fn builder() -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, String> {
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
}

/// The system trust store, plus every certificate of `ca_file` (PEM).
fn verified(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read the CA file `{}`: {e}", path.display()))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("CA file `{}`: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("CA file `{}`: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "the CA file `{}` holds no PEM certificate",
                path.display()
            ));
        }
    }
    if roots.is_empty() {
        return Err(
            "no trusted certificate: the system trust store is empty and no CA file is given \
             (`ansible_winrm_ca_trust_path`)"
                .to_owned(),
        );
    }
    Ok(builder()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Accepts any certificate (signatures of the handshake are still checked).
fn unverified() -> Result<rustls::ClientConfig, String> {
    Ok(builder()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoCertificateCheck(provider())))
        .with_no_client_auth())
}

#[derive(Debug)]
struct NoCertificateCheck(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
