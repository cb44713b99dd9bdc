//! The outcome of one export: accepted (possibly partially) or failed, and whether a failure
//! may be retried.
//!
//! Retry-or-not is decided here and only here: [`classify_grpc`] for gRPC statuses (as
//! otelcol's `otlp` exporter) and [`classify_http`] for HTTP statuses (as otelcol's
//! `otlphttp`). Connection errors and timeouts are always retryable. Error reasons never
//! contain header values or tokens.
//!
//! Decisions are made on codes and on types found in the error's source chain
//! ([`super::error_chain`]), never on an error's text, with one exception that no code or type
//! covers: a server refusing a request for its size says so only in words. Those words are
//! matched exactly, per server implementation ([`SIZE_LIMIT_MESSAGES`]), and pinned in tests.

use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceResponse, metrics::v1::ExportMetricsServiceResponse,
    trace::v1::ExportTraceServiceResponse,
};
use prost::Message;
use tonic::Code;
use tonic_types::StatusExt;

use super::error_chain::transport_failure;
use crate::pipeline::Signal;

/// Whether a failed export may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAction {
    /// Transient failure: send the same payload again later.
    Retry {
        /// The delay the server asked for (`RetryInfo`, `Retry-After`), if any.
        after: Option<Duration>,
    },
    /// Permanent failure: sending the same payload again cannot succeed.
    DontRetry,
}

impl RetryAction {
    /// True for [`RetryAction::Retry`].
    pub fn is_retry(&self) -> bool {
        matches!(self, RetryAction::Retry { .. })
    }
}

/// A failed export. `Display` is the reason only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ExportError {
    /// Whether and when to retry.
    pub action: RetryAction,
    /// What happened, for logs and the dead-letter file. Never contains header values.
    pub reason: String,
}

impl ExportError {
    /// A retryable failure without a server-given delay (connection errors, timeouts).
    pub fn retryable(reason: impl Into<String>) -> Self {
        Self {
            action: RetryAction::Retry { after: None },
            reason: reason.into(),
        }
    }

    /// A permanent failure.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self {
            action: RetryAction::DontRetry,
            reason: reason.into(),
        }
    }

    /// True if the payload may be sent again.
    pub fn is_retryable(&self) -> bool {
        self.action.is_retry()
    }
}

/// A successful export. The backend may still have rejected part of it (OTLP
/// `partial_success`); those items are not retried, as in otelcol.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Items (log records, spans or data points) the backend rejected.
    pub rejected_items: u64,
    /// The backend's explanation or warning; empty if none.
    pub message: String,
}

impl Accepted {
    /// Reads `partial_success` from an encoded `Export*ServiceResponse` of `signal`. An empty
    /// body is a full success.
    pub fn decode(signal: Signal, response: &[u8]) -> Result<Self, prost::DecodeError> {
        let (rejected, message) = match signal {
            Signal::Logs => {
                let r = ExportLogsServiceResponse::decode(response)?;
                r.partial_success
                    .map(|p| (p.rejected_log_records, p.error_message))
                    .unwrap_or_default()
            }
            Signal::Traces => {
                let r = ExportTraceServiceResponse::decode(response)?;
                r.partial_success
                    .map(|p| (p.rejected_spans, p.error_message))
                    .unwrap_or_default()
            }
            Signal::Metrics => {
                let r = ExportMetricsServiceResponse::decode(response)?;
                r.partial_success
                    .map(|p| (p.rejected_data_points, p.error_message))
                    .unwrap_or_default()
            }
        };
        Ok(Self {
            rejected_items: u64::try_from(rejected).unwrap_or(0),
            message,
        })
    }
}

