//! The OTLP/gRPC exporter: sends an already-encoded `Export*ServiceRequest` to a backend's
//! OTLP gRPC `Export` method and reports whether it was accepted.
//!
//! Invariants:
//! - The request payload is never decoded or re-encoded: the queued bytes go into the gRPC
//!   frame as they are, compressed (gzip or zstd at the configured level) by `grpc_unary`.
//!   Only the small response is decoded, to read `partial_success`.
//! - Connecting is lazy: building succeeds while the backend is down; a failed connection is
//!   a retryable [`ExportError`].
//! - One deadline (`timeout`) covers connecting, sending and the response; it is also sent as
//!   `grpc-timeout`.
//! - Retry decisions come from [`classify_grpc`] only.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tonic::Status;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::error_chain::{describe, error_chain};
use super::grpc_unary::{CallSettings, unary};
use super::outcome::{Accepted, ExportError, classify_grpc, truncate};
use super::settings::{
    BuildError, Compression, OtlpExporterSettings, TlsSettings, resolve_grpc_endpoint,
};
use super::tls::{AcceptAnyServerCert, ensure_crypto_provider, read_ca_file};
use crate::pipeline::Signal;

/// Longest backend error message kept in an [`ExportError`] reason.
const MAX_REASON_MESSAGE: usize = 512;

/// Sends encoded OTLP requests over gRPC. Cheap to share: `export` takes `&self` and may run
/// concurrently (requests are multiplexed over one HTTP/2 connection).
#[derive(Debug, Clone)]
pub struct OtlpGrpcExporter {
    channel: Channel,
    metadata: MetadataMap,
    compression: Compression,
    timeout: Duration,
    endpoint: String,
}

