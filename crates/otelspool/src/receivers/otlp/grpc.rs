//! OTLP/gRPC: the three `Export` services. The receiver reads the unary request itself, not
//! through tonic's codec: the body is charged to the in-flight budget as it arrives and cut
//! when it arrives too slowly (see `body`), the one gRPC message is taken out of its frame
//! without a copy, and gzip is inflated here, so a corrupt body is known to be corrupt by
//! type, not by the wording of a message. The client's bytes are validated once and queued
//! untouched.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes};
use futures::StreamExt;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::transport::server::Connected;
use tonic::{Code, Status};

use super::body::{BodyError, BodyPolicy, read_body};
use super::{BodyForm, DECODE_EXPANSION, PrepareError, ReceiverContext};
use crate::pipeline::Signal;
use crate::receivers::auth::BearerTokenAuth;
use crate::receivers::tls::{ServerTls, Stream};
use crate::server::{AcceptBackoff, ConnectionShare, HTTP2_MAX_CONCURRENT_STREAMS};

const TRANSPORT: &str = "grpc";
/// The listener's name in logs.
const PORT: &str = "OTLP/gRPC";
/// A gRPC message frame starts with a compressed flag (1 byte) and a length (4 bytes).
const FRAME_HEADER: usize = 5;

/// Settings of the gRPC server.
#[derive(Debug, Clone)]
pub struct GrpcSettings {
    /// Largest request accepted, compressed or not (`max_recv_msg_size_mib`).
    pub max_recv_msg_size: usize,
    /// How slowly a client may send its request.
    pub body: BodyPolicy,
    /// Serve TLS instead of plaintext (`tls`).
    pub tls: Option<ServerTls>,
    /// Let in only requests this authenticator approves (`auth`).
    pub auth: Option<Arc<BearerTokenAuth>>,
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
    settings: Arc<GrpcSettings>,
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

impl<S, B> tower::Service<http::Request<B>> for ExportService<S>
where
    S: SignalMarker,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
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
        let (ctx, settings) = (self.ctx.clone(), self.settings.clone());
        Box::pin(async move {
            Ok(export(S::SIGNAL, &ctx, &settings, req)
                .await
                .unwrap_or_else(Status::into_http))
        })
    }
}

/// One `Export` call: authentication, admission, the body, the frame, gzip, validation, the
/// queue.
async fn export<B>(
    signal: Signal,
    ctx: &Arc<ReceiverContext>,
    settings: &GrpcSettings,
    req: http::Request<B>,
) -> Result<http::Response<tonic::body::Body>, Status>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = Instant::now();
    ctx.authenticate(TRANSPORT, signal, settings.auth.as_deref(), req.headers())
        .map_err(|r| r.to_grpc_status())?;
    let gzip = request_is_gzip(req.headers())?;
    ctx.admit(TRANSPORT, signal)
        .map_err(|r| r.to_grpc_status())?;
    let (parts, body) = req.into_parts();
    let max = settings.max_recv_msg_size;
    let mut charge = ctx.in_flight.charge(
        parts.extensions.get::<ConnectionShare>().cloned(),
        max.saturating_mul(DECODE_EXPANSION),
    );
    let failed = |e: BodyError| body_status(ctx, signal, e);
    let mut rx = read_body(body, max + FRAME_HEADER, &settings.body, &mut charge)
        .await
        .map_err(failed)?;
    let invalid = |what: &str| {
        ctx.malformed(TRANSPORT, signal, &what);
        Status::invalid_argument(what.to_string())
    };
    if rx.remaining() < FRAME_HEADER {
        return Err(invalid("the request holds no gRPC message"));
    }
    let compressed = rx.get_u8();
    let len = rx.get_u32() as usize;
    if len > max {
        return Err(failed(BodyError::TooLarge { limit: max }));
    }
    if rx.remaining() != len {
        return Err(invalid("the request is not exactly one gRPC message"));
    }
    let gzip = match (compressed, gzip) {
        (0, _) => false,
        (1, true) => true,
        (1, false) => return Err(invalid("a compressed message without grpc-encoding")),
        _ => return Err(invalid("an unknown gRPC message flag")),
    };
    let form = BodyForm {
        gzip,
        json: false,
        limit: max,
    };
    // The charge is kept until the payload is queued.
    let (payload, _charge) = match ctx.prepare(TRANSPORT, signal, rx, form, charge).await {
        Ok(prepared) => prepared,
        Err(PrepareError::Body(e)) => return Err(body_status(ctx, signal, e)),
        Err(PrepareError::Refused(r)) => return Err(r.to_grpc_status()),
    };
    ctx.consume(TRANSPORT, payload, started)
        .await
        .map_err(|r| r.to_grpc_status())?;
    Ok(ok_response())
}

