//! Clients that declare large request bodies and then stall must not refuse everyone else:
//! memory is charged as bytes arrive, and bodies that arrive slower than the minimum rate are
//! cut after one rate window, over HTTP/1.1 and over gRPC.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Options, Receiver, grpc_call, grpc_code, grpc_frame, grpc_raw, http_post, logs};
use futures::StreamExt;
use otelspool::pipeline::Signal;
use otelspool::receivers::otlp::BodyPolicy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: usize = 20 << 20;
const BUDGET: u64 = 64 << 20;
const STALLED_HTTP: usize = 12;
const STALLED_GRPC: usize = 4;

/// Opens an HTTP/1.1 request declaring a 20 MiB body, waits for `100 Continue` (the receiver
/// is reading the body), sends 10 bytes and stalls. Returns the socket and what it got first.
async fn stalled_http(r: &Receiver, gzip: bool) -> (TcpStream, Vec<u8>) {
    let mut s = TcpStream::connect(r.http).await.expect("connect");
    let encoding = if gzip {
        "content-encoding: gzip\r\n"
    } else {
        ""
    };
    let head = format!(
        "POST /v1/logs HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\n\
         content-length: {LIMIT}\r\n{encoding}expect: 100-continue\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("write");
    let mut first = vec![0u8; 256];
    let n = s.read(&mut first).await.expect("read");
    first.truncate(n);
    s.write_all(&[0u8; 10]).await.expect("write");
    (s, first)
}

/// Reads what is left until the server closes; fails if it does not within `deadline`.
async fn answer_then_close(s: &mut TcpStream, deadline: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(deadline, s.read_to_end(&mut out))
        .await
        .expect("the stalled connection was not cut")
        .expect("read");
    out
}

/// Scenario: 12 HTTP/1.1 clients (half gzip) each declare a 20 MiB body, get `100 Continue`,
/// send 10 bytes and stall, and 4 gRPC streams declare a 4 MiB message and stall after 10
/// bytes, against a receiver with a 64 MiB budget (which the old up-front reservation of the
/// declared length spent at the first stalled request). Then a normal gRPC client and a
/// normal HTTP client send logs.
/// Guarantees: the stalled requests hold almost none of the budget; both normal clients get
/// OK and their data is queued; every stalled HTTP request is answered 408 and its connection
/// closed, and every stalled gRPC stream gets `DeadlineExceeded`, after the 2 s rate window
/// (the 10 min body deadline never comes into play).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_hold_no_budget_and_are_cut_after_the_rate_window() {
    let r = Receiver::start(Options {
        limit: LIMIT,
        budget: BUDGET,
        body: BodyPolicy {
            min_rate: 16 << 10,
            rate_window: Duration::from_secs(2),
            deadline: Duration::from_secs(600),
        },
        ..Options::default()
    })
    .await;
    let mut stalled = Vec::new();
    for i in 0..STALLED_HTTP {
        let (s, first) = stalled_http(&r, i % 2 == 1).await;
        assert!(
            first.starts_with(b"HTTP/1.1 100 Continue"),
            "stalled request {i} was not read: {:?}",
            String::from_utf8_lossy(&first)
        );
        stalled.push(s);
    }
    let grpc_channel = r.channel();
    let mut grpc_stalls = Vec::new();
    for _ in 0..STALLED_GRPC {
        let mut head = grpc_frame(false, &[]).to_vec();
        head[1..5].copy_from_slice(&(4u32 << 20).to_be_bytes());
        head.extend_from_slice(&[0u8; 10]);
        let frames = futures::stream::iter([Ok::<_, std::convert::Infallible>(
            http_body::Frame::data(Bytes::from(head)),
        )])
        .chain(futures::stream::pending());
        let body = tonic::body::Body::new(http_body_util::StreamBody::new(frames));
        let channel = grpc_channel.clone();
        grpc_stalls.push(tokio::spawn(async move {
            grpc_code(grpc_raw(&channel, Signal::Logs, false, body).await).await
        }));
    }

    let held = BUDGET - r.ctx.in_flight.available_bytes();
    assert!(held <= 64 << 10, "stalled requests hold {held} bytes");

    grpc_call(&r.channel(), Signal::Logs, logs(3))
        .await
        .expect("a normal gRPC client is served");
    let (status, body) =
        http_post(r.http, "/v1/logs", "application/x-protobuf", "", &logs(2)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(r.queued(Signal::Logs), 2);

    for (i, s) in stalled.iter_mut().enumerate() {
        let answer = answer_then_close(s, Duration::from_secs(30)).await;
        assert_eq!(
            common::parse_status(&answer),
            Some(408),
            "stalled request {i}: {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    for stall in grpc_stalls {
        let code = tokio::time::timeout(Duration::from_secs(30), stall)
            .await
            .expect("the stalled gRPC stream was not cut")
            .expect("task");
        assert_eq!(code, tonic::Code::DeadlineExceeded);
    }
    assert_eq!(r.queued(Signal::Logs), 2);
    assert_eq!(r.ctx.in_flight.available_bytes(), BUDGET);
}
