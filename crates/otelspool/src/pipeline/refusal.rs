//! Why a request was not accepted, and how each reason maps to gRPC and HTTP answers.
//!
//! Every push-back is retryable (`Unavailable` / 503 with a retry hint), because OTLP SDKs
//! retry those and keep the data; otelcol 0.91 answered `Unknown` / 500 on overload, which
//! SDKs drop. Only malformed data and a missing or wrong token get a permanent answer.

use std::time::Duration;

use http::StatusCode;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// A refused request. Nothing of it was acknowledged or kept.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    /// The data is malformed; sending it again will not help.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The memory limiter is over its soft limit.
    #[error("memory limit reached ({0}); retry later")]
    Overloaded(String),
    /// An exporter queue is at its size limit (`when_full: block`).
    #[error("sending queue is full ({0}); retry later")]
    QueueFull(String),
    /// Writing to the queue failed (for example the disk is full).
    #[error("could not store the data durably ({0}); retry later")]
    StorageFailed(String),
    /// The collector is shutting down.
    #[error("collector is shutting down; retry later")]
    ShuttingDown,
    /// The request lacks a valid token (`auth`); sending it again unchanged will not help.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
}

impl Refusal {
    /// True when the client should send the same data again.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Refusal::Invalid(_) | Refusal::Unauthenticated(_))
    }

    /// The back-off suggested to the client.
    pub fn retry_after(&self) -> Option<Duration> {
        self.is_retryable().then_some(Duration::from_secs(1))
    }

    /// A short label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Invalid(_) => "invalid",
            Refusal::Overloaded(_) => "memory_limit",
            Refusal::QueueFull(_) => "queue_full",
            Refusal::StorageFailed(_) => "storage_error",
            Refusal::ShuttingDown => "shutting_down",
            Refusal::Unauthenticated(_) => "unauthenticated",
        }
    }

    /// The gRPC status: `Unauthenticated`, `InvalidArgument`, or `Unavailable` with a
    /// `RetryInfo` detail.
    pub fn to_grpc_status(&self) -> Status {
        if let Refusal::Unauthenticated(_) = self {
            return Status::unauthenticated(self.to_string());
        }
        match self.retry_after() {
            None => Status::invalid_argument(self.to_string()),
            Some(delay) => Status::with_error_details(
                Code::Unavailable,
                self.to_string(),
                ErrorDetails::with_retry_info(Some(delay)),
            ),
        }
    }

    /// The HTTP status: 401, 400, or 503 (sent with `Retry-After`).
    pub fn http_status(&self) -> StatusCode {
        if let Refusal::Unauthenticated(_) = self {
            StatusCode::UNAUTHORIZED
        } else if self.is_retryable() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::BAD_REQUEST
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_back_is_retryable_with_a_hint_and_bad_data_is_not() {
        for r in [
            Refusal::Overloaded("x".into()),
            Refusal::QueueFull("x".into()),
            Refusal::StorageFailed("x".into()),
            Refusal::ShuttingDown,
        ] {
            let s = r.to_grpc_status();
            assert_eq!(s.code(), Code::Unavailable);
            assert!(
                s.get_details_retry_info().is_some(),
                "{r:?} lacks RetryInfo"
            );
            assert_eq!(r.http_status(), StatusCode::SERVICE_UNAVAILABLE);
        }
        let bad = Refusal::Invalid("x".into());
        assert_eq!(bad.to_grpc_status().code(), Code::InvalidArgument);
        assert_eq!(bad.http_status(), StatusCode::BAD_REQUEST);
    }

    /// Scenario: a request refused for its missing or wrong token.
    /// Guarantees: `Unauthenticated` / 401 without a retry hint, labelled `unauthenticated`.
    #[test]
    fn a_missing_token_is_unauthenticated_and_not_retryable() {
        let r = Refusal::Unauthenticated("missing or empty authorization header".into());
        assert_eq!(r.to_grpc_status().code(), Code::Unauthenticated);
        assert!(r.to_grpc_status().get_details_retry_info().is_none());
        assert_eq!(r.http_status(), StatusCode::UNAUTHORIZED);
        assert_eq!((r.retry_after(), r.reason()), (None, "unauthenticated"));
    }
}