/// Whether the request's message is gzip; any other encoding is `Unimplemented`, as tonic
/// and grpc-go answer.
fn request_is_gzip(headers: &HeaderMap) -> Result<bool, Status> {
    match headers.get("grpc-encoding").map(HeaderValue::as_bytes) {
        None | Some(b"identity") => Ok(false),
        Some(b"gzip") => Ok(true),
        Some(other) => Err(Status::unimplemented(format!(
            "messages compressed with {:?} are not supported; use gzip",
            String::from_utf8_lossy(other)
        ))),
    }
}

/// The answer to a body that could not be read: `ResourceExhausted` for size (as grpc-go and
/// otelcol answer, so SDKs do not resend what can never fit), `InvalidArgument` for corrupt
/// gzip, `DeadlineExceeded` for a body too slow, `Unavailable` when memory is short.
fn body_status(ctx: &ReceiverContext, signal: Signal, e: BodyError) -> Status {
    let code = match &e {
        BodyError::Refused(r) => {
            ctx.refused(TRANSPORT, signal, r);
            return r.to_grpc_status();
        }
        BodyError::TooLarge { .. } => Code::ResourceExhausted,
        BodyError::CorruptGzip(_) => Code::InvalidArgument,
        BodyError::TooSlow { .. } | BodyError::Deadline(_) => Code::DeadlineExceeded,
        BodyError::Transport(_) => Code::Cancelled,
    };
    ctx.malformed(TRANSPORT, signal, &e);
    Status::new(code, e.to_string())
}

/// An empty `Export*ServiceResponse` (full success): one empty message, then `grpc-status: 0`.
fn ok_response() -> http::Response<tonic::body::Body> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames = futures::stream::iter([
        Ok::<_, Infallible>(http_body::Frame::data(Bytes::from_static(
            &[0; FRAME_HEADER],
        ))),
        Ok(http_body::Frame::trailers(trailers)),
    ]);
    let mut resp = http::Response::new(tonic::body::Body::new(http_body_util::StreamBody::new(
        frames,
    )));
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-accept-encoding", HeaderValue::from_static("gzip"));
    resp
}

fn service<S: SignalMarker>(
    ctx: &Arc<ReceiverContext>,
    settings: &Arc<GrpcSettings>,
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
    tracing::info!(receiver = %ctx.id, address = ?addr, tls = settings.tls.is_some(), auth = settings.auth.is_some(), "OTLP/gRPC receiver listening");
    let incoming = match settings.tls.clone() {
        None => incoming(listener).boxed(),
        Some(tls) => incoming_tls(listener, tls).boxed(),
    };
    let settings = Arc::new(settings);
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .max_concurrent_streams(HTTP2_MAX_CONCURRENT_STREAMS)
        .add_optional_service(service::<Logs>(&ctx, &settings))
        .add_optional_service(service::<Traces>(&ctx, &settings))
        .add_optional_service(service::<Metrics>(&ctx, &settings))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}

/// Accepted connections as a stream, with `TCP_NODELAY` and a [`ConnectionShare`] each;
/// failed accepts are retried with the shared back-off.
fn incoming(listener: TcpListener) -> impl futures::Stream<Item = Result<Conn, std::io::Error>> {
    let backoff = AcceptBackoff::new(PORT);
    futures::stream::unfold((listener, backoff), |(listener, mut backoff)| async move {
        let (stream, _) = backoff.accept(|| listener.accept()).await;
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            stream: Stream::Plain(stream),
            share: ConnectionShare::default(),
        };
        Some((Ok(conn), (listener, backoff)))
    })
}

/// Like [`incoming`], with each connection's TLS handshake on its own task (within the
/// handshake deadline) so that a slow handshake never holds up the next accept. Connections
/// whose handshake fails are dropped (logged in `tls`). The accept task ends when tonic drops
/// the stream (shutdown).
fn incoming_tls(
    listener: TcpListener,
    tls: ServerTls,
) -> impl futures::Stream<Item = Result<Conn, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Conn>(HTTP2_MAX_CONCURRENT_STREAMS as usize);
    tokio::spawn(async move {
        let mut backoff = AcceptBackoff::new(PORT);
        loop {
            let (stream, _) = tokio::select! {
                accepted = backoff.accept(|| listener.accept()) => accepted,
                _ = tx.closed() => return,
            };
            let _ = stream.set_nodelay(true);
            let (tls, tx) = (tls.clone(), tx.clone());
            tokio::spawn(async move {
                if let Ok(stream) = tls.handshake(stream, PORT).await {
                    let share = ConnectionShare::default();
                    let _ = tx.send(Conn { stream, share }).await;
                }
            });
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        let conn = rx.recv().await?;
        Some((Ok(conn), rx))
    })
}

/// An accepted connection and its share of the budget, which tonic hands to every request
/// of the connection as its connect info (a request extension).
struct Conn {
    stream: Stream,
    share: ConnectionShare,
}

impl Connected for Conn {
    type ConnectInfo = ConnectionShare;

    fn connect_info(&self) -> ConnectionShare {
        self.share.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
