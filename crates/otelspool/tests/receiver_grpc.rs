//! The OTLP/gRPC receiver against a real client on loopback: status codes for good, malformed,
//! oversized and compressed requests, and that nothing is queued unless it was acknowledged.
mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::pass_through_codec::PassThroughCodec;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otelspool::pipeline::{ExporterQueue, Pipeline, Router, Signal};
use otelspool::processors::ProcessorChain;
use otelspool::receivers::otlp::{
    BodyPolicy, GrpcSettings, InFlightBudget, ReceiverContext, serve_grpc,
};
use otelspool::telemetry::Metrics;
use otelspool_queue::{Queue, QueueOptions};
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;

struct Harness {
    queue: Queue,
    channel: Channel,
    stop: CancellationToken,
}

async fn start(max_recv_msg_size: usize) -> Harness {
    let (queue, _) = Queue::open(QueueOptions::new("t", None)).expect("queue");
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let pipeline = Arc::new(Pipeline {
        id: "logs".into(),
        processors: ProcessorChain::default(),
        exporters: vec![ExporterQueue {
            exporter: "e".into(),
            signal: Signal::Logs,
            queue: queue.clone(),
            ledger: None,
        }],
        metrics: metrics.clone(),
    });
    let mut router = Router::default();
    router.add(Signal::Logs, pipeline);
    let ctx = Arc::new(ReceiverContext {
        id: "otlp".into(),
        router,
        metrics,
        in_flight: InFlightBudget::new(64 << 20),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    tokio::spawn(serve_grpc(
        listener,
        ctx,
        GrpcSettings {
            max_recv_msg_size,
            body: BodyPolicy::default(),
            tls: None,
            auth: None,
        },
        stop.clone(),
    ));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_lazy();
    Harness {
        queue,
        channel,
        stop,
    }
}

fn logs(n: usize) -> Bytes {
    let records = (0..n)
        .map(|i| LogRecord {
            body: Some(AnyValue {
                value: Some(Value::StringValue(format!("line {i}"))),
            }),
            attributes: vec![KeyValue {
                key: "emerge.job_id".into(),
                value: Some(AnyValue {
                    value: Some(Value::StringValue("j-1".into())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    Bytes::from(req.encode_to_vec())
}

async fn call(h: &Harness, body: Bytes, gzip: bool) -> Result<Bytes, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(h.channel.clone());
    if gzip {
        grpc = grpc.send_compressed(CompressionEncoding::Gzip);
    }
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    );
    grpc.unary(tonic::Request::new(body), path, PassThroughCodec)
        .await
        .map(|r| r.into_inner())
}

/// Scenario: a valid request, plain and gzip.
/// Guarantees: OK, and the exact bytes sent are in the queue (no re-encoding).
#[tokio::test]
async fn valid_requests_are_queued_byte_for_byte() {
    let h = start(4 << 20).await;
    let body = logs(3);
    call(&h, body.clone(), false).await.expect("ok");
    call(&h, body.clone(), true).await.expect("ok with gzip");
    let s = h.queue.stats();
    assert_eq!((s.entries, s.items), (2, 6));
    let limits = otelspool_queue::BatchLimits {
        min_items: 1,
        linger: Duration::ZERO,
        max_items: 0,
        max_bytes: 0,
    };
    let got = h.queue.next_batch(limits).await.expect("entry");
    assert_eq!(got[0].payload, body);
    h.stop.cancel();
}

/// Scenario: garbage bytes, an oversized message, a gzip bomb, corrupt gzip.
/// Guarantees: InvalidArgument / ResourceExhausted (never a code SDKs retry forever), nothing
/// queued, and the server keeps serving.
#[tokio::test]
async fn bad_requests_get_permanent_codes_and_the_server_keeps_serving() {
    let h = start(1 << 20).await;
    let err = call(&h, Bytes::from_static(b"\xff\xff\xff\xff garbage"), false)
        .await
        .expect_err("garbage");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let err = call(&h, logs(30_000), false).await.expect_err("oversized");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    // 64 MiB of zeros compressed to ~64 KiB: must be refused at the 1 MiB limit.
    let err = call(&h, zeros_frame(64 << 20), true)
        .await
        .expect_err("bomb");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert_eq!(h.queue.stats().entries, 0);
    call(&h, logs(1), false).await.expect("still serving");
    assert_eq!(h.queue.stats().entries, 1);
    h.stop.cancel();
}

/// A protobuf-valid logs request padded with a huge zero-filled unknown field, so that it
/// compresses to almost nothing.
fn zeros_frame(size: usize) -> Bytes {
    let mut v = Vec::with_capacity(size + 16);
    // field 15, wire type 2 (length-delimited), then the length as a varint.
    v.push((15 << 3) | 2);
    let mut len = size;
    while len >= 0x80 {
        v.push((len as u8) | 0x80);
        len >>= 7;
    }
    v.push(len as u8);
    v.resize(v.len() + size, 0);
    // The client compresses it (send_compressed); check it is small on the wire.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&v).expect("gzip");
    assert!(enc.finish().expect("gzip").len() < size / 100);
    Bytes::from(v)
}
