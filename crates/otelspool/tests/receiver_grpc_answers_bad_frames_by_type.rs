//! The gRPC receiver answers a request it cannot read with a code chosen by the failure's
//! type, never by the wording of a dependency's message: corrupt gzip is `InvalidArgument`,
//! anything over the size limit (raw or inflated) `ResourceExhausted`; nothing is queued.

mod common;

use std::io::Write;

use bytes::Bytes;
use common::{Options, Receiver, grpc_code, grpc_frame, grpc_raw, logs};
use otelspool::pipeline::Signal;
use tonic::Code;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

async fn send(r: &Receiver, gzip: bool, frame: Bytes) -> Code {
    let body = tonic::body::Body::new(http_body_util::Full::new(frame));
    grpc_code(grpc_raw(&r.channel(), Signal::Logs, gzip, body).await).await
}

/// Scenario: a real gRPC client sends frames flagged compressed with `grpc-encoding: gzip`
/// whose bytes are not gzip, are gzip cut short, or have garbage after the gzip member.
/// Guarantees: each is `InvalidArgument` (tonic's own answer was `Internal`, which the old
/// text check missed because tonic percent-encodes the message), and nothing is queued.
#[tokio::test]
async fn corrupt_gzip_is_invalid_argument() {
    let r = Receiver::start(Options::default()).await;
    let valid = gzip(&logs(20));
    let mut trailing = valid.clone();
    trailing.extend_from_slice(b"garbage after the member");
    let cases: [(&str, &[u8]); 3] = [
        ("not gzip", b"this is not gzip at all"),
        ("truncated", &valid[..valid.len() / 2]),
        ("trailing garbage", &trailing),
    ];
    for (case, bytes) in cases {
        let code = send(&r, true, grpc_frame(true, bytes)).await;
        assert_eq!(code, Code::InvalidArgument, "{case}");
    }
    assert_eq!(r.queued(Signal::Logs), 0);
    assert_eq!(send(&r, true, grpc_frame(true, &valid)).await, Code::Ok);
    assert_eq!(r.queued(Signal::Logs), 1);
}

/// Scenario: a message over `max_recv_msg_size` sent plain, one that inflates past it (a
/// gzip bomb), and one whose frame header declares more than the limit.
/// Guarantees: each is `ResourceExhausted` (tonic said `OutOfRange`, which SDKs retry
/// forever), and nothing is queued.
#[tokio::test]
async fn oversize_is_resource_exhausted_raw_or_inflated() {
    let r = Receiver::start(Options {
        limit: 1 << 20,
        ..Options::default()
    })
    .await;
    let big = logs(120_000);
    assert!(big.len() > 1 << 20);
    assert_eq!(
        send(&r, false, grpc_frame(false, &big)).await,
        Code::ResourceExhausted
    );
    let bomb = gzip(&vec![0u8; 16 << 20]);
    assert!(bomb.len() < 1 << 20);
    assert_eq!(
        send(&r, true, grpc_frame(true, &bomb)).await,
        Code::ResourceExhausted
    );
    let mut lying = grpc_frame(false, &logs(1)).to_vec();
    lying[1..5].copy_from_slice(&(2u32 << 20).to_be_bytes());
    assert_eq!(
        send(&r, false, Bytes::from(lying)).await,
        Code::ResourceExhausted
    );
    assert_eq!(r.queued(Signal::Logs), 0);
}

/// Scenario: a request with no complete frame, and one with two frames.
/// Guarantees: both are `InvalidArgument` (a unary call carries exactly one message; data
/// after it is never silently dropped after an OK), and nothing is queued.
#[tokio::test]
async fn a_request_must_be_exactly_one_message() {
    let r = Receiver::start(Options::default()).await;
    let one = grpc_frame(false, &logs(1));
    assert_eq!(send(&r, false, one.slice(..3)).await, Code::InvalidArgument);
    let two = [one.as_ref(), one.as_ref()].concat();
    assert_eq!(
        send(&r, false, Bytes::from(two)).await,
        Code::InvalidArgument
    );
    assert_eq!(r.queued(Signal::Logs), 0);
    assert_eq!(send(&r, false, one).await, Code::Ok);
    assert_eq!(r.queued(Signal::Logs), 1);
}
