//! Unit tests of the retry classification.
#![allow(clippy::unwrap_used)]

use super::*;
use std::time::UNIX_EPOCH;

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

/// Scenario: a server answers Unknown or Internal with words that name a transport failure;
/// our side fails with the same codes and a typed transport cause.
/// Guarantees: the words decide nothing (the server's verdict is permanent); the typed
/// cause makes our side's failure retryable.
#[test]
fn transport_failures_are_recognised_by_type_not_words() {
    for message in [
        "transport error",
        "connection error: connection reset",
        "stream closed because of a broken pipe",
        "h2 protocol error: error reading a body from connection",
    ] {
        for code in [Code::Unknown, Code::Internal] {
            let action = classify_grpc(&tonic::Status::new(code, message));
            assert_eq!(action, RetryAction::DontRetry, "{code:?} {message}");
        }
    }
    let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
    let ours = tonic::Status::from_error(Box::new(reset));
    assert_eq!(ours.code(), Code::Unknown);
    assert_eq!(classify_grpc(&ours), RetryAction::Retry { after: None });
}

/// Scenario: servers of each known implementation refuse a request for its size, with
/// `RESOURCE_EXHAUSTED` (or `OUT_OF_RANGE` for tonic) and their exact wording; another
/// server throttles with the same codes and other words.
/// Guarantees: the size refusals are permanent, the throttling is retried.
#[test]
fn size_limit_refusals_are_permanent_by_their_exact_wording() {
    let size_limits = [
        (
            Code::ResourceExhausted,
            "grpc: received message larger than max (5000000 vs. 4194304)",
        ),
        (
            Code::ResourceExhausted,
            "grpc: received message larger than max length allowed on current machine (5 vs. 4)",
        ),
        (
            Code::ResourceExhausted,
            "grpc: received message after decompression larger than max 4194304",
        ),
        (
            Code::ResourceExhausted,
            "grpc: message after decompression larger than max (5 vs. 4)",
        ),
        (
            Code::ResourceExhausted,
            "Received message larger than max (5000000 vs. 4194304)",
        ),
        (
            Code::ResourceExhausted,
            "gRPC message exceeds maximum size 4194304: 6027014",
        ),
        (
            Code::OutOfRange,
            "Error, decoded message length too large: found 5000000 bytes, the limit is: 4194304 bytes",
        ),
    ];
    for (code, message) in size_limits {
        let status = tonic::Status::new(code, message);
        assert_eq!(classify_grpc(&status), RetryAction::DontRetry, "{message}");
    }
    for message in [
        "quota exceeded",
        "message too large, try later",
        "x larger than max",
    ] {
        for code in [Code::ResourceExhausted, Code::OutOfRange] {
            let status = tonic::Status::new(code, message);
            let action = classify_grpc(&status);
            assert_eq!(action, RetryAction::Retry { after: None }, "{message}");
        }
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
    // The two obsolete forms RFC 9110 asks recipients to accept.
    for obsolete in ["Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
        let d = parse_retry_after(obsolete, now);
        assert_eq!(d, Some(Duration::from_secs(10)), "{obsolete}");
    }
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
