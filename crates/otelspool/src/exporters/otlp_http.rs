//! The OTLP/HTTP exporter: POSTs an already-encoded `Export*ServiceRequest` as
//! `application/x-protobuf` to the signal's URL and reports whether it was accepted.
//!
//! Invariants:
//! - The request payload is never decoded or re-encoded; it is compressed here (gzip or zstd
//!   at the configured level) and sent with `Content-Encoding`. Only the small response is decoded, to read
//!   `partial_success` (or, on failure, the `google.rpc.Status` message).
//! - One deadline (`timeout`) covers connecting, sending and reading the response.
//! - Retry decisions come from [`classify_http`] only; connection errors and timeouts are
//!   retryable. Response bodies are read up to [`MAX_RESPONSE_BYTES`].

use bytes::Bytes;
use prost::Message;
use reqwest::header::{
    CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER,
};
use reqwest::{Certificate, Url};

use super::compression::decompress_response;
use super::error_chain::{TransportFailure, error_chain, transport_failure};
use super::outcome::{Accepted, ExportError, classify_http, truncate};
use super::settings::{BuildError, Compression, OtlpHttpExporterSettings};
use super::tls::{ensure_crypto_provider, read_ca_file};
use crate::pipeline::Signal;

/// The most of a response body that is read (responses are small; a bigger one is cut).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Longest backend error text kept in an [`ExportError`] reason.
const MAX_REASON_BODY: usize = 512;

const PROTOBUF: &str = "application/x-protobuf";

/// Sends encoded OTLP requests over HTTP. Cheap to share: `export` takes `&self` and may run
/// concurrently (the client pools connections).
#[derive(Debug, Clone)]
pub struct OtlpHttpExporter {
    client: reqwest::Client,
    urls: [Url; 3],
    headers: HeaderMap,
    compression: Compression,
}

impl OtlpHttpExporter {
    /// Builds the exporter without connecting (the backend may be down at start). Fails on an
    /// invalid URL, header or TLS setting, and on `tls.server_name_override`, which this
    /// client cannot honour.
    pub fn new(settings: OtlpHttpExporterSettings) -> Result<Self, BuildError> {
        ensure_crypto_provider();
        if settings.tls.server_name_override.is_some() {
            return Err(BuildError::Unsupported(
                "tls.server_name_override with the OTLP/HTTP exporter",
            ));
        }
        let parse = |signal: Signal| -> Result<Url, BuildError> {
            let raw = settings.endpoints.for_signal(signal);
            let invalid = |reason: String| BuildError::InvalidEndpoint {
                endpoint: raw.to_owned(),
                reason,
            };
            let url = Url::parse(raw).map_err(|e| invalid(e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(invalid(
                    "expected an http:// or https:// URL with a host".into(),
                ));
            }
            Ok(url)
        };
        let urls = [
            parse(Signal::Logs)?,
            parse(Signal::Traces)?,
            parse(Signal::Metrics)?,
        ];
        let headers = build_headers(&settings.headers)?;

        let mut builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("otelspool/", env!("CARGO_PKG_VERSION")));
        if settings.tls.insecure_skip_verify {
            tracing::warn!(
                "tls.insecure_skip_verify is set: the server certificate is not verified"
            );
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        if let Some(path) = &settings.tls.ca_file {
            let pem = read_ca_file(path)?;
            let certs = Certificate::from_pem_bundle(&pem).map_err(|e| {
                BuildError::Tls(format!("tls.ca_file {path:?}: {}", error_chain(&e)))
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|e| BuildError::Client(error_chain(&e)))?;
        tracing::debug!(logs_url = %urls[0], "built OTLP/HTTP exporter");
        Ok(Self {
            client,
            urls,
            headers,
            compression: settings.compression,
        })
    }

    /// Sends one encoded `Export*ServiceRequest` of `signal`, as is. `Ok` means the backend
    /// accepted it (possibly rejecting some items, see [`Accepted`]); `Err` says whether it
    /// may be retried.
    pub async fn export(&self, signal: Signal, body: Bytes) -> Result<Accepted, ExportError> {
        let url = &self.urls[signal_index(signal)];
        let result = self.send(signal, url, body).await;
        match &result {
            // Counted and logged, rate-limited, by the delivery stage (delivery/rejections.rs).
            Ok(accepted) if accepted.rejected_items > 0 => tracing::debug!(
                signal = %signal,
                url = %url,
                rejected = accepted.rejected_items,
                message = %accepted.message,
                "backend accepted the export partially; rejected items are not retried"
            ),
            Ok(_) => tracing::debug!(signal = %signal, url = %url, "exported"),
            Err(e) => tracing::debug!(
                signal = %signal,
                url = %url,
                retryable = e.is_retryable(),
                error = %e,
                "export failed"
            ),
        }
        result
    }

    async fn send(&self, signal: Signal, url: &Url, body: Bytes) -> Result<Accepted, ExportError> {
        let mut request = self
            .client
            .post(url.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, PROTOBUF);
        if let Some(encoding) = self.compression.encoding() {
            request = request.header(CONTENT_ENCODING, encoding);
        }
        let body = self.compression.compress_bytes(body).await.map_err(|e| {
            ExportError::permanent(format!("{signal} export: compression failed: {e}"))
        })?;
        // No response, so no verdict on the data: always retryable.
        let mut response = request.body(body).send().await.map_err(|e| {
            let what = match transport_failure(&e) {
                Some(TransportFailure::Timeout) => "timed out",
                Some(TransportFailure::Connect) => "could not connect",
                Some(TransportFailure::ConnectionLost) => "lost the connection",
                Some(TransportFailure::Other) | None => "failed",
            };
            ExportError::retryable(format!(
                "{signal} export to {url} {what}: {}",
                error_chain(&e.without_url())
            ))
        })?;

        let status = response.status();
        let headers = response.headers().clone();
        let raw = match read_limited(&mut response).await {
            Ok(raw) => raw,
            Err(e) if status.is_success() => {
                tracing::warn!(
                    signal = %signal,
                    error = %error_chain(&e),
                    "cannot read the backend's export response; treating the export as accepted"
                );
                return Ok(Accepted::default());
            }
            Err(e) => Bytes::from(format!("(response body unreadable: {})", error_chain(&e))),
        };
        let body = decompress_response_body(&headers, raw);

        if status.is_success() {
            return Ok(decode_success(signal, &headers, &body));
        }
        let retry_after = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok());
        Err(ExportError {
            action: classify_http(status.as_u16(), retry_after),
            reason: format!(
                "{signal} export to {url} failed: HTTP {}: {}",
                status.as_u16(),
                error_text(&headers, &body)
            ),
        })
    }
}

fn signal_index(signal: Signal) -> usize {
    match signal {
        Signal::Logs => 0,
        Signal::Traces => 1,
        Signal::Metrics => 2,
    }
}

/// Reads `partial_success` from a protobuf response. An empty, JSON or undecodable body on a
/// success status still means accepted (retrying would duplicate the data).
fn decode_success(signal: Signal, headers: &HeaderMap, body: &[u8]) -> Accepted {
    if body.is_empty() || !is_protobuf(headers) {
        return Accepted::default();
    }
    Accepted::decode(signal, body).unwrap_or_else(|e| {
        tracing::warn!(
            signal = %signal,
            error = %e,
            "cannot decode the backend's export response; treating the export as accepted"
        );
        Accepted::default()
    })
}

/// A short, printable description of an error response: the `google.rpc.Status` message for
/// protobuf bodies, else the body text, truncated.
fn error_text(headers: &HeaderMap, body: &[u8]) -> String {
    if is_protobuf(headers)
        && let Ok(status) = tonic_types::pb::Status::decode(body)
        && !status.message.is_empty()
    {
        return truncate(&status.message, MAX_REASON_BODY);
    }
    truncate(String::from_utf8_lossy(body).trim(), MAX_REASON_BODY)
}

fn is_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROTOBUF) || v.starts_with("application/protobuf"))
}