impl OtlpGrpcExporter {
    /// Builds the exporter without connecting (the backend may be down at start). Must be
    /// called inside a Tokio runtime. Fails on an invalid endpoint, header or TLS setting.
    pub fn new(settings: OtlpExporterSettings) -> Result<Self, BuildError> {
        ensure_crypto_provider();
        let target = resolve_grpc_endpoint(&settings.endpoint, &settings.tls)?;
        let metadata = build_metadata(&settings.headers)?;
        let invalid = |e: tonic::transport::Error| BuildError::InvalidEndpoint {
            endpoint: settings.endpoint.clone(),
            reason: error_chain(&e),
        };
        let mut endpoint = Endpoint::from_shared(target.uri.clone())
            .map_err(invalid)?
            .user_agent(concat!("otelspool/", env!("CARGO_PKG_VERSION")))
            .map_err(invalid)?
            .connect_timeout(settings.timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        if target.tls {
            endpoint = configure_tls(endpoint, &settings.tls)?;
        } else if settings.tls.ca_file.is_some() || settings.tls.insecure_skip_verify {
            tracing::warn!(
                endpoint = %target.uri,
                "TLS settings are ignored: the endpoint uses plaintext"
            );
        }
        let channel = endpoint.connect_lazy();
        tracing::debug!(endpoint = %target.uri, tls = target.tls, "built OTLP/gRPC exporter");
        Ok(Self {
            channel,
            metadata,
            compression: settings.compression,
            timeout: settings.timeout,
            endpoint: target.uri,
        })
    }

    /// Sends one encoded `Export*ServiceRequest` of `signal`, as is. `Ok` means the backend
    /// accepted it (possibly rejecting some items, see [`Accepted`]); `Err` says whether it
    /// may be retried.
    pub async fn export(&self, signal: Signal, body: Bytes) -> Result<Accepted, ExportError> {
        let started = Instant::now();
        let size = body.len();
        let result = match tokio::time::timeout(self.timeout, self.call(signal, body)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(ExportError::retryable(format!(
                "{signal} export to {} timed out after {:?}",
                self.endpoint, self.timeout
            ))),
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match &result {
            // Counted and logged, rate-limited, by the delivery stage (delivery/rejections.rs).
            Ok(accepted) if accepted.rejected_items > 0 => tracing::debug!(
                signal = %signal,
                endpoint = %self.endpoint,
                rejected = accepted.rejected_items,
                message = %accepted.message,
                "backend accepted the export partially; rejected items are not retried"
            ),
            Ok(_) => tracing::debug!(signal = %signal, bytes = size, elapsed_ms, "exported"),
            Err(e) => tracing::debug!(
                signal = %signal,
                endpoint = %self.endpoint,
                retryable = e.is_retryable(),
                error = %e,
                elapsed_ms,
                "export failed"
            ),
        }
        result
    }

    async fn call(&self, signal: Signal, body: Bytes) -> Result<Accepted, ExportError> {
        let call = CallSettings {
            path: signal.grpc_path(),
            metadata: &self.metadata,
            timeout: self.timeout,
            compression: self.compression,
        };
        match unary(&self.channel, call, body).await {
            Ok(response) => Ok(decode_response(signal, &response)),
            Err(status) => Err(status_to_error(signal, &self.endpoint, &status)),
        }
    }
}

/// Reads `partial_success`; an undecodable response to a successful call still means the
/// backend accepted the data (retrying would duplicate it), so it is logged and accepted.
fn decode_response(signal: Signal, raw: &[u8]) -> Accepted {
    Accepted::decode(signal, raw).unwrap_or_else(|e| {
        tracing::warn!(
            signal = %signal,
            error = %e,
            "cannot decode the backend's export response; treating the export as accepted"
        );
        Accepted::default()
    })
}

fn status_to_error(signal: Signal, endpoint: &str, status: &Status) -> ExportError {
    // Connection failures hide their cause (e.g. "Connection refused") in the source chain.
    let message = describe(
        status.message().to_owned(),
        std::error::Error::source(status),
    );
    ExportError {
        action: classify_grpc(status),
        reason: format!(
            "{signal} export to {endpoint} failed: {:?}: {}",
            status.code(),
            truncate(&message, MAX_REASON_MESSAGE)
        ),
    }
}

/// Converts configured headers into gRPC metadata (lower-case keys, ASCII values). Errors
/// name the header, never its value.
fn build_metadata(headers: &[(String, String)]) -> Result<MetadataMap, BuildError> {
    let mut map = MetadataMap::new();
    for (name, value) in headers {
        let invalid = |reason: &str| BuildError::InvalidHeader {
            name: name.clone(),
            reason: reason.to_owned(),
        };
        let key = AsciiMetadataKey::from_bytes(name.trim().to_ascii_lowercase().as_bytes())
            .map_err(|_| invalid("not a valid ASCII gRPC metadata key"))?;
        let value = AsciiMetadataValue::try_from(value.as_str())
            .map_err(|_| invalid("the value is not a valid ASCII header value"))?;
        map.append(key, value);
    }
    Ok(map)
}

/// TLS for the gRPC channel: system roots plus `ca_file`, or no verification at all, and an
/// optional server name override.
fn configure_tls(endpoint: Endpoint, tls: &TlsSettings) -> Result<Endpoint, BuildError> {
    let tls_error = |e: tonic::transport::Error| BuildError::Tls(error_chain(&e));
    let mut config = ClientTlsConfig::new();
    if let Some(name) = &tls.server_name_override {
        config = config.domain_name(name.clone());
    }
    if tls.insecure_skip_verify {
        tracing::warn!("tls.insecure_skip_verify is set: the server certificate is not verified");
        return endpoint
            .tls_config_with_verifier(config, AcceptAnyServerCert::new())
            .map_err(tls_error);
    }
    let Some(ca_path) = &tls.ca_file else {
        return endpoint
            .tls_config(config.with_native_roots())
            .map_err(tls_error);
    };
    let config = config.ca_certificate(Certificate::from_pem(read_ca_file(ca_path)?));
    match endpoint
        .clone()
        .tls_config(config.clone().with_native_roots())
    {
        Ok(endpoint) => Ok(endpoint),
        Err(e) => {
            // Typically: no system roots in a minimal container. The CA file alone will do.
            tracing::debug!(error = %error_chain(&e), "using tls.ca_file without system roots");
            endpoint.tls_config(config).map_err(tls_error)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn metadata_keys_are_lower_case_and_errors_hide_values() {
        let headers = vec![
            ("Authorization".to_owned(), "Bearer auth_secret".to_owned()),
            ("Dash0-Dataset".to_owned(), "prod".to_owned()),
        ];
        let map = build_metadata(&headers).unwrap();
        assert_eq!(map.get("authorization").unwrap(), "Bearer auth_secret");
        assert_eq!(map.get("dash0-dataset").unwrap(), "prod");

        let bad = vec![(
            "Authorization".to_owned(),
            "Bearer auth_secret\n".to_owned(),
        )];
        let err = build_metadata(&bad).unwrap_err().to_string();
        assert!(err.contains("Authorization"), "{err}");
        assert!(!err.contains("auth_secret"), "{err}");
        let bad_key = vec![("bad key".to_owned(), "v".to_owned())];
        assert!(build_metadata(&bad_key).is_err());
    }
}
