//! Component tests of the OTLP/gRPC exporter against a real tonic server on `127.0.0.1:0`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use otelspool::exporters::{
    BuildError, Compression, OtlpExporterSettings, OtlpGrpcExporter, RetryAction, TlsSettings,
};
use otelspool::pipeline::Signal;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataMap;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBnzCCAUWgAwIBAgIUarUBHAuB8q9Yx4W7fYK1Nk+UGFkwCgYIKoZIzj0EAwIw
HDEaMBgGA1UEAwwRb3RlbHNwb29sIHRlc3QgQ0EwIBcNMjYxMTI1MDgwMTE3WhgP
MjEyNjExMDEwODAxMTdaMBwxGjAYBgNVBAMMEW90ZWxzcG9vbCB0ZXN0IENBMFkw
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEW770D3A/0Vuwft6kzOFJ6ujpmLshRsZ/
kF49iWGCG2csDvnEnpqcwLNMt4ufNPnpth0LXDbZ+Kj33nIHOYvGoaNjMGEwHQYD
VR0OBBYEFN3F85nFKqxqB6eIO3PKwDt3BXaCMB8GA1UdIwQYMBaAFN3F85nFKqxq
B6eIO3PKwDt3BXaCMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgIEMAoG
CCqGSM49BAMCA0gAMEUCIQC/PSRWw1NMiiMDt9WGfxwT5Q9jSSP4fr6stfg2slMm
mgIgIYS5HvL+r/JnqLjoGjo9h1Wqk63iY0HtDKk//Y6DEOE=
-----END CERTIFICATE-----
";

/// Leaf for `localhost` and `127.0.0.1`, signed by `CA_PEM`, valid until 2126.
const SERVER_CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBxjCCAW2gAwIBAgIUUzyC1cB8QEQV9CZ0dOrG96VetPswCgYIKoZIzj0EAwIw
HDEaMBgGA1UEAwwRb3RlbHNwb29sIHRlc3QgQ0EwIBcNMjYxMTI1MDgwMTE3WhgP
MjEyNjExMDEwODAxMTdaMBQxEjAQBgNVBAMMCWxvY2FsaG9zdDBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABODUMJrpu1+k8xD6GvL4EvLCuJlTI6j3wKLqsexCXF8U
h5ueQCa0iVdWJdJi6qhS16n772ojuGUcMmN0dhXH4cKjgZIwgY8wDAYDVR0TAQH/
BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwEwGgYDVR0R
BBMwEYIJbG9jYWxob3N0hwR/AAABMB0GA1UdDgQWBBRe3YRKOoKwS5o0rWtZv079
Q1iiGzAfBgNVHSMEGDAWgBTdxfOZxSqsageniDtzysA7dwV2gjAKBggqhkjOPQQD
AgNHADBEAiB720xaXBK8cfpcu6udLt217eswkNTeDQlGBAoBadkU6gIgANa1EGFl
j/ZXfOQaR1waKLXQzt9FR9zJDHiueJgBRwQ=
-----END CERTIFICATE-----
";

const SERVER_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfrFFd+WL9QpGdVA8
rkB2oxhxBxS0GqagIwebqo1ju9qhRANCAATg1DCa6btfpPMQ+hry+BLywriZUyOo
98Ci6rHsQlxfFIebnkAmtIlXViXSYuqoUtep++9qI7hlHDJjdHYVx+HC
-----END PRIVATE KEY-----
";

const TOKEN: &str = "auth_secret_token_123";

/// How the test backend answers.
#[derive(Clone, Debug)]
enum Behavior {
    Accept,
    PartialSuccess(i64, &'static str),
    Fail(Code, &'static str),
    ResourceExhaustedWithRetryInfo(Duration),
    Sleep(Duration),
}

#[derive(Clone, Debug)]
struct Received {
    logs: Option<ExportLogsServiceRequest>,
    traces: Option<ExportTraceServiceRequest>,
    metadata: MetadataMap,
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

    /// Records the request, then answers per `behavior`; `Ok(rejected)` on success.
    async fn answer(&self, received: Received) -> Result<Option<(i64, &'static str)>, Status> {
        self.received.lock().unwrap().push(received);
        let behavior = self.behavior.lock().unwrap().clone();
        match behavior {
            Behavior::Accept => Ok(None),
            Behavior::PartialSuccess(n, msg) => Ok(Some((n, msg))),
            Behavior::Fail(code, msg) => Err(Status::new(code, msg)),
            Behavior::ResourceExhaustedWithRetryInfo(delay) => Err(Status::with_error_details(
                Code::ResourceExhausted,
                "slow down",
                ErrorDetails::with_retry_info(Some(delay)),
            )),
            Behavior::Sleep(d) => {
                tokio::time::sleep(d).await;
                Ok(None)
            }
        }
    }
}

#[tonic::async_trait]
impl LogsService for Backend {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let (metadata, _, logs) = request.into_parts();
        let received = Received {
            logs: Some(logs),
            traces: None,
            metadata,
        };
        let partial = self.answer(received).await?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: partial.map(|(n, msg)| ExportLogsPartialSuccess {
                rejected_log_records: n,
                error_message: msg.into(),
            }),
        }))
    }
}

