//! OTLP/HTTP: `POST /v1/logs`, `/v1/traces`, `/v1/metrics` with `application/x-protobuf` or
//! `application/json` bodies, optionally gzip-compressed.
//!
//! Bodies are bounded twice: the bytes on the wire and the bytes after decompression (a gzip
//! bomb is cut off at the limit, never inflated in full). They are charged to the in-flight
//! budget as they arrive, never on their declared length, and cut with 408 (and the
//! connection closed) when they arrive too slowly (see `body`). Errors carry a
//! `google.rpc.Status` body in the request's encoding, as the OTLP specification asks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use prost::Message;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::body::{BodyError, BodyPolicy, read_body};
use super::{BodyForm, DECODE_EXPANSION, PrepareError, ReceiverContext};
use crate::pipeline::{Refusal, Signal};
use crate::receivers::auth::BearerTokenAuth;
use crate::receivers::tls::ServerTls;
use crate::server::ConnectionShare;

const TRANSPORT: &str = "http";

/// Settings of the HTTP server.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Largest body accepted, compressed or not (`max_request_body_size`).
    pub max_request_body_size: usize,
    /// How slowly a client may send its body.
    pub body: BodyPolicy,
    /// Serve TLS instead of plaintext (`tls`).
    pub tls: Option<ServerTls>,
    /// Let in only requests this authenticator approves (`auth`).
    pub auth: Option<Arc<BearerTokenAuth>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

/// `google.rpc.Status`, the error body OTLP/HTTP asks for.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

struct HttpState {
    ctx: Arc<ReceiverContext>,
    settings: HttpSettings,
}

fn answer(
    status: StatusCode,
    encoding: Encoding,
    message: &str,
    retry_after: Option<Duration>,
) -> Response {
    let grpc_code = match status {
        StatusCode::OK => 0,
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => 3,
        StatusCode::PAYLOAD_TOO_LARGE => 11,
        StatusCode::UNAUTHORIZED => 16,
        _ => 14,
    };
    let (content_type, body) = match (status, encoding) {
        (StatusCode::OK, Encoding::Protobuf) => ("application/x-protobuf", Bytes::new()),
        (StatusCode::OK, Encoding::Json) => ("application/json", Bytes::from_static(b"{}")),
        (_, Encoding::Protobuf) => (
            "application/x-protobuf",
            Bytes::from(
                RpcStatus {
                    code: grpc_code,
                    message: message.to_string(),
                }
                .encode_to_vec(),
            ),
        ),
        (_, Encoding::Json) => (
            "application/json",
            Bytes::from(serde_json::json!({ "code": grpc_code, "message": message }).to_string()),
        ),
    };
    let mut resp = (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Some(after) = retry_after {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(after.as_secs().max(1)),
        );
    }
    resp
}

fn refusal_answer(r: &Refusal, encoding: Encoding) -> Response {
    answer(r.http_status(), encoding, &r.to_string(), r.retry_after())
}

fn content_encoding(headers: &HeaderMap) -> Result<Encoding, Box<Response>> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(Box::new(answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Encoding::Json,
            &format!(
                "unsupported content type {ct:?}; use application/x-protobuf or application/json"
            ),
            None,
        ))),
    }
}

/// Whether the body is gzip (`Err` answers an encoding other than gzip or identity).
fn body_is_gzip(headers: &HeaderMap, encoding: Encoding) -> Result<bool, Box<Response>> {
    match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    {
        None | Some("identity") | Some("") => Ok(false),
        Some(e) if e.eq_ignore_ascii_case("gzip") => Ok(true),
        Some(other) => Err(Box::new(answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            encoding,
            &format!("unsupported content encoding {other:?}; use gzip"),
            None,
        ))),
    }
}

