//! Component tests that pin how real failures reach the exporters' retry decision, over real
//! sockets on 127.0.0.1: what tonic, hyper and reqwest hand us (types, codes, and where only
//! words exist, the exact words), so that a dependency upgrade that changes them breaks a test
//! here rather than stalling or dropping data in production.
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otelspool::exporters::error_chain::{TransportFailure, sources, transport_failure};
use otelspool::exporters::{
    Compression, OtlpExporterSettings, OtlpGrpcExporter, OtlpHttpExporter,
    OtlpHttpExporterSettings, RetryAction, classify_grpc,
};
use otelspool::pipeline::Signal;
use prost::Message;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status};

/// A logs service that answers every export with one fixed status.
#[derive(Clone)]
struct Refuse(Code, &'static str);

#[tonic::async_trait]
impl LogsService for Refuse {
    async fn export(
        &self,
        _request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        Err(Status::new(self.0, self.1))
    }
}

/// Serves `service` (with tonic's decoding limit set to `max_decoding` bytes) on 127.0.0.1.
async fn serve(service: Refuse, max_decoding: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = LogsServiceServer::new(service).max_decoding_message_size(max_decoding);
    tokio::spawn(
        Server::builder()
            .add_service(svc)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    addr
}

/// A port nothing listens on.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

fn logs(records: usize, body_bytes: usize) -> ExportLogsServiceRequest {
    let record = LogRecord {
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue("x".repeat(body_bytes))),
        }),
        ..LogRecord::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![record; records],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

/// The status a plain tonic client gets for `request` sent to `addr`.
async fn raw_status(addr: SocketAddr, request: ExportLogsServiceRequest) -> Status {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    LogsServiceClient::new(channel)
        .export(request)
        .await
        .unwrap_err()
}

async fn grpc_export(addr: SocketAddr, body: Bytes) -> otelspool::exporters::ExportError {
    let settings = OtlpExporterSettings {
        compression: Compression::None,
        timeout: Duration::from_secs(10),
        ..OtlpExporterSettings::new(format!("http://{addr}"))
    };
    let exporter = OtlpGrpcExporter::new(settings).unwrap();
    exporter.export(Signal::Logs, body).await.unwrap_err()
}

/// Scenario: a gRPC export to a port where nothing listens.
/// Guarantees (pinned tonic behaviour): tonic makes the status itself, `Unavailable`, with the
/// cause as its source; an `io::Error` of kind `ConnectionRefused` sits in that chain, so the
/// failure is a typed connect failure and retried.
#[tokio::test]
async fn a_refused_connection_is_a_typed_connect_failure() {
    let status = raw_status(closed_port().await, logs(1, 10)).await;
    assert_eq!(status.code(), Code::Unavailable);
    let source = std::error::Error::source(&status).expect("tonic keeps the cause");
    let kinds: Vec<_> = sources(source)
        .filter_map(|e| e.downcast_ref::<std::io::Error>().map(std::io::Error::kind))
        .collect();
    assert_eq!(kinds, vec![std::io::ErrorKind::ConnectionRefused]);
    assert_eq!(transport_failure(source), Some(TransportFailure::Connect));
    assert_eq!(classify_grpc(&status), RetryAction::Retry { after: None });
}

/// Scenario: the peer accepts the TCP connection, reads, then resets it mid-call.
/// Guarantees (pinned tonic/hyper behaviour): the status tonic makes carries a `hyper::Error`
/// in its source chain, a typed transport failure, so it is retried whatever its code.
#[tokio::test]
async fn a_connection_reset_mid_call_carries_a_typed_hyper_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 256];
            let _ = sock.read(&mut buf).await;
            #[allow(deprecated)]
            let _ = sock.set_linger(Some(Duration::ZERO));
            drop(sock);
        }
    });
    let status = raw_status(addr, logs(1, 10)).await;
    let source = std::error::Error::source(&status).expect("tonic keeps the cause");
    assert!(
        sources(source).any(|e| e.is::<hyper::Error>()),
        "no hyper::Error in {status:?}"
    );
    assert!(transport_failure(source).is_some());
    assert_eq!(classify_grpc(&status), RetryAction::Retry { after: None });
}