#[tonic::async_trait]
impl TraceService for Backend {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let (metadata, _, traces) = request.into_parts();
        let received = Received {
            logs: None,
            traces: Some(traces),
            metadata,
        };
        let partial = self.answer(received).await?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: partial.map(|(n, msg)| ExportTracePartialSuccess {
                rejected_spans: n,
                error_message: msg.into(),
            }),
        }))
    }
}

/// Starts the backend's logs service on `127.0.0.1:0` (plaintext, or TLS with the test
/// certificate).
async fn start(backend: &Backend, tls: bool) -> SocketAddr {
    start_signal(backend, tls, Signal::Logs).await
}

/// Starts one of the backend's services (this tonic build has no multi-service router).
async fn start_signal(backend: &Backend, tls: bool, signal: Signal) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let logs = LogsServiceServer::new(backend.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(16 << 20)
        .send_compressed(CompressionEncoding::Gzip);
    let traces = TraceServiceServer::new(backend.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    let mut builder = Server::builder();
    if tls {
        let identity = Identity::from_pem(SERVER_CERT_PEM, SERVER_KEY_PEM);
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(identity))
            .unwrap();
    }
    let incoming = TcpIncoming::from(listener);
    match signal {
        Signal::Traces => tokio::spawn(builder.serve_with_incoming(traces, incoming)),
        _ => tokio::spawn(builder.serve_with_incoming(logs, incoming)),
    };
    addr
}

