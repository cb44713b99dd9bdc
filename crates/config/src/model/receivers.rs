//! Receiver configs: the OTLP receiver (gRPC and HTTP servers).
//!
//! As in otelcol, `protocols: {grpc: , http: }` with empty values enables a protocol with its
//! defaults; an absent protocol is disabled. `include_metadata` and `cors` are accepted and
//! ignored with a warning (see `decode/rules.rs`); every other otelcol key we do not implement
//! is an error. `tls` and `auth` are in `receiver_security.rs`.

use serde::Deserialize;

use super::null_as_default;
use super::receiver_security::{ServerAuthConfig, TlsServerConfig};

/// A configured receiver, by component type.
#[derive(Debug, Clone, PartialEq)]
pub enum ReceiverConfig {
    /// `otlp`: OTLP over gRPC and/or HTTP.
    Otlp(OtlpReceiverConfig),
}

/// `receivers.otlp`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpReceiverConfig {
    /// Enabled protocols; at least one is required.
    #[serde(default)]
    pub protocols: OtlpProtocols,
}

/// `receivers.otlp.protocols`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpProtocols {
    /// OTLP/gRPC server; `None` when absent (disabled).
    #[serde(default, deserialize_with = "null_as_default")]
    pub grpc: Option<GrpcServerConfig>,
    /// OTLP/HTTP server; `None` when absent (disabled).
    #[serde(default, deserialize_with = "null_as_default")]
    pub http: Option<HttpServerConfig>,
}

/// `receivers.otlp.protocols.grpc`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcServerConfig {
    /// Listen address, `host:port` (empty host = all interfaces).
    #[serde(default = "default_grpc_endpoint")]
    pub endpoint: String,
    /// Largest accepted request message, in MiB.
    #[serde(default = "default_max_recv_msg_size_mib")]
    pub max_recv_msg_size_mib: u64,
    /// Serve TLS (`None`: plaintext). `tls:` with no value is TLS without a certificate: an
    /// error.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tls: Option<TlsServerConfig>,
    /// Require an authenticator's approval for every request.
    #[serde(default)]
    pub auth: Option<ServerAuthConfig>,
}

impl Default for GrpcServerConfig {
    fn default() -> Self {
        GrpcServerConfig {
            endpoint: default_grpc_endpoint(),
            max_recv_msg_size_mib: default_max_recv_msg_size_mib(),
            tls: None,
            auth: None,
        }
    }
}

/// `receivers.otlp.protocols.http`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServerConfig {
    /// Listen address, `host:port` (empty host = all interfaces).
    #[serde(default = "default_http_endpoint")]
    pub endpoint: String,
    /// Largest accepted request body, in bytes.
    #[serde(default = "default_max_request_body_size")]
    pub max_request_body_size: u64,
    /// Serve TLS (`None`: plaintext). `tls:` with no value is TLS without a certificate: an
    /// error.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tls: Option<TlsServerConfig>,
    /// Require an authenticator's approval for every request.
    #[serde(default)]
    pub auth: Option<ServerAuthConfig>,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        HttpServerConfig {
            endpoint: default_http_endpoint(),
            max_request_body_size: default_max_request_body_size(),
            tls: None,
            auth: None,
        }
    }
}

/// otelcol's default gRPC endpoint.
pub fn default_grpc_endpoint() -> String {
    "localhost:4317".to_string()
}

/// otelcol's default gRPC message limit: 4 MiB.
pub fn default_max_recv_msg_size_mib() -> u64 {
    4
}

/// otelcol's default HTTP endpoint.
pub fn default_http_endpoint() -> String {
    "localhost:4318".to_string()
}

/// otelcol's default HTTP body limit: 20 MiB.
pub fn default_max_request_body_size() -> u64 {
    20 * 1024 * 1024
}
