//! Receiver security against real clients on 127.0.0.1, over both transports: TLS with a test
//! CA, mTLS with and without a client certificate, plaintext to a TLS port, a client that
//! never handshakes, and bearer tokens (right, wrong, missing, wrong scheme), checked before
//! the body is read. A refused request is answered, counted, and never queued.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;
mod pki;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::pass_through_codec::PassThroughCodec;
use common::{Options, Receiver, logs};
use otelspool::pipeline::Signal;
use otelspool::receivers::auth::BearerTokenAuth;
use otelspool::receivers::tls::ServerTls;
use otelspool_config::{BearerTokenAuthConfig, Secret};
use pki::{Pair, Pki};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

const TOKEN: &str = "t0k3n-for-receiver-tests";
const GRPC_ALPN: &[&[u8]] = &[b"h2"];
const HTTP_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

fn server_tls(pki: &Pki, mtls: bool, alpn: &[&[u8]]) -> ServerTls {
    let ca = pki.file("ca.pem");
    ServerTls::load(
        &pki.file("server.pem"),
        &pki.file("server-key.pem"),
        mtls.then_some(ca.as_path()),
        alpn,
    )
    .expect("server TLS")
}

fn bearer(token: &str) -> Arc<BearerTokenAuth> {
    let config = BearerTokenAuthConfig {
        token: Some(Secret::new(token)),
        ..Default::default()
    };
    Arc::new(BearerTokenAuth::new(&config).unwrap())
}

async fn start(pki: &Pki, mtls: bool, auth: Option<Arc<BearerTokenAuth>>) -> Receiver {
    Receiver::start(Options {
        grpc_tls: Some(server_tls(pki, mtls, GRPC_ALPN)),
        http_tls: Some(server_tls(pki, mtls, HTTP_ALPN)),
        auth,
        ..Options::default()
    })
    .await
}

/// A gRPC channel to `addr` over TLS (trusting the test CA) or plaintext.
fn channel(addr: SocketAddr, tls: Option<tonic::transport::ClientTlsConfig>) -> Channel {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).unwrap();
    }
    endpoint.connect_lazy()
}

/// One logs `Export` of two records, with `authorization` set if given.
async fn grpc_export(channel: &Channel, authorization: Option<&str>) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut request = tonic::Request::new(logs(2));
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().unwrap());
    }
    let path = http::uri::PathAndQuery::from_static(Signal::Logs.grpc_path());
    grpc.unary(request, path, PassThroughCodec)
        .await
        .map(|_| ())
}

/// An HTTP/1.1 request head for `/v1/logs` with `extra` header lines and a body of `len`.
fn head(addr: SocketAddr, extra: &str, len: usize) -> String {
    format!(
        "POST /v1/logs HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-protobuf\r\n\
         content-length: {len}\r\nconnection: close\r\n{extra}\r\n"
    )
}

/// Sends a complete logs request and reads the whole answer; the status, or `None` when the
/// answer is not HTTP.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    addr: SocketAddr,
    extra: &str,
) -> std::io::Result<Option<u16>> {
    let body = logs(2);
    s.write_all(head(addr, extra, body.len()).as_bytes())
        .await?;
    s.write_all(&body).await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    Ok(common::parse_status(&out))
}

/// A logs request over HTTPS with `client` (an error when the TLS session fails).
async fn https_post(
    addr: SocketAddr,
    client: Arc<rustls::ClientConfig>,
    extra: &str,
) -> std::io::Result<Option<u16>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(client)
        .connect(name, tcp)
        .await?;
    exchange(tls, addr, extra).await
}

fn http1(pki: &Pki, identity: Option<&Pair>) -> Arc<rustls::ClientConfig> {
    pki.client_config(identity, &[b"http/1.1"])
}

