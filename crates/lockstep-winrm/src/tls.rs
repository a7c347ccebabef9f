//! TLS client configurations: the system trust store plus an optional CA file
//! (`ansible_winrm_ca_trust_path`), or no verification at all for a rehearsal
//! (`ansible_winrm_server_cert_validation: ignore`). Built once per distinct setting, not per
//! node: loading the system store costs tens of milliseconds and megabytes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::target::{ClientCertificate, NodeTarget};

type Key = (bool, Option<PathBuf>, Option<ClientCertificate>);

/// TLS configurations built so far, by (verify, CA file, client certificate).
#[derive(Default)]
pub struct Configs {
    built: HashMap<Key, Arc<rustls::ClientConfig>>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Configs {
    /// The configuration for `target` (an error names the CA file or the store problem).
    pub fn get(&mut self, target: &NodeTarget) -> Result<Arc<rustls::ClientConfig>, String> {
        let key = (
            target.verify_tls,
            target.ca_trust_path.clone(),
            target.client_certificate.clone(),
        );
        if let Some(config) = self.built.get(&key) {
            return Ok(config.clone());
        }
        let client = target
            .client_certificate
            .as_ref()
            .map(load_client_certificate)
            .transpose()?;
        let config = Arc::new(if target.verify_tls {
            verified(target.ca_trust_path.as_deref(), client)?
        } else {
            unverified(client)?
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

/// A client certificate chain and its key, read from their PEM files. An error names the file,
/// never what is in it.
fn load_client_certificate(
    files: &ClientCertificate,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let cert_file = files.cert_pem.display();
    let pem = std::fs::read(&files.cert_pem)
        .map_err(|e| format!("cannot read the client certificate `{cert_file}`: {e}"))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| format!("the client certificate `{cert_file}` is not PEM"))?;
    if chain.is_empty() {
        return Err(format!(
            "the client certificate `{cert_file}` holds no PEM certificate"
        ));
    }
    let key_file = files.key_pem.display();
    let pem = std::fs::read(&files.key_pem)
        .map_err(|e| format!("cannot read the client certificate key `{key_file}`: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|_| format!("the client certificate key `{key_file}` holds no PEM private key"))?;
    Ok((chain, key))
}

type ClientAuth = Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>;

fn finish(
    builder: rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>,
    client: ClientAuth,
) -> Result<rustls::ClientConfig, String> {
    match client {
        None => Ok(builder.with_no_client_auth()),
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("the client certificate does not match its key: {e}")),
    }
}

/// The system trust store, plus every certificate of `ca_file` (PEM).
fn verified(
    ca_file: Option<&std::path::Path>,
    client: ClientAuth,
) -> Result<rustls::ClientConfig, String> {
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
    finish(builder()?.with_root_certificates(roots), client)
}

/// Accepts any certificate (signatures of the handshake are still checked).
fn unverified(client: ClientAuth) -> Result<rustls::ClientConfig, String> {
    finish(
        builder()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertificateCheck(provider()))),
        client,
    )
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
