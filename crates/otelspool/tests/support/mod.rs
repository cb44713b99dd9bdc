//! Shared set-up of the delivery component tests: the testkit's checking backend served
//! in-process on `127.0.0.1:0`, a real queue in a temporary folder, and the consumer context
//! that joins them as `app::build` does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otelspool::delivery::{
    BackoffSettings, ConsumerContext, ConsumerSettings, DeadLetter, DeliveryStatus,
};
use otelspool::exporters::{Compression, Exporter, OtlpExporterSettings, OtlpGrpcExporter};
use otelspool::pipeline::Signal;
use otelspool::telemetry::Metrics;
use otelspool_queue::{BatchLimits, Queue, QueueOptions};
use otelspool_testkit::backend::{Backend, Mode, grpc};
use prost::Message;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The exporter id the tests use (the metrics label).
pub const EXPORTER_ID: &str = "otlp/test";

/// The testkit backend, serving OTLP/gRPC until dropped.
pub struct TestBackend {
    /// Its state: mode, counters, request log.
    pub backend: Arc<Backend>,
    /// Where it listens.
    pub addr: SocketAddr,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts the backend in `mode`, keeping its request log.
pub async fn start_backend(mode: Mode) -> TestBackend {
    let backend = Arc::new(Backend::open(None, mode).expect("backend"));
    backend.keep_request_log();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(grpc::serve(Arc::clone(&backend), listener, None));
    TestBackend {
        backend,
        addr,
        server,
    }
}

/// An uncompressed OTLP/gRPC exporter to `addr`.
pub fn grpc_exporter(addr: SocketAddr) -> Arc<Exporter> {
    let settings = OtlpExporterSettings {
        compression: Compression::None,
        timeout: Duration::from_secs(10),
        ..OtlpExporterSettings::new(format!("http://{addr}"))
    };
    Arc::new(Exporter::OtlpGrpc(
        OtlpGrpcExporter::new(settings).expect("exporter"),
    ))
}

/// A persistent queue in `dir` (fsync off: durability is not what these tests check).
pub fn open_queue(dir: PathBuf) -> Queue {
    let mut opts = QueueOptions::new("test", Some(dir));
    opts.fsync = false;
    Queue::open(opts).expect("queue").0
}

/// One log record with `body` and a valid 16-byte trace id.
pub fn record(body: &str) -> LogRecord {
    LogRecord {
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.to_owned())),
        }),
        trace_id: vec![0xab; 16],
        ..LogRecord::default()
    }
}

/// An encoded `ExportLogsServiceRequest` of `records`.
pub fn request(records: Vec<LogRecord>) -> Bytes {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
    .encode_to_vec()
    .into()
}

/// Appends one request per name, each of `per_request` records with bodies `<name>-<i>`.
pub async fn append_requests(queue: &Queue, names: &[&str], per_request: usize) {
    for name in names {
        let records = (0..per_request).map(|i| record(&format!("{name}-{i}")));
        queue
            .append(per_request as u32, request(records.collect()))
            .await
            .expect("append");
    }
}

/// One request at a time, retried forever, `consumers` consumers.
pub fn settings(consumers: usize, backoff: BackoffSettings) -> ConsumerSettings {
    ConsumerSettings {
        limits: BatchLimits {
            min_items: 1,
            linger: Duration::ZERO,
            max_items: 0,
            max_bytes: 0,
        },
        backoff,
        retry: true,
        max_elapsed: None,
        num_consumers: consumers,
    }
}

/// Fast, jitter-free backoff for tests.
pub fn fast_backoff(initial_ms: u64, max_ms: u64) -> BackoffSettings {
    BackoffSettings {
        initial_interval: Duration::from_millis(initial_ms),
        max_interval: Duration::from_millis(max_ms),
        multiplier: 2.0,
        randomization_factor: 0.0,
    }
}

/// The consumer context `app::build` would make for `queue`.
pub fn context(
    exporter: Arc<Exporter>,
    queue: Queue,
    dead_letter: Option<PathBuf>,
    settings: ConsumerSettings,
    shutdown: CancellationToken,
) -> ConsumerContext {
    ConsumerContext {
        exporter_id: EXPORTER_ID.to_owned(),
        signal: Signal::Logs,
        exporter,
        queue,
        dead_letter: DeadLetter::new(dead_letter),
        settings,
        metrics: Arc::new(Metrics::new().expect("metrics")),
        status: Arc::new(DeliveryStatus::default()),
        shutdown,
        ledger: None,
    }
}

/// Polls `condition` every 10 ms until it holds, panicking with `what` after `deadline`.
pub async fn wait_for(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let until = tokio::time::Instant::now() + deadline;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