/// `otelspool_receiver_refused_requests` for `transport` and reason `unauthenticated`.
fn unauthenticated(r: &Receiver, transport: &str) -> u64 {
    r.ctx
        .metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("otelspool_receiver_refused_requests{"))
        .filter(|l| l.contains("reason=\"unauthenticated\""))
        .filter(|l| l.contains(&format!("transport=\"{transport}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Scenario: TLS on both transports (no client certificates asked) plus a bearer token; a
/// client trusting the test CA sends the right token over gRPC and over HTTP.
/// Guarantees: both requests are acknowledged and both are queued: TLS and auth compose.
#[tokio::test]
async fn tls_clients_with_the_right_token_are_served_over_both_transports() {
    let pki = Pki::new();
    let r = start(&pki, false, Some(bearer(TOKEN))).await;
    let grpc = channel(r.grpc, Some(pki.grpc_tls(None)));
    grpc_export(&grpc, Some(&format!("Bearer {TOKEN}")))
        .await
        .unwrap();
    let status = https_post(
        r.http,
        http1(&pki, None),
        &format!("authorization: Bearer {TOKEN}\r\n"),
    )
    .await
    .unwrap();
    assert_eq!(status, Some(200));
    assert_eq!(r.queued(Signal::Logs), 2);
}

/// Scenario: mTLS on both transports; clients with a certificate from the client CA, without
/// a certificate, and with a certificate from another CA; then a good client again.
/// Guarantees: only the certified client is served; the others fail at the TLS layer (no
/// HTTP or gRPC answer), nothing of theirs is queued, and the server keeps serving.
#[tokio::test]
async fn mtls_serves_only_clients_certified_by_the_client_ca() {
    let pki = Pki::new();
    let r = start(&pki, true, None).await;
    grpc_export(
        &channel(r.grpc, Some(pki.grpc_tls(Some(&pki.client)))),
        None,
    )
    .await
    .unwrap();
    let ok = https_post(r.http, http1(&pki, Some(&pki.client)), "").await;
    assert_eq!(ok.unwrap(), Some(200));
    assert_eq!(r.queued(Signal::Logs), 2);

    for identity in [None, Some(&pki.stranger)] {
        let grpc = channel(r.grpc, Some(pki.grpc_tls(identity)));
        let refused = grpc_export(&grpc, None).await;
        assert!(
            refused.is_err(),
            "gRPC without a trusted certificate was served"
        );
        let refused = https_post(r.http, http1(&pki, identity), "").await;
        assert!(
            !matches!(refused, Ok(Some(_))),
            "HTTP without a trusted certificate got an HTTP answer: {refused:?}"
        );
    }
    assert_eq!(
        r.queued(Signal::Logs),
        2,
        "nothing of a refused client is queued"
    );

    grpc_export(
        &channel(r.grpc, Some(pki.grpc_tls(Some(&pki.client)))),
        None,
    )
    .await
    .unwrap();
    let ok = https_post(r.http, http1(&pki, Some(&pki.client)), "").await;
    assert_eq!(ok.unwrap(), Some(200));
    assert_eq!(r.queued(Signal::Logs), 4);
}

/// Scenario: plaintext clients (h2c gRPC, HTTP/1.1) talk to the TLS ports.
/// Guarantees: they fail cleanly (an error, no OTLP answer), nothing is queued, and TLS
/// clients are served right after.
#[tokio::test]
async fn plaintext_to_a_tls_port_fails_cleanly_and_the_port_keeps_serving() {
    let pki = Pki::new();
    let r = start(&pki, false, None).await;
    let plain = grpc_export(&channel(r.grpc, None), None).await;
    assert!(plain.is_err(), "plaintext gRPC was served by a TLS port");
    let tcp = TcpStream::connect(r.http).await.unwrap();
    let plain = exchange(tcp, r.http, "").await;
    assert!(
        !matches!(plain, Ok(Some(_))),
        "plaintext HTTP got an HTTP answer from a TLS port: {plain:?}"
    );
    assert_eq!(r.queued(Signal::Logs), 0);

    grpc_export(&channel(r.grpc, Some(pki.grpc_tls(None))), None)
        .await
        .unwrap();
    let ok = https_post(r.http, http1(&pki, None), "").await;
    assert_eq!(ok.unwrap(), Some(200));
    assert_eq!(r.queued(Signal::Logs), 2);
}

/// Scenario: clients open TCP to both TLS ports and never send a byte, with a handshake
/// deadline of 300 ms.
/// Guarantees: the server closes each such connection by itself (EOF or reset) well before the
/// 5 s this test waits, and serves TLS clients meanwhile.
#[tokio::test]
async fn a_client_that_never_handshakes_is_cut_at_the_deadline() {
    let pki = Pki::new();
    let deadline = Duration::from_millis(300);
    let r = Receiver::start(Options {
        grpc_tls: Some(server_tls(&pki, false, GRPC_ALPN).with_handshake_timeout(deadline)),
        http_tls: Some(server_tls(&pki, false, HTTP_ALPN).with_handshake_timeout(deadline)),
        ..Options::default()
    })
    .await;
    let mut silent = Vec::new();
    for addr in [r.grpc, r.http] {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    let ok = https_post(r.http, http1(&pki, None), "").await;
    assert_eq!(ok.unwrap(), Some(200), "served while silent clients wait");
    for mut s in silent {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => panic!("a silent client was sent {n} bytes"),
            Err(_) => panic!("a client that never handshakes was not cut"),
        }
    }
}

/// Scenario: a receiver with a bearer token; over gRPC and HTTP, requests with no token, a
/// wrong token, the right token with the wrong scheme, and the right token.
/// Guarantees: only the last is served and queued; the others get `Unauthenticated` / 401
/// and are counted as refused with reason `unauthenticated`, three per transport.
#[tokio::test]
async fn only_the_right_token_is_let_in_over_both_transports() {
    let r = Receiver::start(Options {
        auth: Some(bearer(TOKEN)),
        ..Options::default()
    })
    .await;
    let right = format!("Bearer {TOKEN}");
    let wrong_scheme = format!("Basic {TOKEN}");
    let refused: [Option<&str>; 3] = [None, Some("Bearer not-the-token"), Some(&wrong_scheme)];
    let grpc = r.channel();
    for authorization in refused {
        let status = grpc_export(&grpc, authorization).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{authorization:?}");
        assert!(!status.message().contains(TOKEN), "{}", status.message());
    }
    grpc_export(&grpc, Some(&right)).await.unwrap();
    for authorization in refused {
        let extra = authorization.map_or(String::new(), |a| format!("authorization: {a}\r\n"));
        let tcp = TcpStream::connect(r.http).await.unwrap();
        let status = exchange(tcp, r.http, &extra).await.unwrap();
        assert_eq!(status, Some(401), "{authorization:?}");
    }
    let tcp = TcpStream::connect(r.http).await.unwrap();
    let ok = exchange(tcp, r.http, &format!("authorization: {right}\r\n")).await;
    assert_eq!(ok.unwrap(), Some(200));
    assert_eq!(
        r.queued(Signal::Logs),
        2,
        "one queue entry per served request"
    );
    assert_eq!(unauthenticated(&r, "grpc"), 3);
    assert_eq!(unauthenticated(&r, "http"), 3);
}

/// Scenario: requests with a wrong token announce a 1 MiB body and never send it (HTTP/1.1
/// with `content-length`, and a gRPC stream whose body never ends).
/// Guarantees: both are answered `Unauthenticated` / 401 at once, without waiting for the
/// body: the token is checked before the body is read.
#[tokio::test]
async fn the_token_is_checked_before_the_body_is_read() {
    let r = Receiver::start(Options {
        auth: Some(bearer(TOKEN)),
        ..Options::default()
    })
    .await;
    let mut s = TcpStream::connect(r.http).await.unwrap();
    let stalled = head(r.http, "authorization: Bearer wrong\r\n", 1 << 20);
    s.write_all(stalled.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let answered = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 1024];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed without an answer");
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(answered.is_ok(), "no answer while the body is withheld");
    assert_eq!(common::parse_status(&got), Some(401));

    use tower::{Service, ServiceExt};
    let never: futures::stream::Pending<Result<http_body::Frame<bytes::Bytes>, tonic::Status>> =
        futures::stream::pending();
    let body = tonic::body::Body::new(http_body_util::StreamBody::new(never));
    let req = http::Request::builder()
        .method(http::Method::POST)
        .uri(Signal::Logs.grpc_path())
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .header("authorization", "Bearer wrong")
        .body(body)
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        let mut channel = r.channel();
        let resp = channel.ready().await.unwrap().call(req).await.unwrap();
        common::grpc_code(resp).await
    })
    .await;
    assert_eq!(answer.expect("answered at once"), Code::Unauthenticated);
    assert_eq!(r.queued(Signal::Logs), 0);
}
