//! TLS plumbing shared by the OTLP exporters: the process-wide rustls crypto provider (ring),
//! reading `tls.ca_file`, and the certificate verifier behind `tls.insecure_skip_verify`.

use std::path::Path;
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::settings::BuildError;

/// Installs rustls' ring provider as the process default, once. Safe to call any number of
/// times and from any thread; a provider installed earlier (by anyone) is kept.
pub fn ensure_crypto_provider() {
    if CryptoProvider::get_default().is_none() {
        // Err means another thread installed one in between: that one is kept, which is fine.
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Reads a PEM CA bundle, for `tls.ca_file`.
pub(crate) fn read_ca_file(path: &Path) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(|source| BuildError::ReadCaFile {
        path: path.to_owned(),
        source,
    })
}

/// A verifier that accepts any server certificate (but still checks handshake signatures so
/// the session is well-formed). Only for `tls.insecure_skip_verify: true`.
#[derive(Debug)]
pub(crate) struct AcceptAnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AcceptAnyServerCert {
    /// A verifier using the signature algorithms of the installed (or ring) provider.
    pub(crate) fn new() -> Arc<Self> {
        ensure_crypto_provider();
        let algorithms = CryptoProvider::get_default()
            .map(|p| p.signature_verification_algorithms)
            .unwrap_or_else(|| {
                rustls::crypto::ring::default_provider().signature_verification_algorithms
            });
        Arc::new(Self { algorithms })
    }
}

impl ServerCertVerifier for AcceptAnyServerCert {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_install_is_idempotent() {
        ensure_crypto_provider();
        ensure_crypto_provider();
        assert!(CryptoProvider::get_default().is_some());
        assert!(
            !AcceptAnyServerCert::new()
                .supported_verify_schemes()
                .is_empty()
        );
    }

    #[test]
    fn missing_ca_file_is_a_build_error() {
        let err = read_ca_file(Path::new("/nonexistent/otelspool-ca.pem"));
        assert!(matches!(err, Err(BuildError::ReadCaFile { .. })));
    }
}