async fn read_limited(response: &mut reqwest::Response) -> Result<Bytes, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESPONSE_BYTES - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    Ok(Bytes::from(out))
}

/// Inflates a gzip or zstd response (at most 4 MiB); any other body is used as it came.
fn decompress_response_body(headers: &HeaderMap, raw: Bytes) -> Bytes {
    let Some(encoding) = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    else {
        return raw;
    };
    match decompress_response(encoding, &raw) {
        Some(Ok(out)) => Bytes::from(out),
        Some(Err(e)) => {
            tracing::debug!(error = %e, encoding, "response does not decompress; using it raw");
            raw
        }
        None => raw,
    }
}

/// Converts configured headers into a header map whose values are marked sensitive. Errors
/// name the header, never its value.
fn build_headers(headers: &[(String, String)]) -> Result<HeaderMap, BuildError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let invalid = |reason: &str| BuildError::InvalidHeader {
            name: name.clone(),
            reason: reason.to_owned(),
        };
        let key = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| invalid("not a valid HTTP header name"))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| invalid("the value is not a valid header value"))?;
        value.set_sensitive(true);
        map.append(key, value);
    }
    Ok(map)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Scenario: responses in gzip, zstd, an unknown encoding, and a corrupt gzip.
    /// Guarantees: the known ones inflate; the others are used as they came.
    #[test]
    fn responses_inflate_by_content_encoding() {
        use crate::exporters::Compression;
        let data = Bytes::from_static(b"hello hello hello hello");
        for (name, c) in [
            ("gzip", Compression::gzip(1)),
            ("zstd", Compression::zstd(1)),
        ] {
            let packed = Bytes::from(c.compress(&data).unwrap());
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static(name));
            assert_eq!(decompress_response_body(&headers, packed), data);
        }
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert_eq!(decompress_response_body(&headers, data.clone()), data);
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert_eq!(decompress_response_body(&headers, data.clone()), data);
    }

    #[test]
    fn header_errors_hide_values() {
        let bad = vec![(
            "Authorization".to_owned(),
            "Bearer auth_secret\n".to_owned(),
        )];
        let err = build_headers(&bad).unwrap_err().to_string();
        assert!(err.contains("Authorization"), "{err}");
        assert!(!err.contains("auth_secret"), "{err}");
    }

    #[test]
    fn error_text_prefers_rpc_status_message() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));
        let status = tonic_types::pb::Status {
            code: 3,
            message: "bad payload".into(),
            details: vec![],
        };
        assert_eq!(error_text(&headers, &status.encode_to_vec()), "bad payload");
        let long = "x".repeat(2000);
        assert!(error_text(&HeaderMap::new(), long.as_bytes()).len() <= MAX_REASON_BODY + 3);
    }
}
