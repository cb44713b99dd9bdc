//! Sending one export request once, over OTLP/gRPC or OTLP/HTTP (protobuf), and deciding what
//! its answer means the way the OpenTelemetry SDKs do.
//!
//! Retryable: gRPC `UNAVAILABLE`, `RESOURCE_EXHAUSTED`, `DEADLINE_EXCEEDED`, `CANCELLED`,
//! `ABORTED`, `OUT_OF_RANGE`, `DATA_LOSS`, and `UNKNOWN`/`INTERNAL` raised by the transport itself
//! (a connection that broke mid-call); HTTP 429, 502, 503, 504; connection errors and timeouts.
//! Everything else is a permanent failure. A `google.rpc.RetryInfo` or `Retry-After` is passed
//! on as the server's requested delay.

use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use prost::Message as _;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt as _;

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted; `rejected` items were reported in `partial_success`.
    Ok {
        /// Items the server said it rejected.
        rejected: i64,
    },
    /// Worth retrying, after at least `after` if the server said so.
    Retry {
        /// The server's requested delay (RetryInfo / Retry-After).
        after: Option<Duration>,
        /// Short reason, for counting.
        reason: String,
    },
    /// A permanent failure: do not retry.
    Fail {
        /// Short reason, for counting.
        reason: String,
    },
}

/// Which protocol to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies, to `/v1/logs`.
    Http,
}

/// One client connection (gRPC channel or HTTP client); cheap to clone.
#[derive(Clone, Debug)]
pub enum Transport {
    /// A lazily connecting gRPC channel that reconnects on its own.
    Grpc(LogsServiceClient<Channel>),
    /// An HTTP client and the full URL of `/v1/logs`.
    Http(reqwest::Client, String),
}

/// A request ready to send, encoded once for HTTP.
#[derive(Clone, Debug)]
pub enum Payload {
    /// The message, for tonic's codec.
    Grpc(ExportLogsServiceRequest),
    /// The protobuf bytes.
    Http(Bytes),
}

impl Transport {
    /// A new connection to `endpoint` (`host:port`).
    pub fn connect(protocol: Protocol, endpoint: &str) -> anyhow::Result<Self> {
        match protocol {
            Protocol::Grpc => {
                let channel = Endpoint::from_shared(format!("http://{endpoint}"))?
                    .connect_timeout(Duration::from_secs(1))
                    .http2_keep_alive_interval(Duration::from_secs(2))
                    .keep_alive_timeout(Duration::from_secs(2))
                    .keep_alive_while_idle(true)
                    .tcp_nodelay(true)
                    .connect_lazy();
                Ok(Transport::Grpc(
                    LogsServiceClient::new(channel).max_decoding_message_size(16 << 20),
                ))
            }
            Protocol::Http => {
                // reqwest is built without a default TLS provider; plain http never uses it,
                // but the builder insists on one. Another install having won is fine.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let client = reqwest::Client::builder()
                    .no_proxy()
                    .connect_timeout(Duration::from_secs(1))
                    .tcp_nodelay(true)
                    .build()?;
                Ok(Transport::Http(
                    client,
                    format!("http://{endpoint}/v1/logs"),
                ))
            }
        }
    }

    /// Prepares a request for this transport.
    pub fn payload(&self, request: ExportLogsServiceRequest) -> Payload {
        match self {
            Transport::Grpc(_) => Payload::Grpc(request),
            Transport::Http(..) => Payload::Http(Bytes::from(request.encode_to_vec())),
        }
    }

