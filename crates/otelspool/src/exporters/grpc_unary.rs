//! One unary gRPC call over tonic's [`Channel`], framed here: the queued request bytes go out
//! in one length-prefixed message, compressed at the configured level, and the response comes
//! back as raw bytes with its final [`Status`].
//!
//! Hand-written because tonic's client compresses at a fixed level (gzip 6; its source says
//! "FIXME: support customizing the compression level") and only inside its encoder, on the
//! async worker. Framing the one message ourselves lets the exporter choose gzip or zstd and
//! the level, compress big batches on the blocking pool, and still send the client's bytes
//! without decoding them. Everything else is tonic's: the channel (connection, HTTP/2, TLS,
//! keep-alive), the `Status` parsed from headers and trailers (`grpc-status`,
//! `grpc-message`, `grpc-status-details-bin`), and `Status::from_error` for transport
//! failures, so the retry classification sees exactly what it saw through tonic's client.
//! Responses follow the gRPC protocol (PROTOCOL-HTTP2.md): a trailers-only response, an HTTP
//! status without `grpc-status` mapped as http-grpc-status-mapping.md says, a compressed
//! response message per its `grpc-encoding`.

use std::convert::Infallible;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::{CONTENT_TYPE, TE, USER_AGENT};
use http::{HeaderValue, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Limited, StreamBody};
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tower::{Service, ServiceExt};

use super::compression::{Compression, MAX_RESPONSE_BYTES, decompress_response};

/// What one call needs besides the payload.
#[derive(Debug, Clone, Copy)]
pub struct CallSettings<'a> {
    /// `/package.Service/Method`.
    pub path: &'static str,
    /// Extra metadata (headers such as `authorization`).
    pub metadata: &'a MetadataMap,
    /// Sent as `grpc-timeout`.
    pub timeout: Duration,
    /// How the message is compressed.
    pub compression: Compression,
}

/// Sends `message` (an encoded protobuf message) and returns the response message's bytes
/// (empty when the server sent none with an OK status).
pub async fn unary(
    channel: &Channel,
    call: CallSettings<'_>,
    message: Bytes,
) -> Result<Bytes, Status> {
    let compressed = call.compression.encoding().is_some();
    let payload = call
        .compression
        .compress_bytes(message)
        .await
        .map_err(|e| Status::internal(format!("compressing the request failed: {e}")))?;
    let request = build_request(call, message_body(compressed, payload))?;
    let mut channel = channel.clone();
    let ready = channel
        .ready()
        .await
        .map_err(|e| Status::from_error(e.into()))?;
    let response = ready
        .call(request)
        .await
        .map_err(|e| Status::from_error(e.into()))?;
    read_response(response).await
}

/// The 5-byte gRPC message prefix: compressed flag, big-endian length.
fn prefix(compressed: bool, len: usize) -> Bytes {
    let mut buf = BytesMut::with_capacity(5);
    buf.put_u8(u8::from(compressed));
    buf.put_u32(len as u32);
    buf.freeze()
}

/// The request body: the prefix, then the payload as its own chunk, so that the payload (a
/// whole batch when uncompressed) is not copied behind the prefix.
fn message_body(compressed: bool, payload: Bytes) -> tonic::body::Body {
    let chunks = futures::stream::iter([
        Ok::<_, Infallible>(Frame::data(prefix(compressed, payload.len()))),
        Ok(Frame::data(payload)),
    ]);
    tonic::body::Body::new(StreamBody::new(chunks))
}

fn build_request(
    call: CallSettings<'_>,
    body: tonic::body::Body,
) -> Result<http::Request<tonic::body::Body>, Status> {
    let mut request = http::Request::post(call.path)
        .body(body)
        .map_err(|e| Status::internal(format!("building the request failed: {e}")))?;
    let headers = request.headers_mut();
    // Metadata first, so that none of it can replace a protocol header below.
    headers.extend(call.metadata.clone().into_headers());
    headers.insert(TE, HeaderValue::from_static("trailers"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("otelspool/", env!("CARGO_PKG_VERSION"))),
    );
    headers.insert(
        "grpc-accept-encoding",
        HeaderValue::from_static("gzip,zstd"),
    );
    if let Some(encoding) = call.compression.encoding() {
        headers.insert("grpc-encoding", HeaderValue::from_static(encoding));
    }
    if let Ok(v) = HeaderValue::try_from(grpc_timeout(call.timeout)) {
        headers.insert("grpc-timeout", v);
    }
    Ok(request)
}

/// `grpc-timeout` as the protocol writes it: at most 8 digits and a unit.
fn grpc_timeout(timeout: Duration) -> String {
    let millis = timeout.as_millis();
    if millis < 100_000_000 {
        format!("{millis}m")
    } else {
        format!("{}S", timeout.as_secs().min(99_999_999))
    }
}

