//! Server-side TLS for the receivers (`tls.cert_file`, `tls.key_file`, `tls.client_ca_file`),
//! with rustls and the ring provider; the client side is `exporters::tls`.
//!
//! - The files are read once at start-up ([`ServerTls::load`]); a missing or malformed file
//!   fails start-up naming the key and the path. No error shows a file's contents: PEM errors
//!   are reduced to their kind, since some quote the offending line.
//! - With `client_ca_file`, every client must present a certificate signed by one of its CAs
//!   (mTLS); a client without one fails the handshake.
//! - Each handshake has a deadline ([`TLS_HANDSHAKE_TIMEOUT`]): a client that opens TCP and
//!   never completes the handshake is cut, as the header read timeout cuts a silent plaintext
//!   client. Handshakes run on the connection's own task, never in the accept loop.
//! - A failed handshake (a plaintext client on a TLS port, an unknown client certificate) is
//!   logged rate-limited and the connection closed; the server keeps serving.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::telemetry::{REPEAT_LOG_INTERVAL, RateLimitedLog};

/// Time a client has to complete the TLS handshake after connecting.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the TLS settings could not be loaded. Never carries a file's contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read tls.{key} {path:?}: {source}")]
    Read {
        /// The config key (`cert_file`, `key_file`, `client_ca_file`).
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the kind its key needs, or malformed PEM.
    #[error("tls.{key} {path:?} holds no valid PEM {what}")]
    Pem {
        /// The config key.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What was looked for (`certificate`, `private key`).
        what: &'static str,
    },
    /// The client CA file's certificates cannot verify clients.
    #[error("tls.client_ca_file {path:?} cannot be used to verify clients: {reason}")]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// What rustls found wrong (no contents).
        reason: String,
    },
    /// The certificate and key do not make a TLS server identity (they do not match, or the
    /// key type is not supported).
    #[error("tls.cert_file and tls.key_file cannot be used together: {0}")]
    Identity(#[source] rustls::Error),
}

/// Why a connection did not become a TLS session.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The client did not finish the handshake in time.
    #[error("the TLS handshake did not complete within {0:?}")]
    TimedOut(Duration),
    /// The handshake failed (plaintext on a TLS port, a client certificate not accepted).
    #[error("the TLS handshake failed: {0}")]
    Failed(#[source] std::io::Error),
}

/// A loaded TLS server configuration, cheap to clone.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    mtls: bool,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("mtls", &self.mtls)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_owned(),
        source,
    })
}

fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, path)?;
    let bad = || TlsError::Pem {
        key,
        path: path.to_owned(),
        what: "certificate",
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad())?;
    if certs.is_empty() {
        return Err(bad());
    }
    Ok(certs)
}

impl ServerTls {
    /// Reads the files and builds the server configuration; `alpn` lists the protocols offered
    /// (`h2` for gRPC; `h2` and `http/1.1` for HTTP). Blocking file reads: call it from
    /// start-up code or `spawn_blocking`, not from a serving task.
    pub fn load(
        cert_file: &Path,
        key_file: &Path,
        client_ca_file: Option<&Path>,
        alpn: &[&[u8]],
    ) -> Result<ServerTls, TlsError> {
        let chain = certificates("cert_file", cert_file)?;
        let key_pem = read("key_file", key_file)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::Pem {
            key: "key_file",
            path: key_file.to_owned(),
            what: "private key",
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Identity)?;
        let builder = match client_ca_file {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for ca in certificates("client_ca_file", path)? {
                    roots.add(ca).map_err(|e| TlsError::ClientCa {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| TlsError::ClientCa {
                            path: path.to_owned(),
                            reason: e.to_string(),
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(TlsError::Identity)?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            handshake_timeout: TLS_HANDSHAKE_TIMEOUT,
            mtls: client_ca_file.is_some(),
        })
    }

    /// The same configuration with another handshake deadline (tests use a short one).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// True when clients must present a certificate.
    pub fn requires_client_certificates(&self) -> bool {
        self.mtls
    }

    /// Runs the handshake on `tcp` within the deadline. A failure is logged (rate-limited,
    /// per `port`) and returned; the caller drops the connection.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        port: &'static str,
    ) -> Result<Stream, HandshakeError> {
        let result =
            match tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => return Ok(Stream::Tls(Box::new(tls))),
                Ok(Err(e)) => HandshakeError::Failed(e),
                Err(_) => HandshakeError::TimedOut(self.handshake_timeout),
            };
        let reason = match result {
            HandshakeError::TimedOut(_) => "timeout",
            HandshakeError::Failed(_) => "failed",
        };
        if let Some(not_logged) = HANDSHAKE_FAILURES.event((port, reason)) {
            tracing::warn!(port, error = %result, not_logged, "closed a connection whose TLS handshake did not succeed");
        }
        Err(result)
    }
}

/// Failed handshakes are logged once per minute per port and kind, with the count not logged.
static HANDSHAKE_FAILURES: LazyLock<RateLimitedLog<(&'static str, &'static str)>> =
    LazyLock::new(|| RateLimitedLog::new(REPEAT_LOG_INTERVAL));

/// An accepted connection: plaintext, or TLS after a completed handshake.
#[derive(Debug)]
pub enum Stream {
    /// Plaintext TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
