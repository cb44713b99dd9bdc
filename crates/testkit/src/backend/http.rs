//! OTLP/HTTP: `POST /v1/logs`, `/v1/traces`, `/v1/metrics` with protobuf or JSON bodies,
//! optionally `Content-Encoding: gzip` or `zstd`.
//!
//! Refusals map to 503, 429 with `Retry-After: 1`, and 400. Undecodable bodies get 400, unknown
//! content types 415. The answer uses the request's encoding (protobuf or JSON).

use std::io::Read as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;

use super::record::{self, Record};
use super::{Backend, Refusal, Transport};

/// Largest body accepted, compressed or decompressed.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Serves the OTLP/HTTP routes on `listener`.
pub async fn serve(backend: Arc<Backend>, listener: TcpListener) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/v1/logs", post(logs))
        .route("/v1/traces", post(traces))
        .route("/v1/metrics", post(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(backend);
    axum::serve(listener, app).await?;
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

/// A request that could not be turned into a message, with the status to answer.
struct Rejection(StatusCode, String);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

fn decode<M>(headers: &HeaderMap, body: &Bytes) -> Result<(M, Encoding), Rejection>
where
    M: prost::Message + Default + serde::de::DeserializeOwned,
{
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let encoding = if content_type.starts_with("application/x-protobuf") {
        Encoding::Protobuf
    } else if content_type.starts_with("application/json") {
        Encoding::Json
    } else {
        return Err(Rejection(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported content type {content_type:?}"),
        ));
    };
    let content_encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.as_bytes().to_ascii_lowercase());
    let plain: Bytes = if let Some(name @ (b"gzip" | b"zstd")) = content_encoding.as_deref() {
        let mut out = Vec::new();
        let read = if name == b"gzip" {
            flate2::read::GzDecoder::new(body.as_ref())
                .take(MAX_BODY_BYTES as u64 + 1)
                .read_to_end(&mut out)
        } else {
            zstd::stream::read::Decoder::new(body.as_ref())
                .and_then(|d| d.take(MAX_BODY_BYTES as u64 + 1).read_to_end(&mut out))
        };
        read.map_err(|e| {
            Rejection(
                StatusCode::BAD_REQUEST,
                format!("bad {} body: {e}", String::from_utf8_lossy(name)),
            )
        })?;
        if out.len() > MAX_BODY_BYTES {
            return Err(Rejection(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body too large".into(),
            ));
        }
        out.into()
    } else {
        body.clone()
    };
    let message = match encoding {
        Encoding::Protobuf => M::decode(plain)
            .map_err(|e| Rejection(StatusCode::BAD_REQUEST, format!("bad protobuf: {e}")))?,
        Encoding::Json => serde_json::from_slice(&plain)
            .map_err(|e| Rejection(StatusCode::BAD_REQUEST, format!("bad JSON: {e}")))?,
    };
    Ok((message, encoding))
}

fn refusal_response(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "test backend mode: unavailable",
        )
            .into_response(),
        Refusal::ResourceExhausted => {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                "test backend mode: resource_exhausted",
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        Refusal::Invalid => (StatusCode::BAD_REQUEST, "test backend mode: invalid").into_response(),
    }
}

fn encode<M: prost::Message + serde::Serialize>(message: &M, encoding: Encoding) -> Response {
    match encoding {
        Encoding::Protobuf => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            message.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => match serde_json::to_vec(message) {
            Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        },
    }
}

/// Admits, decodes, records; `respond` builds the success answer from the rejected count.
async fn handle<M, R>(
    backend: Arc<Backend>,
    headers: HeaderMap,
    body: Bytes,
    flatten: fn(&M) -> Vec<Record>,
    respond: fn(i64) -> R,
) -> Response
where
    M: prost::Message + Default + serde::de::DeserializeOwned,
    R: prost::Message + serde::Serialize,
{
    let rejected = match backend.admit(Transport::Http, &headers).await {
        Ok(rejected) => rejected,
        Err(refusal) => return refusal_response(refusal),
    };
    let (message, encoding) = match decode::<M>(&headers, &body) {
        Ok(decoded) => decoded,
        Err(rejection) => {
            backend.note_undecodable();
            return rejection.into_response();
        }
    };
    let records = flatten(&message);
    if let Err(refusal) = backend.check_ids(&records) {
        return refusal_response(refusal);
    }
    if let Err(e) = backend.accept(records, rejected).await {
        tracing::error!(error = %e, "writing the record file failed; answering 500");
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    encode(&respond(rejected), encoding)
}

fn partial_message(rejected: i64) -> String {
    format!("test backend mode: partial:{rejected}")
}

async fn logs(State(b): State<Arc<Backend>>, headers: HeaderMap, body: Bytes) -> Response {
    handle::<ExportLogsServiceRequest, _>(b, headers, body, record::from_logs, |rejected| {
        ExportLogsServiceResponse {
            partial_success: (rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message: partial_message(rejected),
            }),
        }
    })
    .await
}

async fn traces(State(b): State<Arc<Backend>>, headers: HeaderMap, body: Bytes) -> Response {
    handle::<ExportTraceServiceRequest, _>(b, headers, body, record::from_traces, |rejected| {
        ExportTraceServiceResponse {
            partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: partial_message(rejected),
            }),
        }
    })
    .await
}

async fn metrics(State(b): State<Arc<Backend>>, headers: HeaderMap, body: Bytes) -> Response {
    handle::<ExportMetricsServiceRequest, _>(b, headers, body, record::from_metrics, |rejected| {
        ExportMetricsServiceResponse {
            partial_success: (rejected > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: rejected,
                error_message: partial_message(rejected),
            }),
        }
    })
    .await
}