async fn read_response(response: http::Response<tonic::body::Body>) -> Result<Bytes, Status> {
    let (parts, body) = response.into_parts();
    // A trailers-only response carries its status in the headers.
    if let Some(status) = Status::from_header_map(&parts.headers)
        && status.code() != Code::Ok
    {
        return Err(status);
    }
    let collected = Limited::new(body, MAX_RESPONSE_BYTES + 5)
        .collect()
        .await
        .map_err(Status::from_error)?;
    let trailers = collected.trailers().cloned();
    let data = collected.to_bytes();
    let status = trailers
        .as_ref()
        .and_then(Status::from_header_map)
        .or_else(|| Status::from_header_map(&parts.headers))
        .unwrap_or_else(|| status_from_http(parts.status));
    if status.code() != Code::Ok {
        return Err(status);
    }
    let encoding = parts
        .headers
        .get("grpc-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity");
    read_message(data, encoding)
}

/// The gRPC status of a response that has no `grpc-status` at all.
fn status_from_http(status: StatusCode) -> Status {
    let code = match status {
        StatusCode::BAD_REQUEST => Code::Internal,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::Unimplemented,
        StatusCode::TOO_MANY_REQUESTS
        | StatusCode::BAD_GATEWAY
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::GATEWAY_TIMEOUT => Code::Unavailable,
        _ => Code::Unknown,
    };
    Status::new(
        code,
        format!(
            "grpc-status missing, mapped from HTTP status {}",
            status.as_u16()
        ),
    )
}

/// The first message of a response body (an export response has exactly one).
fn read_message(mut data: Bytes, encoding: &str) -> Result<Bytes, Status> {
    if data.is_empty() {
        return Ok(Bytes::new());
    }
    if data.len() < 5 {
        return Err(Status::internal("truncated gRPC response frame"));
    }
    let compressed = data.get_u8();
    let len = data.get_u32() as usize;
    if data.len() < len {
        return Err(Status::internal("truncated gRPC response message"));
    }
    let message = data.split_to(len);
    match compressed {
        0 => Ok(message),
        1 => match decompress_response(encoding, &message) {
            Some(Ok(plain)) => Ok(Bytes::from(plain)),
            Some(Err(e)) => Err(Status::internal(format!(
                "cannot decompress the {encoding} response: {e}"
            ))),
            None => Err(Status::internal(format!(
                "response compressed with unsupported grpc-encoding {encoding:?}"
            ))),
        },
        flag => Err(Status::internal(format!(
            "invalid gRPC compressed flag {flag}"
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A response body of one message: prefix and message.
    fn frame(compressed: bool, payload: &[u8]) -> Bytes {
        [&prefix(compressed, payload.len())[..], payload]
            .concat()
            .into()
    }

    /// Scenario: a response message framed plain, gzip-compressed, and cut short.
    /// Guarantees: plain and compressed read back to the message; a cut frame is an error,
    /// an empty body an empty message.
    #[test]
    fn response_frames() {
        let msg = b"\x12\x05hello";
        assert_eq!(
            read_message(frame(false, msg), "identity").unwrap(),
            &msg[..]
        );
        let gz = Compression::gzip(1).compress(msg).unwrap();
        assert_eq!(read_message(frame(true, &gz), "gzip").unwrap(), &msg[..]);
        let mut cut = frame(false, msg);
        cut.truncate(7);
        assert_eq!(
            read_message(cut, "identity").unwrap_err().code(),
            Code::Internal
        );
        assert!(read_message(Bytes::new(), "identity").unwrap().is_empty());
        assert!(read_message(frame(true, &gz), "br").is_err());
    }

    /// Scenario: timeouts around the 8-digit limit of `grpc-timeout`.
    /// Guarantees: milliseconds while they fit, seconds beyond.
    #[test]
    fn grpc_timeout_has_at_most_eight_digits() {
        assert_eq!(grpc_timeout(Duration::from_secs(5)), "5000m");
        assert_eq!(grpc_timeout(Duration::from_secs(200_000)), "200000S");
    }

    /// Scenario: HTTP statuses a proxy answers without any gRPC status.
    /// Guarantees: the codes of the gRPC http-grpc-status mapping (429/502/503/504 are
    /// Unavailable, so retried).
    #[test]
    fn http_statuses_map_as_the_grpc_spec_says() {
        for (http, code) in [
            (400, Code::Internal),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (429, Code::Unavailable),
            (502, Code::Unavailable),
            (503, Code::Unavailable),
            (504, Code::Unavailable),
            (500, Code::Unknown),
        ] {
            assert_eq!(
                status_from_http(StatusCode::from_u16(http).unwrap()).code(),
                code,
                "{http}"
            );
        }
    }
}
