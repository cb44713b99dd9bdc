//! OTLP/HTTP: `POST /v1/logs`, `/v1/traces`, `/v1/metrics` with `application/x-protobuf` or
//! `application/json` bodies, optionally gzip-compressed.
//!
//! Bodies are bounded twice: the bytes on the wire and the bytes after decompression (a gzip
//! bomb is cut off at the limit, never inflated in full). Errors carry a `google.rpc.Status`
//! body in the request's encoding, as the OTLP specification asks.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use prost::Message;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::ReceiverContext;
use crate::pipeline::{Decoded, Payload, Refusal, Signal};

const TRANSPORT: &str = "http";
/// Time a client has to send its whole body once the headers arrived.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of the HTTP server.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Largest body accepted, compressed or not (`max_request_body_size`).
    pub max_request_body_size: usize,
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

/// Inflates at most `limit` bytes; more is an error (the rest is never inflated).
fn gunzip_bounded(body: &[u8], limit: usize) -> Result<Vec<u8>, StatusCode> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    let read = flate2::read::MultiGzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| StatusCode::BAD_REQUEST)?;
    if read > limit {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    Ok(out)
}

async fn export(state: Arc<HttpState>, signal: Signal, req: http::Request<Body>) -> Response {
    let started = Instant::now();
    let ctx = &state.ctx;
    let encoding = match content_encoding(req.headers()) {
        Ok(e) => e,
        Err(resp) => {
            ctx.malformed(TRANSPORT, signal, &"unsupported content type");
            return *resp;
        }
    };
    let limit = state.settings.max_request_body_size;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let compressed = req.headers().get(header::CONTENT_ENCODING).is_some();
    // The inflated size of a compressed body is unknown until read: plan for the limit.
    let expected = match declared {
        Some(n) if !compressed => n.min(limit),
        _ => limit,
    };
    let _permit = match ctx.admit(
        TRANSPORT,
        signal,
        expected.saturating_mul(super::DECODE_EXPANSION),
    ) {
        Ok(p) => p,
        Err(r) => return refusal_answer(&r, encoding),
    };
    let too_large = |what: &str| {
        answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            encoding,
            &format!("{what} is larger than the limit of {limit} bytes"),
            None,
        )
    };
    if declared.is_some_and(|n| n > limit) {
        ctx.malformed(TRANSPORT, signal, &"body too large");
        return too_large("request body");
    }
    let gzip = match req
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    {
        None | Some("identity") | Some("") => false,
        Some(e) if e.eq_ignore_ascii_case("gzip") => true,
        Some(other) => {
            return answer(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                encoding,
                &format!("unsupported content encoding {other:?}; use gzip"),
                None,
            );
        }
    };
    let read = tokio::time::timeout(
        BODY_READ_TIMEOUT,
        Limited::new(req.into_body(), limit).collect(),
    );
    let Ok(read) = read.await else {
        ctx.malformed(TRANSPORT, signal, &"body read timeout");
        return answer(
            StatusCode::REQUEST_TIMEOUT,
            encoding,
            "request body not received in time",
            None,
        );
    };
    let body = match read {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            ctx.malformed(TRANSPORT, signal, &e);
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return too_large("request body");
            }
            return answer(
                StatusCode::BAD_REQUEST,
                encoding,
                &format!("could not read the request body: {e}"),
                None,
            );
        }
    };
    let body = if gzip {
        match gunzip_bounded(&body, limit) {
            Ok(b) => Bytes::from(b),
            Err(StatusCode::PAYLOAD_TOO_LARGE) => {
                ctx.malformed(TRANSPORT, signal, &"decompressed body too large");
                return too_large("decompressed request body");
            }
            Err(_) => {
                ctx.malformed(TRANSPORT, signal, &"bad gzip");
                return answer(
                    StatusCode::BAD_REQUEST,
                    encoding,
                    "body is not valid gzip",
                    None,
                );
            }
        }
    } else {
        body
    };
    let payload = match encoding {
        Encoding::Protobuf => Payload::from_protobuf(signal, body),
        Encoding::Json => Decoded::from_json(signal, &body).map(Decoded::into_payload),
    };
    let payload = match payload {
        Ok(p) => p,
        Err(e) => {
            ctx.malformed(TRANSPORT, signal, &e);
            return answer(StatusCode::BAD_REQUEST, encoding, &e.to_string(), None);
        }
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
    tracing::info!(receiver = %ctx.id, address = ?listener.local_addr().ok(), "OTLP/HTTP receiver listening");
    crate::server::serve(listener, router(ctx, settings), shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_bomb_is_cut_at_the_limit() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 50 << 20]).expect("write");
        let bomb = enc.finish().expect("finish");
        assert!(bomb.len() < 200_000);
        assert_eq!(
            gunzip_bounded(&bomb, 1 << 20),
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        );
        assert_eq!(
            gunzip_bounded(b"not gzip", 1 << 20),
            Err(StatusCode::BAD_REQUEST)
        );
    }
}
