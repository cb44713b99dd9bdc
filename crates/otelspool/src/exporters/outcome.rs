//! The outcome of one export: accepted (possibly partially) or failed, and whether a failure
//! may be retried.
//!
//! Retry-or-not is decided here and only here: [`classify_grpc`] for gRPC statuses (as
//! otelcol's `otlp` exporter) and [`classify_http`] for HTTP statuses (as otelcol's
//! `otlphttp`). Connection errors and timeouts are always retryable. Error reasons never
//! contain header values or tokens.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceResponse, metrics::v1::ExportMetricsServiceResponse,
    trace::v1::ExportTraceServiceResponse,
};
use prost::Message;
use tonic::Code;
use tonic_types::StatusExt;

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

/// Classifies a gRPC status. Retried, as by otelcol's `otlp` exporter: `Cancelled`,
/// `DeadlineExceeded`, `Aborted`, `OutOfRange`, `Unavailable`, `DataLoss` (a
/// `google.rpc.RetryInfo` delay becomes `after`). Retried where otelcol gives up, because for
/// a lossless sidecar these mean "not now", not "never":
/// - `ResourceExhausted` without `RetryInfo` (throttling; otelcol drops it), unless the message
///   says the request is too large, which no retry can fix;
/// - `Unauthenticated` and `PermissionDenied` (a missing or rotating token: data stays queued
///   until the credentials are fixed, instead of being thrown away).
///
/// Everything else is permanent.
pub fn classify_grpc(status: &tonic::Status) -> RetryAction {
    let retry_info_delay = || status.get_details_retry_info().map(|info| info.retry_delay);
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => RetryAction::Retry {
            after: retry_info_delay().flatten(),
        },
        Code::ResourceExhausted => match retry_info_delay() {
            Some(after) => RetryAction::Retry { after },
            None if is_size_limit(status.message()) => RetryAction::DontRetry,
            None => RetryAction::Retry { after: None },
        },
        Code::Unauthenticated | Code::PermissionDenied => RetryAction::Retry { after: None },
        // tonic reports a connection broken mid-call (reset, broken pipe, h2 error) as
        // Unknown/Internal with the transport error as its source: a network failure, not
        // the server's verdict on the data.
        Code::Unknown | Code::Internal if is_transport_failure(status) => {
            RetryAction::Retry { after: None }
        }
        _ => RetryAction::DontRetry,
    }
}

/// True when the status was made by the client's transport, not sent by the server.
fn is_transport_failure(status: &tonic::Status) -> bool {
    let m = status.message().to_ascii_lowercase();
    std::error::Error::source(status).is_some()
        || m.contains("transport error")
        || m.contains("connection reset")
        || m.contains("broken pipe")
        || m.contains("h2 protocol error")
        || m.contains("stream closed")
}

/// True when a refusal is about the request's size (retrying the same bytes cannot help).
fn is_size_limit(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("larger than") || m.contains("too large") || m.contains("message length")
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

/// Parses a `Retry-After` value: delay-seconds, or an HTTP-date (IMF-fixdate) relative to
/// `now` (a date in the past means "now"). Unparseable values give `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_imf_fixdate(value)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Parses `Sun, 06 Nov 1994 08:49:37 GMT` into seconds since the Unix epoch.
fn parse_imf_fixdate(value: &str) -> Option<u64> {
    let (_weekday, rest) = value.split_once(", ")?;
    let mut parts = rest.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let year: u64 = parts.next()?.parse().ok()?;
    let time = parts.next()?;
    if parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || !(1..=31).contains(&day) || year < 1970 || h > 23 || m > 59 || s > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm), for
/// years >= 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An error and its sources, joined with `: ` (transport errors hide the cause in sources).
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess;
    use tonic_types::{ErrorDetails, StatusExt};

    #[test]
    fn grpc_codes_classify_like_otelcol() {
        let retry = [
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unavailable,
            Code::DataLoss,
        ];
        for code in retry.into_iter().chain([
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::ResourceExhausted,
        ]) {
            let action = classify_grpc(&tonic::Status::new(code, "x"));
            assert_eq!(action, RetryAction::Retry { after: None }, "{code:?}");
        }
        let too_large = tonic::Status::new(
            Code::ResourceExhausted,
            "grpc: received message larger than max (5000000 vs. 4194304)",
        );
        assert_eq!(classify_grpc(&too_large), RetryAction::DontRetry);
        for message in [
            "transport error",
            "connection error: connection reset",
            "stream closed because of a broken pipe",
            "h2 protocol error: error reading a body from connection",
        ] {
            for code in [Code::Unknown, Code::Internal] {
                let action = classify_grpc(&tonic::Status::new(code, message));
                assert_eq!(
                    action,
                    RetryAction::Retry { after: None },
                    "{code:?} {message}"
                );
            }
        }
        let permanent = [
            Code::InvalidArgument,
            Code::NotFound,
            Code::Unknown,
            Code::Internal,
            Code::Unimplemented,
        ];
        for code in permanent {
            let action = classify_grpc(&tonic::Status::new(code, "x"));
            assert_eq!(action, RetryAction::DontRetry, "{code:?}");
        }
    }

    #[test]
    fn resource_exhausted_with_retry_info_is_retried_after_its_delay() {
        let details = ErrorDetails::with_retry_info(Some(Duration::from_secs(7)));
        let status = tonic::Status::with_error_details(Code::ResourceExhausted, "slow", details);
        assert_eq!(
            classify_grpc(&status),
            RetryAction::Retry {
                after: Some(Duration::from_secs(7))
            }
        );
    }

    #[test]
    fn http_statuses_classify_like_otlphttp() {
        for s in [401, 403, 408, 429, 502, 503, 504] {
            assert_eq!(classify_http(s, None), RetryAction::Retry { after: None });
        }
        for s in [400, 404, 413, 500, 501] {
            assert_eq!(classify_http(s, Some("3")), RetryAction::DontRetry);
        }
        assert_eq!(
            classify_http(503, Some("3")),
            RetryAction::Retry {
                after: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(
            classify_http(429, Some("soon")),
            RetryAction::Retry { after: None }
        );
    }

    #[test]
    fn retry_after_http_date() {
        // 1994-11-06T08:49:37Z is 784111777 seconds after the epoch.
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777 - 10);
        let d = parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now);
        assert_eq!(d, Some(Duration::from_secs(10)));
        let later = UNIX_EPOCH + Duration::from_secs(784_111_777 + 10);
        let d = parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", later);
        assert_eq!(d, Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 UTC", now),
            None
        );
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn partial_success_is_decoded() {
        let resp = ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: 3,
                error_message: "too old".into(),
            }),
        };
        let a = Accepted::decode(Signal::Logs, &resp.encode_to_vec()).unwrap();
        assert_eq!(a.rejected_items, 3);
        assert_eq!(a.message, "too old");
        assert_eq!(
            Accepted::decode(Signal::Traces, &[]).unwrap(),
            Accepted::default()
        );
        assert!(Accepted::decode(Signal::Metrics, &[0xff, 0xff]).is_err());
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 3), "é...");
    }
}
