//! A running `otlp` receiver for component tests: gRPC and HTTP on 127.0.0.1, one in-memory
//! queue per signal, and raw gRPC calls for what a well-behaved client never sends.
#![allow(dead_code)]
pub mod pass_through_codec;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use otelspool::pipeline::{ExporterQueue, Pipeline, Router, Signal};
use otelspool::processors::ProcessorChain;
use otelspool::receivers::auth::BearerTokenAuth;
use otelspool::receivers::otlp::{
    BodyPolicy, GrpcSettings, HttpSettings, InFlightBudget, ReceiverContext, serve_grpc, serve_http,
};
use otelspool::receivers::tls::ServerTls;
use otelspool::telemetry::Metrics;
use otelspool_queue::{Queue, QueueOptions};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// What a test sets.
pub struct Options {
    /// `max_recv_msg_size` and `max_request_body_size`.
    pub limit: usize,
    /// The in-flight budget.
    pub budget: u64,
    /// The slow-client policy of both transports.
    pub body: BodyPolicy,
    /// TLS of the gRPC server.
    pub grpc_tls: Option<ServerTls>,
    /// TLS of the HTTP server.
    pub http_tls: Option<ServerTls>,
    /// The authenticator of both transports.
    pub auth: Option<Arc<BearerTokenAuth>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limit: 4 << 20,
            budget: 64 << 20,
            body: BodyPolicy::default(),
            grpc_tls: None,
            http_tls: None,
            auth: None,
        }
    }
}

/// A receiver serving until dropped.
pub struct Receiver {
    /// The gRPC address.
    pub grpc: SocketAddr,
    /// The HTTP address.
    pub http: SocketAddr,
    /// The receiver's shared state (its budget).
    pub ctx: Arc<ReceiverContext>,
    queues: Vec<(Signal, Queue)>,
    stop: CancellationToken,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Receiver {
    /// Starts one with `options`.
    pub async fn start(options: Options) -> Receiver {
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let mut router = Router::default();
        let mut queues = Vec::new();
        for signal in Signal::ALL {
            let (queue, _) =
                Queue::open(QueueOptions::new(format!("t_{signal}"), None)).expect("queue");
            queues.push((signal, queue.clone()));
            router.add(
                signal,
                Arc::new(Pipeline {
                    id: signal.as_str().into(),
                    processors: ProcessorChain::default(),
                    exporters: vec![ExporterQueue {
                        exporter: "e".into(),
                        signal,
                        queue,
                        ledger: None,
                    }],
                    metrics: metrics.clone(),
                }),
            );
        }
        let ctx = Arc::new(ReceiverContext {
            id: "otlp".into(),
            router,
            metrics,
            in_flight: InFlightBudget::new(options.budget),
        });
        let stop = CancellationToken::new();
        let grpc = bind().await;
        let http = bind().await;
        let (grpc_addr, http_addr) = (addr(&grpc), addr(&http));
        tokio::spawn(serve_grpc(
            grpc,
            ctx.clone(),
            GrpcSettings {
                max_recv_msg_size: options.limit,
                body: options.body,
                tls: options.grpc_tls,
                auth: options.auth.clone(),
            },
            stop.clone(),
        ));
        tokio::spawn(serve_http(
            http,
            ctx.clone(),
            HttpSettings {
                max_request_body_size: options.limit,
                body: options.body,
                tls: options.http_tls,
                auth: options.auth,
            },
            stop.clone(),
        ));
        Receiver {
            grpc: grpc_addr,
            http: http_addr,
            ctx,
            queues,
            stop,
        }
    }

    /// Entries queued for `signal`.
    pub fn queued(&self, signal: Signal) -> u64 {
        self.queues
            .iter()
            .find(|(s, _)| *s == signal)
            .map_or(0, |(_, q)| q.stats().entries)
    }

    /// A lazy gRPC channel to the receiver.
    pub fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc))
            .expect("uri")
            .connect_lazy()
    }

    /// The receiver's URL for `signal` over HTTP.
    pub fn url(&self, signal: Signal) -> String {
        format!("http://{}{}", self.http, signal.http_path())
    }
}

