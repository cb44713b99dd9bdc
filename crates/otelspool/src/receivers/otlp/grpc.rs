//! OTLP/gRPC: the three `Export` services over a pass-through codec, so the client's bytes are
//! validated once and queued untouched. gzip requests are accepted.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codec::{CompressionEncoding, EnabledCompressionEncodings};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

use super::ReceiverContext;
use crate::pipeline::{PassThroughCodec, Payload, Signal};
use crate::server::AcceptBackoff;

const TRANSPORT: &str = "grpc";

/// Settings of the gRPC server.
#[derive(Debug, Clone)]
pub struct GrpcSettings {
    /// Largest request accepted, after decompression (`max_recv_msg_size_mib`).
    pub max_recv_msg_size: usize,
}

/// Compile-time signal marker, because tonic routes by a `const NAME`.
pub trait SignalMarker: Send + Sync + 'static {
    /// The signal.
    const SIGNAL: Signal;
    /// The gRPC service name.
    const SERVICE: &'static str;
}

/// Marker for the logs service.
#[derive(Debug, Clone, Copy)]
pub struct Logs;
/// Marker for the trace service.
#[derive(Debug, Clone, Copy)]
pub struct Traces;
/// Marker for the metrics service.
#[derive(Debug, Clone, Copy)]
pub struct Metrics;

impl SignalMarker for Logs {
    const SIGNAL: Signal = Signal::Logs;
    const SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
}
impl SignalMarker for Traces {
    const SIGNAL: Signal = Signal::Traces;
    const SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}
impl SignalMarker for Metrics {
    const SIGNAL: Signal = Signal::Metrics;
    const SERVICE: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
}

/// One OTLP `Export` service.
pub struct ExportService<S> {
    ctx: Arc<ReceiverContext>,
    settings: GrpcSettings,
    _signal: PhantomData<S>,
}

impl<S> Clone for ExportService<S> {
    fn clone(&self) -> Self {
        ExportService {
            ctx: self.ctx.clone(),
            settings: self.settings.clone(),
            _signal: PhantomData,
        }
    }
}

impl<S: SignalMarker> NamedService for ExportService<S> {
    const NAME: &'static str = S::SERVICE;
}

struct Export<S> {
    ctx: Arc<ReceiverContext>,
    _signal: PhantomData<S>,
}

impl<S: SignalMarker> UnaryService<Bytes> for Export<S> {
    type Response = Bytes;
    type Future = BoxFuture<'static, Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let started = Instant::now();
            let body = request.into_inner();
            let _permit = ctx
                .admit(
                    TRANSPORT,
                    S::SIGNAL,
                    body.len().saturating_mul(super::DECODE_EXPANSION),
                )
                .map_err(|r| r.to_grpc_status())?;
            let payload = match Payload::from_protobuf(S::SIGNAL, body) {
                Ok(p) => p,
                Err(e) => {
                    ctx.malformed(TRANSPORT, S::SIGNAL, &e);
                    return Err(Status::invalid_argument(e.to_string()));
                }
            };
            ctx.consume(TRANSPORT, payload, started)
                .await
                .map_err(|r| r.to_grpc_status())?;
            // An empty Export*ServiceResponse: full success.
            Ok(Response::new(Bytes::new()))
        })
    }
}

impl<S, B> tower::Service<http::Request<B>> for ExportService<S>
where
    S: SignalMarker,
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != S::SIGNAL.grpc_path() {
            return Box::pin(async { Ok(Status::unimplemented("unknown method").into_http()) });
        }
        let method = Export::<S> {
            ctx: self.ctx.clone(),
            _signal: PhantomData,
        };
        let max = self.settings.max_recv_msg_size;
        Box::pin(async move {
            let mut accept = EnabledCompressionEncodings::default();
            accept.enable(CompressionEncoding::Gzip);
            let mut grpc = Grpc::new(PassThroughCodec)
                .apply_compression_config(accept, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(max), None);
            Ok(permanent_decode_errors(grpc.unary(method, req).await))
        })
    }
}

/// tonic answers a frame over the size limit with `OutOfRange` and undecompressable gzip with
/// `Internal`; SDKs retry the first, so a request that can never fit would be resent forever.
/// Answer as grpc-go (and so otelcol) does: `ResourceExhausted` for size, `InvalidArgument`
/// for a corrupt body.
fn permanent_decode_errors(
    mut resp: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    let headers = resp.headers_mut();
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok());
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let replacement = match code {
        Some(c) if c == tonic::Code::OutOfRange as i32 => Some(tonic::Code::ResourceExhausted),
        Some(c)
            if c == tonic::Code::Internal as i32 && message.starts_with("Error decompressing") =>
        {
            Some(tonic::Code::InvalidArgument)
        }
        _ => None,
    };
    if let Some(code) = replacement {
        headers.insert("grpc-status", http::HeaderValue::from(code as i32));
    }
    resp
}

fn service<S: SignalMarker>(
    ctx: &Arc<ReceiverContext>,
    settings: &GrpcSettings,
) -> Option<ExportService<S>> {
    ctx.router.accepts(S::SIGNAL).then(|| ExportService {
        ctx: ctx.clone(),
        settings: settings.clone(),
        _signal: PhantomData,
    })
}

/// Serves OTLP/gRPC on `listener` until `shutdown`; in-flight requests finish first.
pub async fn serve_grpc(
    listener: TcpListener,
    ctx: Arc<ReceiverContext>,
    settings: GrpcSettings,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(receiver = %ctx.id, address = ?addr, "OTLP/gRPC receiver listening");
    let incoming = tokio_stream_wrapper(listener);
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_optional_service(service::<Logs>(&ctx, &settings))
        .add_optional_service(service::<Traces>(&ctx, &settings))
        .add_optional_service(service::<Metrics>(&ctx, &settings))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}

/// Accepted connections as a stream, with `TCP_NODELAY`; failed accepts are retried with the
/// shared back-off.
fn tokio_stream_wrapper(
    listener: TcpListener,
) -> impl futures::Stream<Item = Result<tokio::net::TcpStream, std::io::Error>> {
    let backoff = AcceptBackoff::new("OTLP/gRPC");
    futures::stream::unfold((listener, backoff), |(listener, mut backoff)| async move {
        let (stream, _) = backoff.accept(|| listener.accept()).await;
        let _ = stream.set_nodelay(true);
        Some((Ok(stream), (listener, backoff)))
    })
}