    /// Sends `payload` once, giving up after `timeout`.
    pub async fn attempt(&mut self, payload: &Payload, timeout: Duration) -> Outcome {
        match (self, payload) {
            (Transport::Grpc(client), Payload::Grpc(message)) => {
                let mut request = tonic::Request::new(message.clone());
                request.set_timeout(timeout);
                match tokio::time::timeout(timeout, client.export(request)).await {
                    Err(_) => Outcome::Retry {
                        after: None,
                        reason: "grpc deadline_exceeded (client timeout)".into(),
                    },
                    Ok(Ok(response)) => Outcome::Ok {
                        rejected: response
                            .get_ref()
                            .partial_success
                            .as_ref()
                            .map_or(0, |p| p.rejected_log_records),
                    },
                    Ok(Err(status)) => grpc_outcome(&status),
                }
            }
            (Transport::Http(client, url), Payload::Http(body)) => {
                let sent = client
                    .post(url.as_str())
                    .header("content-type", "application/x-protobuf")
                    .timeout(timeout)
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Err(e) => http_error_outcome(&e),
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let after = retry_after(response.headers());
                        // Read the body so the connection can be reused.
                        let body = response.bytes().await;
                        http_outcome(status, after, body.ok().as_deref())
                    }
                }
            }
            _ => Outcome::Fail {
                reason: "payload prepared for another protocol".into(),
            },
        }
    }
}

/// Classifies a gRPC status.
pub fn grpc_outcome(status: &tonic::Status) -> Outcome {
    let code = status.code();
    let name = format!("grpc {code:?}").to_lowercase();
    let from_transport = std::error::Error::source(status).is_some();
    let retryable = matches!(
        code,
        Code::Unavailable
            | Code::ResourceExhausted
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Aborted
            | Code::OutOfRange
            | Code::DataLoss
    ) || (matches!(code, Code::Unknown | Code::Internal)
        && (from_transport || status.message().contains("h2 protocol error")));
    if retryable {
        let after = status
            .get_error_details()
            .retry_info()
            .and_then(|info| info.retry_delay);
        Outcome::Retry {
            after,
            reason: name,
        }
    } else {
        Outcome::Fail { reason: name }
    }
}

fn http_error_outcome(error: &reqwest::Error) -> Outcome {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_builder() {
        return Outcome::Fail {
            reason: "http bad request".into(),
        };
    } else {
        "connection"
    };
    Outcome::Retry {
        after: None,
        reason: format!("http {kind} error"),
    }
}

/// Classifies an HTTP answer.
pub fn http_outcome(status: u16, after: Option<Duration>, body: Option<&[u8]>) -> Outcome {
    match status {
        200..=299 => {
            let rejected = body
                .and_then(|b| {
                    opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse::decode(b)
                        .ok()
                })
                .and_then(|r| r.partial_success)
                .map_or(0, |p| p.rejected_log_records);
            Outcome::Ok { rejected }
        }
        429 | 502 | 503 | 504 => Outcome::Retry {
            after,
            reason: format!("http {status}"),
        },
        _ => Outcome::Fail {
            reason: format!("http {status}"),
        },
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tonic_types::ErrorDetails;

    #[test]
    fn grpc_codes_are_classified_like_the_sdks() {
        assert!(matches!(
            grpc_outcome(&tonic::Status::unavailable("x")),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            grpc_outcome(&tonic::Status::invalid_argument("x")),
            Outcome::Fail { .. }
        ));
        assert!(matches!(
            grpc_outcome(&tonic::Status::internal("server bug")),
            Outcome::Fail { .. }
        ));
        let throttled = tonic::Status::with_error_details(
            Code::ResourceExhausted,
            "slow down",
            ErrorDetails::with_retry_info(Some(Duration::from_millis(700))),
        );
        assert_eq!(
            grpc_outcome(&throttled),
            Outcome::Retry {
                after: Some(Duration::from_millis(700)),
                reason: "grpc resourceexhausted".into()
            }
        );
    }

    #[test]
    fn http_statuses_are_classified_like_the_sdks() {
        assert_eq!(http_outcome(200, None, None), Outcome::Ok { rejected: 0 });
        for status in [429, 502, 503, 504] {
            assert!(matches!(
                http_outcome(status, None, None),
                Outcome::Retry { .. }
            ));
        }
        for status in [400, 404, 413, 500] {
            assert!(matches!(
                http_outcome(status, None, None),
                Outcome::Fail { .. }
            ));
        }
    }
}