async fn bind() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
}

fn addr(l: &tokio::net::TcpListener) -> SocketAddr {
    l.local_addr().expect("addr")
}

/// A well-formed unary gRPC call of `signal` carrying `body` as is (protobuf bytes).
pub async fn grpc_call(
    channel: &Channel,
    signal: Signal,
    body: Bytes,
) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = http::uri::PathAndQuery::from_static(signal.grpc_path());
    grpc.unary(
        tonic::Request::new(body),
        path,
        pass_through_codec::PassThroughCodec,
    )
    .await
    .map(|_| ())
}

/// The gRPC status code of a response, from its headers (trailers-only) or its trailers.
pub async fn grpc_code(resp: http::Response<tonic::body::Body>) -> tonic::Code {
    use http_body_util::BodyExt;
    let from = |h: &http::HeaderMap| {
        h.get("grpc-status")
            .and_then(|v| v.to_str().ok()?.parse::<i32>().ok())
            .map(tonic::Code::from_i32)
    };
    if let Some(code) = from(resp.headers()) {
        return code;
    }
    let collected = resp.into_body().collect().await.expect("response body");
    collected
        .trailers()
        .and_then(from)
        .expect("a grpc-status trailer")
}

/// A raw unary gRPC request of `signal` with `body` as the HTTP/2 body, framing included (so a
/// test can send what a client library never would: a lying length, corrupt gzip, a stall).
pub async fn grpc_raw(
    channel: &Channel,
    signal: Signal,
    gzip: bool,
    body: tonic::body::Body,
) -> http::Response<tonic::body::Body> {
    use tower::{Service, ServiceExt};
    let mut req = http::Request::builder()
        .method(http::Method::POST)
        .uri(signal.grpc_path())
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header("te", "trailers");
    if gzip {
        req = req.header("grpc-encoding", "gzip");
    }
    let req = req.body(body).expect("request");
    channel
        .clone()
        .ready()
        .await
        .expect("channel ready")
        .call(req)
        .await
        .expect("HTTP/2 response")
}

/// One gRPC message frame around `message`.
pub fn grpc_frame(compressed: bool, message: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(message.len() + 5);
    v.push(u8::from(compressed));
    v.extend_from_slice(&(message.len() as u32).to_be_bytes());
    v.extend_from_slice(message);
    Bytes::from(v)
}

/// A complete HTTP/1.1 POST on a fresh connection (closed after); the status and the body.
pub async fn http_post(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    extra_headers: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: {content_type}\r\n\
         content-length: {}\r\nconnection: close\r\n{extra_headers}\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("write head");
    s.write_all(body).await.expect("write body");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read response");
    let status = parse_status(&out).expect("an HTTP status line");
    let body_at = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(out.len(), |p| p + 4);
    (status, out[body_at..].to_vec())
}

/// The status code of an HTTP/1.1 response head in `bytes`.
pub fn parse_status(bytes: &[u8]) -> Option<u16> {
    let line = bytes.split(|b| *b == b'\r').next()?;
    std::str::from_utf8(line)
        .ok()?
        .strip_prefix("HTTP/1.1 ")?
        .get(..3)?
        .parse()
        .ok()
}

/// A valid logs request of `n` records.
pub fn logs(n: usize) -> Bytes {
    logs_with_bodies((0..n).map(|i| format!("line {i}")))
}

/// An encoded logs request of one record per body, in order.
pub fn logs_with_bodies(bodies: impl Iterator<Item = String>) -> Bytes {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use prost::Message;
    let log_records = bodies
        .map(|b| LogRecord {
            body: Some(AnyValue {
                value: Some(Value::StringValue(b)),
            }),
            ..Default::default()
        })
        .collect();
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    Bytes::from(req.encode_to_vec())
}