/// The answer to a body that could not be read or inflated. A body cut for being too slow
/// also closes an HTTP/1 connection: what is left of it on the wire is not read.
fn body_answer(
    ctx: &ReceiverContext,
    signal: Signal,
    encoding: Encoding,
    http1: bool,
    e: BodyError,
) -> Response {
    let status = match &e {
        BodyError::Refused(r) => {
            ctx.refused(TRANSPORT, signal, r);
            return refusal_answer(r, encoding);
        }
        BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        BodyError::TooSlow { .. } | BodyError::Deadline(_) => StatusCode::REQUEST_TIMEOUT,
        BodyError::CorruptGzip(_) | BodyError::Transport(_) => StatusCode::BAD_REQUEST,
    };
    ctx.malformed(TRANSPORT, signal, &e);
    let mut resp = answer(status, encoding, &e.to_string(), None);
    if status == StatusCode::REQUEST_TIMEOUT && http1 {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

async fn export(state: Arc<HttpState>, signal: Signal, req: http::Request<Body>) -> Response {
    let started = Instant::now();
    let ctx = &state.ctx;
    let auth = state.settings.auth.as_deref();
    if let Err(r) = ctx.authenticate(TRANSPORT, signal, auth, req.headers()) {
        let encoding = content_encoding(req.headers()).unwrap_or(Encoding::Json);
        return refusal_answer(&r, encoding);
    }
    let encoding = match content_encoding(req.headers()) {
        Ok(e) => e,
        Err(resp) => {
            ctx.malformed(TRANSPORT, signal, &"unsupported content type");
            return *resp;
        }
    };
    let gzip = match body_is_gzip(req.headers(), encoding) {
        Ok(g) => g,
        Err(resp) => {
            ctx.malformed(TRANSPORT, signal, &"unsupported content encoding");
            return *resp;
        }
    };
    if let Err(r) = ctx.admit(TRANSPORT, signal) {
        return refusal_answer(&r, encoding);
    }
    let limit = state.settings.max_request_body_size;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return body_answer(ctx, signal, encoding, true, BodyError::TooLarge { limit });
    }
    let http1 = req.version() < http::Version::HTTP_2;
    let (parts, body) = req.into_parts();
    let mut charge = ctx.in_flight.charge(
        parts.extensions.get::<ConnectionShare>().cloned(),
        limit.saturating_mul(DECODE_EXPANSION),
    );
    let fail = |e| body_answer(ctx, signal, encoding, http1, e);
    let received = match read_body(body, limit, &state.settings.body, &mut charge).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let form = BodyForm {
        gzip,
        json: encoding == Encoding::Json,
        limit,
    };
    // The charge is kept until the payload is queued.
    let (payload, _charge) = match ctx.prepare(TRANSPORT, signal, received, form, charge).await {
        Ok(prepared) => prepared,
        Err(PrepareError::Body(e)) => return fail(e),
        Err(PrepareError::Refused(r)) => return refusal_answer(&r, encoding),
    };
    match ctx.consume(TRANSPORT, payload, started).await {
        Ok(()) => answer(StatusCode::OK, encoding, "", None),
        Err(r) => refusal_answer(&r, encoding),
    }
}

/// The OTLP/HTTP routes for the signals the receiver's pipelines take.
pub fn router(ctx: Arc<ReceiverContext>, settings: HttpSettings) -> Router {
    let state = Arc::new(HttpState { ctx, settings });
    let mut app = Router::new();
    for signal in Signal::ALL {
        if state.ctx.router.accepts(signal) {
            app = app.route(
                signal.http_path(),
                post(
                    move |State(s): State<Arc<HttpState>>, req: http::Request<Body>| {
                        export(s, signal, req)
                    },
                ),
            );
        }
    }
    app.layer(DefaultBodyLimit::disable()).with_state(state)
}

/// Serves OTLP/HTTP on `listener` until `shutdown`; in-flight requests finish first.
pub async fn serve_http(
    listener: TcpListener,
    ctx: Arc<ReceiverContext>,
    settings: HttpSettings,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(receiver = %ctx.id, address = ?listener.local_addr().ok(), tls = settings.tls.is_some(), auth = settings.auth.is_some(), "OTLP/HTTP receiver listening");
    let tls = settings.tls.clone();
    crate::server::serve_with_tls(listener, router(ctx, settings), tls, shutdown).await
}