fn settings(addr: SocketAddr) -> OtlpExporterSettings {
    OtlpExporterSettings {
        endpoint: format!("http://{addr}"),
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
    let text = |s: String| AnyValue {
        value: Some(any_value::Value::StringValue(s)),
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(text("checkout".into())),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: (0..n)
                    .map(|i| LogRecord {
                        time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
                        severity_text: "INFO".into(),
                        body: Some(text(format!("log line {i} {}", "x".repeat(64)))),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn encoded(request: &impl Message) -> Bytes {
    Bytes::from(request.encode_to_vec())
}

/// Scenario: a gzip-configured exporter sends an encoded logs request with auth headers.
/// Guarantees: the backend decodes exactly the records sent, received gzip, and saw both headers.
#[tokio::test]
async fn delivers_the_encoded_request_unchanged_with_gzip_and_headers() {
    let backend = Backend::new(Behavior::Accept);
    let addr = start(&backend, false).await;
    let exporter = OtlpGrpcExporter::new(settings(addr)).unwrap();
    let request = sample_logs(50);

    let accepted = exporter
        .export(Signal::Logs, encoded(&request))
        .await
        .unwrap();

    assert_eq!(accepted.rejected_items, 0);
    let received = backend.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].logs.as_ref(), Some(&request));
    let md = &received[0].metadata;
    assert_eq!(md.get("grpc-encoding").unwrap(), "gzip");
    assert_eq!(
        md.get("authorization").unwrap(),
        format!("Bearer {TOKEN}").as_str()
    );
    assert_eq!(md.get("dash0-dataset").unwrap(), "prod-logs");
}

/// Scenario: zstd at levels 1 and 19 and gzip at level 1, each with a small request and one
/// larger than the size compressed on the blocking pool.
/// Guarantees: the backend decodes exactly the records sent, and `grpc-encoding` names the
/// compression configured.
#[tokio::test]
async fn zstd_and_gzip_levels_deliver_the_request_unchanged() {
    let backend = Backend::new(Behavior::Accept);
    let addr = start(&backend, false).await;
    let cases = [
        (Compression::zstd(1), "zstd"),
        (Compression::zstd(19), "zstd"),
        (Compression::gzip(1), "gzip"),
    ];
    for (compression, name) in cases {
        let exporter = OtlpGrpcExporter::new(OtlpExporterSettings {
            compression,
            ..settings(addr)
        })
        .unwrap();
        for n in [3, 2_000] {
            let request = sample_logs(n);
            let body = encoded(&request);
            assert_eq!(
                n > 100,
                body.len() > otelspool::exporters::compression::INLINE_LIMIT
            );
            exporter.export(Signal::Logs, body).await.unwrap();
            let received = backend.received();
            let last = received.last().unwrap();
            assert_eq!(last.logs.as_ref(), Some(&request), "{compression:?}");
            assert_eq!(last.metadata.get("grpc-encoding").unwrap(), name);
        }
    }
}

/// Scenario: compression is off.
/// Guarantees: the request arrives intact and without `grpc-encoding: gzip`.
#[tokio::test]
async fn sends_uncompressed_when_compression_is_none() {
    let backend = Backend::new(Behavior::Accept);
    let addr = start(&backend, false).await;
    let exporter = OtlpGrpcExporter::new(OtlpExporterSettings {
        compression: Compression::None,
        ..settings(addr)
    })
    .unwrap();
    let request = sample_logs(3);

    exporter
        .export(Signal::Logs, encoded(&request))
        .await
        .unwrap();

    let received = backend.received();
    assert_eq!(received[0].logs.as_ref(), Some(&request));
    assert!(received[0].metadata.get("grpc-encoding").is_none());
}

/// Scenario: the backend accepts part of a logs request and answers with a gzip response.
/// Guarantees: the rejected count and message come back in `Accepted`.
#[tokio::test]
async fn partial_success_reports_rejected_log_records() {
    let backend = Backend::new(Behavior::PartialSuccess(2, "2 records too old"));
    let addr = start(&backend, false).await;
    let exporter = OtlpGrpcExporter::new(settings(addr)).unwrap();

    let accepted = exporter
        .export(Signal::Logs, encoded(&sample_logs(5)))
        .await
        .unwrap();

    assert_eq!(accepted.rejected_items, 2);
    assert_eq!(accepted.message, "2 records too old");
}

/// Scenario: a traces request goes to the trace service, which rejects some spans.
/// Guarantees: the signal selects the gRPC method and the response type (`rejected_spans`).
#[tokio::test]
async fn traces_go_to_the_trace_service() {
    let backend = Backend::new(Behavior::PartialSuccess(4, "spans dropped"));
    let addr = start_signal(&backend, false, Signal::Traces).await;
    let exporter = OtlpGrpcExporter::new(settings(addr)).unwrap();
    let request = ExportTraceServiceRequest::default();

    let accepted = exporter
        .export(Signal::Traces, encoded(&request))
        .await
        .unwrap();

    assert_eq!(accepted.rejected_items, 4);
    let received = backend.received();
    assert_eq!(received[0].traces.as_ref(), Some(&request));
    assert!(received[0].logs.is_none());
}

/// Scenario: the backend answers Unavailable.
/// Guarantees: the error is retryable, without a server delay.
#[tokio::test]
async fn unavailable_is_retryable() {
    let backend = Backend::new(Behavior::Fail(Code::Unavailable, "overloaded"));
    let addr = start(&backend, false).await;
    let exporter = OtlpGrpcExporter::new(settings(addr)).unwrap();

    let err = exporter
        .export(Signal::Logs, encoded(&sample_logs(1)))
        .await
        .unwrap_err();

    assert_eq!(err.action, RetryAction::Retry { after: None });
    assert!(err.reason.contains("overloaded"), "{}", err.reason);
}

/// Scenario: the backend answers ResourceExhausted with a RetryInfo of 3 s.
/// Guarantees: retryable, and the 3 s delay comes through as `after`.
#[tokio::test]
async fn resource_exhausted_with_retry_info_is_retried_after_its_delay() {
    let backend = Backend::new(Behavior::ResourceExhaustedWithRetryInfo(
        Duration::from_secs(3),
    ));
    let addr = start(&backend, false).await;
    let exporter = OtlpGrpcExporter::new(settings(addr)).unwrap();

    let err = exporter
        .export(Signal::Logs, encoded(&sample_logs(1)))
        .await
        .unwrap_err();

    assert_eq!(
        err.action,
        RetryAction::Retry {
            after: Some(Duration::from_secs(3))
        }
    );
}

/// Scenario: the backend throttles with ResourceExhausted and no RetryInfo.
/// Guarantees: retried (otelcol drops it, losing throttled data); a size-limit refusal with
/// the same code stays permanent.
#[tokio::test]
async fn resource_exhausted_without_retry_info_is_retried_unless_about_size() {
    let backend = Backend::new(Behavior::Fail(Code::ResourceExhausted, "quota exceeded"));
    let addr = start(&backend, false).await;
    let exporter = OtlpGrpcExporter::new(settings(addr)).unwrap();
    let err = exporter
        .export(Signal::Logs, encoded(&sample_logs(1)))
        .await
        .unwrap_err();
    assert_eq!(err.action, RetryAction::Retry { after: None });

    let backend = Backend::new(Behavior::Fail(
        Code::ResourceExhausted,
        "grpc: received message larger than max (5000000 vs. 4194304)",
    ));
    let addr = start(&backend, false).await;
    let exporter = OtlpGrpcExporter::new(settings(addr)).unwrap();
    let err = exporter
        .export(Signal::Logs, encoded(&sample_logs(1)))
        .await
        .unwrap_err();
    assert_eq!(err.action, RetryAction::DontRetry);
}

/// Scenario: the backend answers InvalidArgument.
/// Guarantees: permanent; the reason carries the backend message but never the token.
#[tokio::test]
async fn invalid_argument_is_permanent_and_reason_hides_the_token() {
    let backend = Backend::new(Behavior::Fail(Code::InvalidArgument, "bad resource"));
    let addr = start(&backend, false).await;
    let exporter = OtlpGrpcExporter::new(settings(addr)).unwrap();

    let err = exporter
        .export(Signal::Logs, encoded(&sample_logs(1)))
        .await
        .unwrap_err();

    assert_eq!(err.action, RetryAction::DontRetry);
    assert!(err.reason.contains("bad resource"), "{}", err.reason);
    assert!(err.reason.contains("InvalidArgument"), "{}", err.reason);
    assert!(!err.to_string().contains(TOKEN));
}

/// Scenario: the exporter is built while nothing listens on the port, then exports.
/// Guarantees: building succeeds (lazy connect) and the export fails retryably.
#[tokio::test]
async fn stopped_backend_gives_a_retryable_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let exporter = OtlpGrpcExporter::new(settings(addr)).unwrap();

    let err = exporter
        .export(Signal::Logs, encoded(&sample_logs(1)))
        .await
        .unwrap_err();

    assert!(err.is_retryable(), "{err}");
    assert!(err.reason.contains("Unavailable"), "{}", err.reason);
    assert!(!err.reason.contains(TOKEN));
}

/// Scenario: the backend takes 3 s to answer and the timeout is 300 ms.
/// Guarantees: the export gives up near the timeout with a retryable error.
#[tokio::test]
async fn slow_backend_times_out_retryably() {
    let backend = Backend::new(Behavior::Sleep(Duration::from_secs(3)));
    let addr = start(&backend, false).await;
    let exporter = OtlpGrpcExporter::new(OtlpExporterSettings {
        timeout: Duration::from_millis(300),
        ..settings(addr)
    })
    .unwrap();

    let started = Instant::now();
    let err = exporter
        .export(Signal::Logs, encoded(&sample_logs(1)))
        .await
        .unwrap_err();

    assert!(err.is_retryable(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// Scenario: a backend that recovers after an outage.
/// Guarantees: the same exporter delivers once the backend is back (no sticky failure).
#[tokio::test]
async fn same_exporter_recovers_when_backend_recovers() {
    let backend = Backend::new(Behavior::Fail(Code::Unavailable, "down"));
    let addr = start(&backend, false).await;
    let exporter = OtlpGrpcExporter::new(settings(addr)).unwrap();
    let body = encoded(&sample_logs(2));

    assert!(exporter.export(Signal::Logs, body.clone()).await.is_err());
    *backend.behavior.lock().unwrap() = Behavior::Accept;
    assert!(exporter.export(Signal::Logs, body).await.is_ok());
    assert_eq!(backend.received().len(), 2);
}

fn ca_file() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, CA_PEM.as_bytes()).unwrap();
    file
}

/// Scenario: a TLS backend whose certificate is signed by a private CA given as `ca_file`,
/// reached by IP with `server_name_override: localhost`.
/// Guarantees: the TLS handshake verifies and the request arrives intact.
#[tokio::test]
async fn tls_with_ca_file_and_server_name_override() {
    let backend = Backend::new(Behavior::Accept);
    let addr = start(&backend, true).await;
    let ca = ca_file();
    let exporter = OtlpGrpcExporter::new(OtlpExporterSettings {
        endpoint: format!("https://{addr}"),
        tls: TlsSettings {
            ca_file: Some(ca.path().to_owned()),
            server_name_override: Some("localhost".into()),
            ..TlsSettings::default()
        },
        ..settings(addr)
    })
    .unwrap();
    let request = sample_logs(4);

    exporter
        .export(Signal::Logs, encoded(&request))
        .await
        .unwrap();

    assert_eq!(backend.received()[0].logs.as_ref(), Some(&request));
}

/// Scenario: a TLS backend given as `host:port` (TLS because `insecure` is false), verified
/// against its IP address SAN.
/// Guarantees: scheme-less endpoints use TLS by default.
#[tokio::test]
async fn scheme_less_endpoint_uses_tls_by_default() {
    let backend = Backend::new(Behavior::Accept);
    let addr = start(&backend, true).await;
    let ca = ca_file();
    let exporter = OtlpGrpcExporter::new(OtlpExporterSettings {
        endpoint: addr.to_string(),
        tls: TlsSettings {
            ca_file: Some(ca.path().to_owned()),
            ..TlsSettings::default()
        },
        ..settings(addr)
    })
    .unwrap();

    exporter
        .export(Signal::Logs, encoded(&sample_logs(1)))
        .await
        .unwrap();

    assert_eq!(backend.received().len(), 1);
}

/// Scenario: a TLS backend with a certificate from an unknown CA and no `ca_file`.
/// Guarantees: nothing is delivered; the failure is retryable (or, on a host without system
/// roots, building reports a TLS error).
#[tokio::test]
async fn tls_with_unknown_ca_is_refused() {
    let backend = Backend::new(Behavior::Accept);
    let addr = start(&backend, true).await;
    let built = OtlpGrpcExporter::new(OtlpExporterSettings {
        endpoint: format!("https://{addr}"),
        ..settings(addr)
    });
    match built {
        Ok(exporter) => {
            let err = exporter
                .export(Signal::Logs, encoded(&sample_logs(1)))
                .await
                .unwrap_err();
            assert!(err.is_retryable(), "{err}");
        }
        Err(e) => assert!(matches!(e, BuildError::Tls(_)), "{e}"),
    }
    assert!(backend.received().is_empty());
}

/// Scenario: a TLS backend with an unknown CA and `insecure_skip_verify: true`.
/// Guarantees: the certificate is not checked and the request arrives.
#[tokio::test]
async fn tls_insecure_skip_verify_accepts_any_certificate() {
    let backend = Backend::new(Behavior::Accept);
    let addr = start(&backend, true).await;
    let exporter = OtlpGrpcExporter::new(OtlpExporterSettings {
        endpoint: format!("https://{addr}"),
        tls: TlsSettings {
            insecure_skip_verify: true,
            ..TlsSettings::default()
        },
        ..settings(addr)
    })
    .unwrap();

    exporter
        .export(Signal::Logs, encoded(&sample_logs(1)))
        .await
        .unwrap();

    assert_eq!(backend.received().len(), 1);
}

/// Scenario: settings with a missing CA file or a header value with a newline.
/// Guarantees: building fails with a clear error that does not contain the header value.
#[tokio::test]
async fn invalid_settings_fail_to_build() {
    let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let err = OtlpGrpcExporter::new(OtlpExporterSettings {
        endpoint: format!("https://{addr}"),
        tls: TlsSettings {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsSettings::default()
        },
        ..settings(addr)
    })
    .unwrap_err();
    assert!(matches!(err, BuildError::ReadCaFile { .. }), "{err}");

    let mut bad = settings(addr);
    bad.headers = vec![("Authorization".into(), format!("Bearer {TOKEN}\r\n"))];
    let err = OtlpGrpcExporter::new(bad).unwrap_err();
    assert!(matches!(err, BuildError::InvalidHeader { .. }), "{err}");
    assert!(!err.to_string().contains(TOKEN));
}

/// Scenario: the peer accepts the connection, reads part of the call, then drops the
/// connection (a backend killed mid-request, a proxy resetting it).
/// Guarantees: the failure is retryable (tonic reports it as Unknown/transport error; it must
/// not be mistaken for the server rejecting the data and sent to the dead-letter file).
#[tokio::test]
async fn a_connection_dropped_mid_call_is_retryable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        for _ in 0..4 {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 256];
            let _ = sock.read(&mut buf).await;
            // Close with RST. (SO_LINGER 0 only blocks on drop for a non-zero timeout.)
            #[allow(deprecated)]
            let _ = sock.set_linger(Some(Duration::ZERO));
            drop(sock);
        }
    });
    let exporter = OtlpGrpcExporter::new(settings(addr)).unwrap();
    let err = exporter
        .export(Signal::Logs, encoded(&sample_logs(1)))
        .await
        .unwrap_err();
    assert!(
        err.is_retryable(),
        "dropped connection classified as permanent: {err}"
    );
}
