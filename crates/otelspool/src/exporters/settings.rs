//! Runtime settings of the OTLP exporters, and the errors of building an exporter from them.
//!
//! These are the resolved, validated-by-type runtime values; the YAML config types live in
//! `otelspool-config` and are converted into these by the wiring code. Endpoint resolution
//! follows the OpenTelemetry Collector:
//!
//! - OTLP/gRPC (`otlp`): `host:port` or `http(s)://host:port`. `https://` means TLS and
//!   `http://` means plaintext whatever `tls.insecure` says; without a scheme,
//!   `tls.insecure: false` (the default) means TLS.
//! - OTLP/HTTP (`otlphttp`): one full URL per signal, either given or composed as
//!   `<endpoint>/v1/<signal>`.

use std::path::PathBuf;
use std::time::Duration;

use crate::pipeline::Signal;

/// The default per-request timeout, as otelcol's exporter helper (`timeout: 5s`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

pub use super::compression::Compression;

/// Client TLS settings, named as otelcol's `configtls` client settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// Plaintext instead of TLS (gRPC only; an explicit `http://`/`https://` scheme wins).
    pub insecure: bool,
    /// A PEM file of CA certificates trusted in addition to the system roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate. For tests and broken setups only.
    pub insecure_skip_verify: bool,
    /// The name checked against the server certificate (and sent as SNI) instead of the host.
    pub server_name_override: Option<String>,
}

/// Settings of the OTLP/gRPC exporter ([`super::OtlpGrpcExporter`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpExporterSettings {
    /// `host:port`, `http://host:port` or `https://host:port`.
    pub endpoint: String,
    /// Extra request headers (sent as lower-case gRPC metadata), e.g. `Authorization`.
    pub headers: Vec<(String, String)>,
    /// Request compression.
    pub compression: Compression,
    /// Deadline of one export call, connection included.
    pub timeout: Duration,
    /// TLS settings.
    pub tls: TlsSettings,
}

impl OtlpExporterSettings {
    /// Settings for `endpoint` with otelcol's defaults: gzip, 5 s timeout, TLS unless the
    /// endpoint says `http://`.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            headers: Vec::new(),
            compression: Compression::default(),
            timeout: DEFAULT_TIMEOUT,
            tls: TlsSettings::default(),
        }
    }
}

/// The gRPC target resolved from an [`OtlpExporterSettings`] endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcTarget {
    /// The URI to connect to, always with a scheme (`http://` or `https://`).
    pub uri: String,
    /// Whether the connection uses TLS.
    pub tls: bool,
}

/// Resolves an otelcol gRPC endpoint (`host:port` or `http(s)://host:port`) into a URI and
/// whether to use TLS. The scheme wins over `tls.insecure`.
pub fn resolve_grpc_endpoint(endpoint: &str, tls: &TlsSettings) -> Result<GrpcTarget, BuildError> {
    let endpoint = endpoint.trim();
    let invalid = |reason: &str| BuildError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let (authority, use_tls) = if let Some(rest) = endpoint.strip_prefix("https://") {
        (rest, true)
    } else if let Some(rest) = endpoint.strip_prefix("http://") {
        (rest, false)
    } else if endpoint.contains("://") {
        return Err(invalid("the scheme must be http:// or https://"));
    } else {
        (endpoint, !tls.insecure)
    };
    let authority = authority.trim_end_matches('/');
    if authority.is_empty() {
        return Err(invalid("no host"));
    }
    if authority.contains('/') {
        return Err(invalid("a gRPC endpoint is host:port, without a path"));
    }
    let scheme = if use_tls { "https" } else { "http" };
    let uri = format!("{scheme}://{authority}");
    uri.parse::<http::Uri>()
        .map_err(|e| invalid(&e.to_string()))?;
    Ok(GrpcTarget { uri, tls: use_tls })
}

/// The full OTLP/HTTP URL of each signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpHttpEndpoints {
    /// URL logs are POSTed to.
    pub logs: String,
    /// URL traces are POSTed to.
    pub traces: String,
    /// URL metrics are POSTed to.
    pub metrics: String,
}

impl OtlpHttpEndpoints {
    /// Composes the per-signal URLs from a base endpoint as otelcol's `otlphttp` does:
    /// `https://host:4318` gives `https://host:4318/v1/logs` and so on (a trailing `/` on the
    /// base is not doubled).
    pub fn from_base(endpoint: &str) -> Self {
        let base = endpoint.trim().trim_end_matches('/');
        let url = |signal: Signal| format!("{base}{}", signal.http_path());
        Self {
            logs: url(Signal::Logs),
            traces: url(Signal::Traces),
            metrics: url(Signal::Metrics),
        }
    }

