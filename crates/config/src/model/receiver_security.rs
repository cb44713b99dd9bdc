//! What a receiver protocol (`grpc:` or `http:`) takes to be reachable from outside loopback:
//! `tls` (server certificate, and client certificates for mTLS) and `auth` (an authenticator
//! extension), with otelcol's keys.

use std::path::PathBuf;

use serde::Deserialize;

use super::ComponentId;

/// `receivers.otlp.protocols.<grpc|http>.tls`: serve TLS instead of plaintext.
///
/// otelcol's other server TLS keys (`cert_pem`, `min_version`, `reload_interval`, ...) are
/// unknown keys: errors, never ignored.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    /// PEM file with the server's certificate chain, leaf first. Required.
    #[serde(default)]
    pub cert_file: PathBuf,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1). Required.
    #[serde(default)]
    pub key_file: PathBuf,
    /// PEM file with the CAs that sign client certificates. When set, every client must
    /// present a certificate they signed (mTLS); without it, none is asked for.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

/// `receivers.otlp.protocols.<grpc|http>.auth`: who may send.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerAuthConfig {
    /// The authenticator extension (`bearertokenauth` or `bearertokenauth/name`); it must be
    /// defined in `extensions` and listed in `service.extensions`.
    pub authenticator: ComponentId,
}
