//! Component tests of the OTLP/HTTP exporter against a real axum server on `127.0.0.1:0`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otelspool::exporters::{
    BuildError, Compression, OtlpHttpEndpoints, OtlpHttpExporter, OtlpHttpExporterSettings,
    RetryAction, TlsSettings,
};
use otelspool::pipeline::Signal;
use prost::Message;

const TOKEN: &str = "auth_secret_token_456";

#[derive(Clone, Debug)]
enum Behavior {
    Accept,
    PartialSuccessGzip(i64, &'static str),
    Status {
        code: u16,
        retry_after: Option<&'static str>,
        body: String,
    },
    RpcStatus(u16, &'static str),
    Sleep(Duration),
}

#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    /// The request body, inflated if it says gzip or zstd.
    fn plain_body(&self) -> Vec<u8> {
        let encoding = self.headers.get("content-encoding");
        if encoding.is_some_and(|v| v == "zstd") {
            zstd::decode_all(&self.body[..]).unwrap()
        } else if encoding.is_some_and(|v| v == "gzip") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&self.body[..])
                .read_to_end(&mut out)
                .unwrap();
            out
        } else {
            self.body.to_vec()
        }
    }
}

#[derive(Clone)]
struct Backend {
    behavior: Arc<Mutex<Behavior>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Backend {
    fn new(behavior: Behavior) -> Self {
        Self {
            behavior: Arc::new(Mutex::new(behavior)),
            received: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

async fn handle(
    State(backend): State<Backend>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    backend.received.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let behavior = backend.behavior.lock().unwrap().clone();
    let protobuf = |status: u16, body: Vec<u8>| {
        Response::builder()
            .status(status)
            .header("content-type", "application/x-protobuf")
            .body(Body::from(body))
            .unwrap()
    };
    match behavior {
        Behavior::Accept => protobuf(200, ExportLogsServiceResponse::default().encode_to_vec()),
        Behavior::PartialSuccessGzip(n, msg) => {
            let response = ExportLogsServiceResponse {
                partial_success: Some(ExportLogsPartialSuccess {
                    rejected_log_records: n,
                    error_message: msg.into(),
                }),
            };
            let mut r = protobuf(200, gzip(&response.encode_to_vec()));
            r.headers_mut()
                .insert("content-encoding", "gzip".parse().unwrap());
            r
        }
        Behavior::Status {
            code,
            retry_after,
            body,
        } => {
            let mut builder = Response::builder()
                .status(StatusCode::from_u16(code).unwrap())
                .header("content-type", "text/plain");
            if let Some(value) = retry_after {
                builder = builder.header("retry-after", value);
            }
            builder.body(Body::from(body)).unwrap()
        }
        Behavior::RpcStatus(code, message) => {
            let status = tonic_types::pb::Status {
                code: 3,
                message: message.into(),
                details: vec![],
            };
            protobuf(code, status.encode_to_vec())
        }
        Behavior::Sleep(d) => {
            tokio::time::sleep(d).await;
            protobuf(200, Vec::new())
        }
    }
}

async fn start(backend: &Backend) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/v1/logs", post(handle))
        .route("/v1/traces", post(handle))
        .route("/custom/logs", post(handle))
        .with_state(backend.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn settings(addr: SocketAddr) -> OtlpHttpExporterSettings {
    OtlpHttpExporterSettings {
        endpoints: OtlpHttpEndpoints::from_base(&format!("http://{addr}")),
        headers: vec![
            ("Authorization".into(), format!("Bearer {TOKEN}")),
            ("Dash0-Dataset".into(), "prod-logs".into()),
        ],
        compression: Compression::default(),
        timeout: Duration::from_secs(5),
        tls: TlsSettings::default(),
    }
}

fn sample_logs(n: usize) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: (0..n)
                    .map(|i| LogRecord {
                        time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(format!("line {i}"))),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn export_err(behavior: Behavior) -> otelspool::exporters::ExportError {
    let backend = Backend::new(behavior);
    let addr = start(&backend).await;
    let exporter = OtlpHttpExporter::new(settings(addr)).unwrap();
    let body = Bytes::from(sample_logs(1).encode_to_vec());
    exporter.export(Signal::Logs, body).await.unwrap_err()
}

/// Scenario: a gzip-configured exporter POSTs an encoded logs request with auth headers.
/// Guarantees: it arrives at /v1/logs as gzip protobuf that decodes to the records sent, with
/// both headers.
#[tokio::test]
async fn delivers_the_encoded_request_gzipped_with_headers() {
    let backend = Backend::new(Behavior::Accept);
    let addr = start(&backend).await;
    let exporter = OtlpHttpExporter::new(settings(addr)).unwrap();
    let request = sample_logs(20);

    let accepted = exporter
        .export(Signal::Logs, Bytes::from(request.encode_to_vec()))
        .await
        .unwrap();

    assert_eq!(accepted.rejected_items, 0);
    let received = backend.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.path, "/v1/logs");
    assert_eq!(r.headers["content-type"], "application/x-protobuf");
    assert_eq!(r.headers["content-encoding"], "gzip");
    assert_eq!(
        r.headers["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
    assert_eq!(r.headers["dash0-dataset"], "prod-logs");
    let decoded = ExportLogsServiceRequest::decode(&r.plain_body()[..]).unwrap();
    assert_eq!(decoded, request);
}

/// Scenario: zstd at level 3 and gzip at level 9, with a small body and one compressed on
/// the blocking pool.
/// Guarantees: `Content-Encoding` names the compression and the body inflates to the records
/// sent.
#[tokio::test]
async fn zstd_and_gzip_levels_arrive_with_their_content_encoding() {
    let backend = Backend::new(Behavior::Accept);
    let addr = start(&backend).await;
    for (compression, name) in [
        (Compression::zstd(3), "zstd"),
        (Compression::gzip(9), "gzip"),
    ] {
        let exporter = OtlpHttpExporter::new(OtlpHttpExporterSettings {
            compression,
            ..settings(addr)
        })
        .unwrap();
        for n in [2, 2_000] {
            let request = sample_logs(n);
            exporter
                .export(Signal::Logs, Bytes::from(request.encode_to_vec()))
                .await
                .unwrap();
            let received = backend.received();
            let r = received.last().unwrap();
            assert_eq!(r.headers["content-encoding"], name);
            let decoded = ExportLogsServiceRequest::decode(&r.plain_body()[..]).unwrap();
            assert_eq!(decoded, request, "{compression:?} n={n}");
        }
    }
}

/// Scenario: compression is off.
/// Guarantees: the body on the wire is byte-for-byte the queued payload.
#[tokio::test]
async fn sends_the_exact_bytes_when_uncompressed() {
    let backend = Backend::new(Behavior::Accept);
    let addr = start(&backend).await;
    let exporter = OtlpHttpExporter::new(OtlpHttpExporterSettings {
        compression: Compression::None,
        ..settings(addr)
    })
    .unwrap();
    let body = Bytes::from(sample_logs(5).encode_to_vec());

    exporter.export(Signal::Logs, body.clone()).await.unwrap();

    let received = backend.received();
    assert!(received[0].headers.get("content-encoding").is_none());
    assert_eq!(received[0].body, body);
}

/// Scenario: the signal is traces and the logs URL is overridden.
/// Guarantees: each signal goes to its own URL.
#[tokio::test]
async fn each_signal_goes_to_its_url() {
    let backend = Backend::new(Behavior::Accept);
    let addr = start(&backend).await;
    let mut s = settings(addr);
    s.endpoints = s
        .endpoints
        .with_signal_endpoint(Signal::Logs, format!("http://{addr}/custom/logs"));
    let exporter = OtlpHttpExporter::new(s).unwrap();

    exporter.export(Signal::Traces, Bytes::new()).await.unwrap();
    exporter.export(Signal::Logs, Bytes::new()).await.unwrap();

    let paths: Vec<String> = backend.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec!["/v1/traces", "/custom/logs"]);
}

/// Scenario: the backend accepts part of the request and answers with a gzip body.
/// Guarantees: the response is gunzipped and the rejected count and message come back.
#[tokio::test]
async fn partial_success_reports_rejected_count() {
    let backend = Backend::new(Behavior::PartialSuccessGzip(3, "3 records too large"));
    let addr = start(&backend).await;
    let exporter = OtlpHttpExporter::new(settings(addr)).unwrap();

    let accepted = exporter
        .export(Signal::Logs, Bytes::from(sample_logs(5).encode_to_vec()))
        .await
        .unwrap();

    assert_eq!(accepted.rejected_items, 3);
    assert_eq!(accepted.message, "3 records too large");
}

/// Scenario: the backend answers 503 with `Retry-After: 7`.
/// Guarantees: retryable after 7 s.
#[tokio::test]
async fn service_unavailable_honours_retry_after() {
    let err = export_err(Behavior::Status {
        code: 503,
        retry_after: Some("7"),
        body: "busy".into(),
    })
    .await;
    assert_eq!(
        err.action,
        RetryAction::Retry {
            after: Some(Duration::from_secs(7))
        }
    );
    assert!(err.reason.contains("503"), "{}", err.reason);
}

/// Scenario: the backend answers 429 without `Retry-After`.
/// Guarantees: retryable without a server delay.
#[tokio::test]
async fn too_many_requests_is_retryable() {
    let err = export_err(Behavior::Status {
        code: 429,
        retry_after: None,
        body: String::new(),
    })
    .await;
    assert_eq!(err.action, RetryAction::Retry { after: None });
}

/// Scenario: the backend answers 400 with a protobuf `google.rpc.Status`.
/// Guarantees: permanent; the reason carries its message and never the token.
#[tokio::test]
async fn bad_request_is_permanent_with_the_status_message() {
    let err = export_err(Behavior::RpcStatus(400, "invalid resource attributes")).await;
    assert_eq!(err.action, RetryAction::DontRetry);
    assert!(
        err.reason.contains("invalid resource attributes"),
        "{}",
        err.reason
    );
    assert!(!err.reason.contains(TOKEN));
}

/// Scenario: the backend answers 500 with a 10 kB text body and a `Retry-After`.
/// Guarantees: permanent (as otlphttp), and the body in the reason is truncated.
#[tokio::test]
async fn internal_error_is_permanent_and_body_is_truncated() {
    let err = export_err(Behavior::Status {
        code: 500,
        retry_after: Some("1"),
        body: "e".repeat(10_000),
    })
    .await;
    assert_eq!(err.action, RetryAction::DontRetry);
    assert!(err.reason.len() < 1_000, "{} bytes", err.reason.len());
}

/// Scenario: nothing listens on the port.
/// Guarantees: building succeeds and the export fails retryably.
#[tokio::test]
async fn stopped_backend_gives_a_retryable_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let exporter = OtlpHttpExporter::new(settings(addr)).unwrap();

    let err = exporter
        .export(Signal::Logs, Bytes::from_static(b"\x0a\x00"))
        .await
        .unwrap_err();

    assert!(err.is_retryable(), "{err}");
    assert!(!err.reason.contains(TOKEN));
}

/// Scenario: the backend takes 3 s and the timeout is 300 ms.
/// Guarantees: the export gives up near the timeout with a retryable error.
#[tokio::test]
async fn slow_backend_times_out_retryably() {
    let backend = Backend::new(Behavior::Sleep(Duration::from_secs(3)));
    let addr = start(&backend).await;
    let exporter = OtlpHttpExporter::new(OtlpHttpExporterSettings {
        timeout: Duration::from_millis(300),
        ..settings(addr)
    })
    .unwrap();

    let started = Instant::now();
    let err = exporter
        .export(Signal::Logs, Bytes::from(sample_logs(1).encode_to_vec()))
        .await
        .unwrap_err();

    assert!(err.is_retryable(), "{err}");
    assert!(err.reason.contains("timed out"), "{}", err.reason);
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// Scenario: settings the HTTP client cannot honour or that are malformed.
/// Guarantees: building fails with a clear error and never echoes header values.
#[tokio::test]
async fn invalid_settings_fail_to_build() {
    let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let mut s = settings(addr);
    s.tls.server_name_override = Some("localhost".into());
    assert!(matches!(
        OtlpHttpExporter::new(s),
        Err(BuildError::Unsupported(_))
    ));

    let mut s = settings(addr);
    s.endpoints = OtlpHttpEndpoints::from_base("ftp://example.invalid");
    assert!(matches!(
        OtlpHttpExporter::new(s),
        Err(BuildError::InvalidEndpoint { .. })
    ));

    let mut s = settings(addr);
    s.headers = vec![("Authorization".into(), format!("Bearer {TOKEN}\n"))];
    let err = OtlpHttpExporter::new(s).unwrap_err();
    assert!(matches!(err, BuildError::InvalidHeader { .. }), "{err}");
    assert!(!err.to_string().contains(TOKEN));
}