    /// Replaces one signal's URL (otelcol's `logs_endpoint`, `traces_endpoint`,
    /// `metrics_endpoint`), used as given.
    pub fn with_signal_endpoint(mut self, signal: Signal, url: impl Into<String>) -> Self {
        *self.slot(signal) = url.into();
        self
    }

    /// The URL for `signal`.
    pub fn for_signal(&self, signal: Signal) -> &str {
        match signal {
            Signal::Logs => &self.logs,
            Signal::Traces => &self.traces,
            Signal::Metrics => &self.metrics,
        }
    }

    fn slot(&mut self, signal: Signal) -> &mut String {
        match signal {
            Signal::Logs => &mut self.logs,
            Signal::Traces => &mut self.traces,
            Signal::Metrics => &mut self.metrics,
        }
    }
}

/// Settings of the OTLP/HTTP exporter ([`super::OtlpHttpExporter`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpHttpExporterSettings {
    /// Per-signal full URLs.
    pub endpoints: OtlpHttpEndpoints,
    /// Extra request headers, e.g. `Authorization`.
    pub headers: Vec<(String, String)>,
    /// Request body compression.
    pub compression: Compression,
    /// Deadline of one export request, connection and response body included.
    pub timeout: Duration,
    /// TLS settings (`insecure` is ignored: the URL scheme decides).
    pub tls: TlsSettings,
}

impl OtlpHttpExporterSettings {
    /// Settings for a base endpoint with otelcol's defaults: per-signal URLs
    /// `<endpoint>/v1/<signal>`, gzip, 5 s timeout.
    pub fn new(endpoint: &str) -> Self {
        Self {
            endpoints: OtlpHttpEndpoints::from_base(endpoint),
            headers: Vec::new(),
            compression: Compression::default(),
            timeout: DEFAULT_TIMEOUT,
            tls: TlsSettings::default(),
        }
    }
}

/// Why an exporter could not be built from its settings. Never contains header values.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The endpoint is not a usable URI.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as configured.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A header name or value is not valid (the value itself is not reported).
    #[error("invalid header {name:?}: {reason}")]
    InvalidHeader {
        /// The header name as configured.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA file could not be read.
    #[error("cannot read tls.ca_file {path:?}: {source}")]
    ReadCaFile {
        /// The configured path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS configuration was refused by the TLS stack.
    #[error("invalid TLS configuration: {0}")]
    Tls(String),
    /// The combination of settings is not supported by this exporter.
    #[error("unsupported setting: {0}")]
    Unsupported(&'static str),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tls(insecure: bool) -> TlsSettings {
        TlsSettings {
            insecure,
            ..TlsSettings::default()
        }
    }

    #[test]
    fn grpc_endpoint_without_scheme_follows_insecure() {
        let t = resolve_grpc_endpoint("ingress.example.com:4317", &tls(false)).unwrap();
        assert_eq!(t.uri, "https://ingress.example.com:4317");
        assert!(t.tls);
        let t = resolve_grpc_endpoint("localhost:4317", &tls(true)).unwrap();
        assert_eq!(t.uri, "http://localhost:4317");
        assert!(!t.tls);
    }

    #[test]
    fn grpc_endpoint_scheme_wins_over_insecure() {
        let t = resolve_grpc_endpoint("http://localhost:4317", &tls(false)).unwrap();
        assert!(!t.tls);
        assert_eq!(t.uri, "http://localhost:4317");
        let t = resolve_grpc_endpoint("https://localhost:4317/", &tls(true)).unwrap();
        assert!(t.tls);
        assert_eq!(t.uri, "https://localhost:4317");
    }

    #[test]
    fn grpc_endpoint_rejects_garbage() {
        assert!(resolve_grpc_endpoint("ftp://x:1", &tls(false)).is_err());
        assert!(resolve_grpc_endpoint("", &tls(false)).is_err());
        assert!(resolve_grpc_endpoint("http://x:1/v1/logs", &tls(false)).is_err());
        assert!(resolve_grpc_endpoint("bad host:1", &tls(false)).is_err());
    }

    #[test]
    fn http_endpoints_compose_like_otlphttp() {
        let e = OtlpHttpEndpoints::from_base("https://x:4318/");
        assert_eq!(e.logs, "https://x:4318/v1/logs");
        assert_eq!(e.for_signal(Signal::Traces), "https://x:4318/v1/traces");
        assert_eq!(e.metrics, "https://x:4318/v1/metrics");
        let e = e.with_signal_endpoint(Signal::Logs, "https://y/custom");
        assert_eq!(e.for_signal(Signal::Logs), "https://y/custom");
        assert_eq!(e.traces, "https://x:4318/v1/traces");
    }
}