/// Scenario: a tonic server with a 1 KiB decoding limit receives a 4 KiB export.
/// Guarantees (pinned tonic behaviour, the one size refusal we can run here): the client gets
/// `OUT_OF_RANGE` with no source (the server's verdict) and the message tonic words as
/// "Error, decoded message length too large: found N bytes, the limit is: 1024 bytes"; the
/// exporter makes it permanent instead of retrying it forever.
#[tokio::test]
async fn a_tonic_servers_size_refusal_is_permanent() {
    let addr = serve(Refuse(Code::Ok, ""), 1024).await;
    let request = logs(1, 4096);
    let status = raw_status(addr, request.clone()).await;
    assert_eq!(status.code(), Code::OutOfRange);
    assert!(std::error::Error::source(&status).is_none());
    let len = request.encoded_len();
    assert_eq!(
        status.message(),
        format!(
            "Error, decoded message length too large: found {len} bytes, the limit is: 1024 bytes"
        )
    );

    let err = grpc_export(addr, request.encode_to_vec().into()).await;
    assert_eq!(err.action, RetryAction::DontRetry, "{err}");
}

/// Scenario: servers answer `RESOURCE_EXHAUSTED` without `RetryInfo`: one with grpc-go's exact
/// size-limit wording (what the OpenTelemetry Collector's receiver sends), one throttling.
/// Guarantees: the size refusal is permanent, the throttling retried.
#[tokio::test]
async fn resource_exhausted_is_permanent_only_for_a_known_size_refusal() {
    let body: Bytes = logs(1, 10).encode_to_vec().into();
    let go = "grpc: received message larger than max (5000000 vs. 4194304)";
    let addr = serve(Refuse(Code::ResourceExhausted, go), 1 << 20).await;
    let err = grpc_export(addr, body.clone()).await;
    assert_eq!(err.action, RetryAction::DontRetry, "{err}");

    let addr = serve(Refuse(Code::ResourceExhausted, "quota exceeded"), 1 << 20).await;
    let err = grpc_export(addr, body).await;
    assert_eq!(err.action, RetryAction::Retry { after: None }, "{err}");
}

/// Scenario: a server answers `INTERNAL` and `UNKNOWN` with messages that read like transport
/// failures ("transport error: connection reset", "h2 protocol error: broken pipe").
/// Guarantees: words decide nothing: these are the server's verdict, permanent as in otelcol.
#[tokio::test]
async fn a_servers_words_do_not_make_a_transport_failure() {
    let body: Bytes = logs(1, 10).encode_to_vec().into();
    for (code, message) in [
        (Code::Internal, "transport error: connection reset"),
        (Code::Unknown, "h2 protocol error: broken pipe"),
    ] {
        let addr = serve(Refuse(code, message), 1 << 20).await;
        let err = grpc_export(addr, body.clone()).await;
        assert_eq!(err.action, RetryAction::DontRetry, "{err}");
    }
}

/// Scenario: an OTLP/HTTP export to a port where nothing listens.
/// Guarantees (pinned reqwest behaviour): the `reqwest::Error` is typed `is_connect`, found as
/// a connect failure; the export is retryable and says it could not connect.
#[tokio::test]
async fn an_http_refused_connection_is_a_typed_connect_failure() {
    let addr = closed_port().await;
    let settings = OtlpHttpExporterSettings {
        compression: Compression::None,
        timeout: Duration::from_secs(10),
        ..OtlpHttpExporterSettings::new(&format!("http://{addr}"))
    };
    let exporter = OtlpHttpExporter::new(settings).unwrap();
    let err = exporter
        .export(Signal::Logs, logs(1, 10).encode_to_vec().into())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.reason.contains("could not connect"), "{err}");

    let e = reqwest::Client::new()
        .post(format!("http://{addr}/v1/logs"))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_connect(), "{e:?}");
    assert_eq!(transport_failure(&e), Some(TransportFailure::Connect));
}
