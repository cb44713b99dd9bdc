//! Bodies past the offload thresholds (plain protobuf, gzip, OTLP/JSON) are inflated and
//! validated on the blocking pool rather than on an async worker: over gRPC and HTTP they are
//! accepted whole, a malformed one is refused as before, and the in-flight budget, whose
//! charge travels with the work, comes back whole once every request is answered.

mod common;

use std::io::Write;

use bytes::Bytes;
use common::{Options, Receiver, grpc_call, grpc_code, grpc_frame, grpc_raw, http_post};
use otelspool::pipeline::Signal;
use otelspool::receivers::otlp::{
    OFFLOAD_MIN_BYTES, OFFLOAD_MIN_GZIP_BYTES, OFFLOAD_MIN_JSON_BYTES,
};
use otelspool_testkit::loadgen::records::JobRecords;
use prost::Message;

const BUDGET: u64 = 64 << 20;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// Scenario: a request of 1,000 ~300-byte log records sent as plain protobuf (gRPC and HTTP),
/// gzip protobuf (gRPC and HTTP) and OTLP/JSON (HTTP), each past its offload threshold, then a
/// 10-record request (under every threshold) over gRPC.
/// Guarantees: each is acknowledged and queued as one entry; after the last answer the
/// in-flight budget holds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_are_accepted_whole_and_the_budget_comes_back() {
    let r = Receiver::start(Options {
        budget: BUDGET,
        ..Options::default()
    })
    .await;
    let mut records = JobRecords::new("offload", 1, 300);
    let request = records.next_batch(1000).0;
    let proto = request.encode_to_vec();
    let gz = gzip(&proto);
    let json = serde_json::to_vec(&request).expect("json");
    assert!(proto.len() >= OFFLOAD_MIN_BYTES, "{}", proto.len());
    assert!(gz.len() >= OFFLOAD_MIN_GZIP_BYTES, "{}", gz.len());
    assert!(json.len() >= OFFLOAD_MIN_JSON_BYTES, "{}", json.len());

    grpc_call(&r.channel(), Signal::Logs, Bytes::from(proto.clone()))
        .await
        .expect("plain gRPC accepted");
    let frame = grpc_frame(true, &gz);
    let body = tonic::body::Body::new(http_body_util::Full::new(frame));
    let code = grpc_code(grpc_raw(&r.channel(), Signal::Logs, true, body).await).await;
    assert_eq!(code, tonic::Code::Ok);
    let path = Signal::Logs.http_path();
    let (status, _) = http_post(r.http, path, "application/x-protobuf", "", &proto).await;
    assert_eq!(status, 200);
    let gz_header = "content-encoding: gzip\r\n";
    let (status, _) = http_post(r.http, path, "application/x-protobuf", gz_header, &gz).await;
    assert_eq!(status, 200);
    let (status, _) = http_post(r.http, path, "application/json", "", &json).await;
    assert_eq!(status, 200);
    let small = records.next_batch(10).0.encode_to_vec();
    assert!(small.len() < OFFLOAD_MIN_BYTES);
    grpc_call(&r.channel(), Signal::Logs, Bytes::from(small))
        .await
        .expect("small gRPC accepted");

    assert_eq!(r.queued(Signal::Logs), 6);
    assert_eq!(r.ctx.in_flight.available_bytes(), BUDGET);
}

/// Scenario: 64 KiB of incompressible bytes that are not a valid request, gzipped (so past the
/// gzip threshold), over gRPC and HTTP; and a large plain request whose last record has a
/// 3-byte trace id.
/// Guarantees: refused as malformed (`InvalidArgument` / 400), nothing queued, the budget
/// back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_malformed_body_is_refused_as_before() {
    let r = Receiver::start(Options {
        budget: BUDGET,
        ..Options::default()
    })
    .await;
    let mut garbage = vec![0xffu8; 8];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    garbage.extend((0..64 << 10).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    let gz = gzip(&garbage);
    assert!(gz.len() >= OFFLOAD_MIN_GZIP_BYTES);
    let frame = grpc_frame(true, &gz);
    let body = tonic::body::Body::new(http_body_util::Full::new(frame));
    let code = grpc_code(grpc_raw(&r.channel(), Signal::Logs, true, body).await).await;
    assert_eq!(code, tonic::Code::InvalidArgument);
    let gz_header = "content-encoding: gzip\r\n";
    let path = Signal::Logs.http_path();
    let (status, _) = http_post(r.http, path, "application/x-protobuf", gz_header, &gz).await;
    assert_eq!(status, 400);

    let mut request = JobRecords::new("offload", 2, 300).next_batch(1000).0;
    let records = &mut request.resource_logs[0].scope_logs[0].log_records;
    records.last_mut().expect("a record").trace_id = vec![1; 3];
    let proto = request.encode_to_vec();
    assert!(proto.len() >= OFFLOAD_MIN_BYTES);
    let err = grpc_call(&r.channel(), Signal::Logs, Bytes::from(proto))
        .await
        .expect_err("a bad trace id");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    assert_eq!(r.queued(Signal::Logs), 0);
    assert_eq!(r.ctx.in_flight.available_bytes(), BUDGET);
}