/// How servers word a refusal of a request for its size, by implementation: there is no code
/// or detail for it (grpc-go, which the OpenTelemetry Collector's receiver uses, answers
/// `RESOURCE_EXHAUSTED`; tonic answers `OUT_OF_RANGE`, which is otherwise retryable). Matched
/// as exact prefixes of the status message.
pub const SIZE_LIMIT_MESSAGES: &[&str] = &[
    // grpc-go rpc_util.go: "(%d vs. %d)", also "... max length allowed on current machine".
    "grpc: received message larger than max ",
    // grpc-go rpc_util.go, after decompression (two wordings across versions).
    "grpc: received message after decompression larger than max ",
    "grpc: message after decompression larger than max ",
    // gRPC C-core (C++, Python, Ruby, ...): "Received message larger than max (%u vs. %d)".
    "Received message larger than max ",
    // grpc-java MessageDeframer: "gRPC message exceeds maximum size %d: %d".
    "gRPC message exceeds maximum size ",
    // tonic codec/decode.rs (pinned against a real tonic server in the tests).
    "Error, decoded message length too large: ",
    "Error decompressing: size limit, ",
];

/// Classifies a gRPC status.
///
/// A status our side made from a failure of the connection (tonic keeps the cause as the
/// status's source; a status the server sent has none) is retried whatever its code: it is
/// not the server's verdict on the data. Otherwise the code decides, as in otelcol's `otlp`
/// exporter: `Cancelled`, `DeadlineExceeded`, `Aborted`, `OutOfRange`, `Unavailable`,
/// `DataLoss` are retried (a `google.rpc.RetryInfo` delay becomes `after`). Retried where
/// otelcol gives up, because for a lossless sidecar these mean "not now", not "never":
/// - `ResourceExhausted` without `RetryInfo` (throttling; otelcol drops it);
/// - `Unauthenticated` and `PermissionDenied` (a missing or rotating token: data stays queued
///   until the credentials are fixed, instead of being thrown away).
///
/// But a server's `ResourceExhausted` or `OutOfRange` without `RetryInfo` whose message is a
/// known size-limit refusal ([`SIZE_LIMIT_MESSAGES`]) is permanent: the same bytes will never
/// fit. (Our side sets no size limit of its own.) Everything else is permanent.
pub fn classify_grpc(status: &tonic::Status) -> RetryAction {
    let source = std::error::Error::source(status);
    if source.and_then(transport_failure).is_some() {
        return RetryAction::Retry { after: None };
    }
    let retry_info_delay = || status.get_details_retry_info().map(|info| info.retry_delay);
    match status.code() {
        Code::ResourceExhausted | Code::OutOfRange => match retry_info_delay() {
            Some(after) => RetryAction::Retry { after },
            None if source.is_none() && is_size_limit(status.message()) => RetryAction::DontRetry,
            None => RetryAction::Retry { after: None },
        },
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::Unavailable
        | Code::DataLoss => RetryAction::Retry {
            after: retry_info_delay().flatten(),
        },
        Code::Unauthenticated | Code::PermissionDenied => RetryAction::Retry { after: None },
        _ => RetryAction::DontRetry,
    }
}

/// True when a server's message is one of the known size-limit refusals.
fn is_size_limit(message: &str) -> bool {
    SIZE_LIMIT_MESSAGES.iter().any(|m| message.starts_with(m))
}

/// Classifies an HTTP error status: retry 429, 502, 503 and 504 as otelcol's `otlphttp`
/// exporter does, honouring `Retry-After` (delay-seconds or HTTP-date); also 401, 403 and 408
/// (credentials being fixed, a request timeout), where otelcol gives up. Everything else
/// (400, 404, 413, other 5xx) is permanent.
pub fn classify_http(status: u16, retry_after: Option<&str>) -> RetryAction {
    match status {
        401 | 403 | 408 | 429 | 502 | 503 | 504 => RetryAction::Retry {
            after: retry_after.and_then(|v| parse_retry_after(v, SystemTime::now())),
        },
        _ => RetryAction::DontRetry,
    }
}

/// Parses a `Retry-After` value: delay-seconds, or an HTTP-date (any of the three forms RFC
/// 9110 allows) relative to `now` (a date in the past means "now"). Unparseable values give
/// `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Shortens `text` to at most `max` bytes (on a char boundary), marking the cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests;
