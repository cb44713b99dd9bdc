//! A throwaway PKI for TLS tests, generated with `rcgen` at each run: a CA, a server
//! certificate for `localhost` and `127.0.0.1`, a client certificate from the same CA, and a
//! client certificate from another CA (which an mTLS server must refuse); plus the client-side
//! rustls configurations that use them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct Pair {
    /// The certificate.
    pub cert: String,
    /// The private key (PKCS#8).
    pub key: String,
}

/// Everything a TLS test needs, PEM, with the files written to a temporary folder.
pub struct Pki {
    /// The CA that signs the server and the trusted client.
    pub ca: String,
    /// The server's certificate and key.
    pub server: Pair,
    /// A client certificate from `ca`.
    pub client: Pair,
    /// A client certificate from another CA.
    pub stranger: Pair,
    dir: tempfile::TempDir,
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert.pem(), Issuer::new(params, key))
}

fn leaf(names: &[&str], usage: ExtendedKeyUsagePurpose, issuer: &Issuer<'static, KeyPair>) -> Pair {
    let key = KeyPair::generate().expect("key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "otelspool test");
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).expect("certificate");
    Pair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

impl Pki {
    /// A new PKI, its files written to a fresh temporary folder.
    pub fn new() -> Pki {
        let (ca_pem, issuer) = ca("otelspool test CA");
        let (_, other) = ca("some other CA");
        let server = leaf(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
            &issuer,
        );
        let client = leaf(&["client"], ExtendedKeyUsagePurpose::ClientAuth, &issuer);
        let stranger = leaf(&["client"], ExtendedKeyUsagePurpose::ClientAuth, &other);
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in [
            ("ca.pem", &ca_pem),
            ("server.pem", &server.cert),
            ("server-key.pem", &server.key),
        ] {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        Pki {
            ca: ca_pem,
            server,
            client,
            stranger,
            dir,
        }
    }

    /// A file of the PKI's folder: `ca.pem`, `server.pem`, `server-key.pem`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A rustls client trusting the CA, offering `alpn`, presenting `identity` if given.
    pub fn client_config(
        &self,
        identity: Option<&Pair>,
        alpn: &[&[u8]],
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(self.ca.as_bytes()) {
            roots.add(c.expect("CA PEM")).expect("CA");
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
        let mut config = match identity {
            None => builder.with_no_client_auth(),
            Some(p) => {
                let chain = CertificateDer::pem_slice_iter(p.cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("client cert");
                let key = PrivateKeyDer::from_pem_slice(p.key.as_bytes()).expect("client key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client auth")
            }
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A tonic TLS config trusting the CA for `localhost`, presenting `identity` if given.
    pub fn grpc_tls(&self, identity: Option<&Pair>) -> tonic::transport::ClientTlsConfig {
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&self.ca))
            .domain_name("localhost");
        match identity {
            None => tls,
            Some(p) => tls.identity(tonic::transport::Identity::from_pem(&p.cert, &p.key)),
        }
    }
}
