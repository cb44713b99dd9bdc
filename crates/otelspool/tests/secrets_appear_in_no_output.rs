//! Tokens, authorization headers and TLS key contents must appear in nothing otelspool prints
//! or serves: its logs at debug and at trace, `validate` on good and broken configs, start-up
//! errors, the answers to refused clients, `/metrics`, and the health endpoint's pages. This
//! runs the real binary with a config holding all of them, and greps everything it produced.
#![allow(clippy::unwrap_used, missing_docs)]

mod binary;
mod common;
mod pki;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use binary::{Running, free_port, get, run};
use common::pass_through_codec::PassThroughCodec;
use otelspool::pipeline::Signal;
use pki::Pki;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::{Channel, Endpoint};

/// The receiver token, from `${env:OTLP_TOKEN}`.
const ENV_TOKEN: &str = "envtok-4b1d8e0c7a9f";
/// A receiver token written in the file.
const FILE_TOKEN: &str = "filetok-9c2e7d1a5b3f";
/// A wrong token a client sends.
const WRONG_TOKEN: &str = "wrongtok-1a2b3c4d5e6f";
/// An exporter header value written in the file.
const EXPORTER_HEADER: &str = "exphdr-7e6d5c4b3a21";
/// An exporter header value from `${env:EXPORTER_KEY}`.
const EXPORTER_ENV_HEADER: &str = "expenv-0f1e2d3c4b5a";
/// The contents of a key file that is not valid PEM.
const BAD_KEY_CONTENTS: &str = "badkeybody-5a4b3c2d1e0f";

struct Ports {
    grpc: u16,
    http: u16,
    health: u16,
    metrics: u16,
    backend: u16,
}

fn config(pki: &Pki, p: &Ports, level: &str) -> String {
    let dir = pki.dir().display();
    let tls = format!(
        "        tls:\n          cert_file: {dir}/server.pem\n          key_file: {dir}/server-key.pem\n"
    );
    format!(
        "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
{tls}        auth:
          authenticator: bearertokenauth/agents
      http:
        endpoint: 127.0.0.1:{http}
{tls}        auth:
          authenticator: bearertokenauth/files
exporters:
  otlp/backend:
    endpoint: 127.0.0.1:{backend}
    tls:
      insecure: true
    headers:
      Authorization: \"Bearer {EXPORTER_HEADER}\"
      X-Api-Key: ${{env:EXPORTER_KEY}}
    retry_on_failure:
      initial_interval: 50ms
      max_interval: 100ms
extensions:
  bearertokenauth/agents:
    token: ${{env:OTLP_TOKEN}}
  bearertokenauth/files:
    tokens: [\"{FILE_TOKEN}\"]
  health_check:
    endpoint: 127.0.0.1:{health}
service:
  extensions: [bearertokenauth/agents, bearertokenauth/files, health_check]
  telemetry:
    logs:
      level: {level}
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [otlp/backend]
",
        grpc = p.grpc,
        http = p.http,
        health = p.health,
        metrics = p.metrics,
        backend = p.backend,
    )
}

const ENV: &[(&str, &str)] = &[
    ("OTLP_TOKEN", ENV_TOKEN),
    ("EXPORTER_KEY", EXPORTER_ENV_HEADER),
];

/// Everything that must not be printed: tokens, header values sent and configured, and the
/// server key (whole, and each line of its base64 body).
fn secrets(pki: &Pki) -> Vec<String> {
    let mut s: Vec<String> = [
        ENV_TOKEN,
        FILE_TOKEN,
        WRONG_TOKEN,
        EXPORTER_HEADER,
        EXPORTER_ENV_HEADER,
        BAD_KEY_CONTENTS,
    ]
    .iter()
    .map(|t| t.to_string())
    .collect();
    s.push(pki.server.key.clone());
    s.extend(
        pki.server
            .key
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 16)
            .map(str::to_string),
    );
    s
}

fn assert_clean(what: &str, text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{what} contains a secret ({} chars starting {:?}):\n{text}",
            secret.len(),
            secret.get(..4).unwrap_or_default()
        );
    }
}

async fn grpc_export(channel: &Channel, authorization: Option<&str>) -> String {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    if let Err(e) = grpc.ready().await {
        return format!("not ready: {e}");
    }
    let mut request = tonic::Request::new(common::logs(1));
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().unwrap());
    }
    let path = http::uri::PathAndQuery::from_static(Signal::Logs.grpc_path());
    match grpc.unary(request, path, PassThroughCodec).await {
        Ok(_) => "ok".to_string(),
        Err(status) => format!("{status:?}"),
    }
}

/// A logs POST over TLS (or plaintext when `client` is `None`); the whole answer, or the
/// error.
async fn http_post(
    addr: SocketAddr,
    client: Option<Arc<rustls::ClientConfig>>,
    authorization: Option<&str>,
) -> String {
    let body = common::logs(1);
    let auth = authorization.map_or(String::new(), |a| format!("authorization: {a}\r\n"));
    let head = format!(
        "POST /v1/logs HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-protobuf\r\n\
         content-length: {}\r\nconnection: close\r\n{auth}\r\n",
        body.len()
    );
    let tcp = match tokio::net::TcpStream::connect(addr).await {
        Ok(t) => t,
        Err(e) => return format!("connect: {e}"),
    };
    async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
        mut s: S,
        head: &str,
        body: &[u8],
    ) -> std::io::Result<String> {
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
    let result = match client {
        None => exchange(tcp, &head, &body).await,
        Some(c) => {
            let name = ServerName::try_from("localhost").unwrap();
            match tokio_rustls::TlsConnector::from(c).connect(name, tcp).await {
                Ok(tls) => exchange(tls, &head, &body).await,
                Err(e) => Err(e),
            }
        }
    };
    result.unwrap_or_else(|e| format!("error: {e}"))
}

/// Runs otelspool with `level` (and `RUST_LOG` when given), sends right, wrong and missing
/// tokens and plaintext over both transports, waits for failed exports, reads every endpoint,
/// stops it; returns everything it printed and served, after checking that all of it ran.
async fn exercise(
    pki: &Pki,
    dir: &Path,
    level: &str,
    rust_log: Option<&str>,
) -> Vec<(String, String)> {
    let ports = Ports {
        grpc: free_port(),
        http: free_port(),
        health: free_port(),
        metrics: free_port(),
        backend: free_port(),
    };
    let file = dir.join(format!("otelspool-{level}.yaml"));
    std::fs::write(&file, config(pki, &ports, level)).unwrap();
    let mut env = ENV.to_vec();
    if let Some(filter) = rust_log {
        env.push(("RUST_LOG", filter));
    }
    let mut otelspool = Running::start(&file, &env);
    let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    otelspool
        .wait_healthy(local(ports.health), Duration::from_secs(20))
        .await;

    let mut seen: Vec<(String, String)> = Vec::new();
    let tls = Endpoint::from_shared(format!("https://127.0.0.1:{}", ports.grpc))
        .unwrap()
        .tls_config(pki.grpc_tls(None))
        .unwrap()
        .connect_lazy();
    let plain = Channel::from_shared(format!("http://127.0.0.1:{}", ports.grpc))
        .unwrap()
        .connect_lazy();
    let right = format!("Bearer {ENV_TOKEN}");
    let wrong = format!("Bearer {WRONG_TOKEN}");
    let scheme = format!("Basic {ENV_TOKEN}");
    let ok = grpc_export(&tls, Some(&right)).await;
    assert_eq!(ok, "ok", "the right token over gRPC");
    for auth in [Some(wrong.as_str()), Some(scheme.as_str()), None] {
        let answer = grpc_export(&tls, auth).await;
        assert!(answer.contains("Unauthenticated"), "{answer}");
        seen.push(("gRPC answer".into(), answer));
    }
    seen.push((
        "plaintext gRPC".into(),
        grpc_export(&plain, Some(&right)).await,
    ));

    let client = pki.client_config(None, &[b"http/1.1"]);
    let http = local(ports.http);
    let files = format!("Bearer {FILE_TOKEN}");
    let ok = http_post(http, Some(client.clone()), Some(&files)).await;
    assert!(
        ok.starts_with("HTTP/1.1 200"),
        "the right token over HTTP: {ok}"
    );
    for auth in [Some(wrong.as_str()), Some(right.as_str()), None] {
        let answer = http_post(http, Some(client.clone()), auth).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        seen.push(("HTTP answer".into(), answer));
    }
    seen.push((
        "plaintext HTTP".into(),
        http_post(http, None, Some(&files)).await,
    ));

    // The exporter fails (nothing listens on its port): wait for retries to be counted.
    let metrics = local(ports.metrics);
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    let exposition = loop {
        let (_, text) = get(metrics, "/metrics").await.unwrap();
        if text.contains("otelspool_exporter_send_retries") {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "no failed export:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        exposition.contains("reason=\"unauthenticated\""),
        "refusals are counted:\n{exposition}"
    );
    seen.push(("/metrics".into(), exposition));
    for path in ["/", "/status", "/status.json", "/livez", "/readyz"] {
        let (_, page) = get(local(ports.health), path).await.unwrap();
        seen.push((format!("health {path}"), page));
    }
    let (stdout, stderr) = otelspool.stop();
    assert!(
        stderr.contains("refused a request") && stderr.contains("unauthenticated"),
        "the refusals are logged:\n{stderr}"
    );
    assert!(
        stderr.contains("export failed"),
        "the failed export is logged:\n{stderr}"
    );
    assert!(
        stderr.contains("TLS handshake"),
        "the plaintext client is logged:\n{stderr}"
    );
    seen.push((format!("stdout at {level}"), stdout));
    seen.push((format!("stderr at {level}"), stderr));
    seen
}

/// `validate` on the good config, on broken versions of it (errors next to every secret),
/// and start-up with key files that are not keys; everything printed.
fn validate_and_fail_to_start(pki: &Pki, dir: &Path) -> Vec<(String, String)> {
    let ports = Ports {
        grpc: free_port(),
        http: free_port(),
        health: free_port(),
        metrics: free_port(),
        backend: free_port(),
    };
    let good = config(pki, &ports, "debug");
    let broken_keys = good
        .replace(
            "    token: ${env:OTLP_TOKEN}\n",
            &format!("    token: ${{env:OTLP_TOKEN}}\n    tokens: [{FILE_TOKEN}]\n    header: \"X Token\"\n    secret: {FILE_TOKEN}\n"),
        )
        .replace(
            &format!("    tokens: [\"{FILE_TOKEN}\"]\n"),
            &format!("    tokens: [\"{FILE_TOKEN}\", [{FILE_TOKEN}]]\n    scheme: \"{FILE_TOKEN} x\"\n"),
        )
        .replace("X-Api-Key: ${env:EXPORTER_KEY}", "X-Api-Key: [${env:EXPORTER_KEY}]")
        .replace("endpoint: 127.0.0.1:", "endpoint: 127.0.0.1:x");
    let broken_yaml = good.replace(
        &format!("tokens: [\"{FILE_TOKEN}\"]"),
        &format!("tokens: [\"{FILE_TOKEN}]"),
    );
    let bad_key = dir.join("bad-key.pem");
    std::fs::write(
        &bad_key,
        format!("-----BEGIN PRIVATE KEY-----\n{BAD_KEY_CONTENTS}\n-----END PRIVATE KEY-----\n"),
    )
    .unwrap();
    let server_key = pki.file("server-key.pem").display().to_string();
    let not_a_key = good.replace(&server_key, &bad_key.display().to_string());
    let key_is_cert = good.replace(&server_key, &pki.file("server.pem").display().to_string());
    let mut seen = Vec::new();
    for (name, text, expect_valid) in [
        ("good", good, true),
        ("broken keys", broken_keys, false),
        ("broken yaml", broken_yaml, false),
    ] {
        let file = dir.join(format!("{}.yaml", name.replace(' ', "-")));
        std::fs::write(&file, text).unwrap();
        let out = run(&["validate", "--config", file.to_str().unwrap()], ENV);
        assert_eq!(
            out.status.success(),
            expect_valid,
            "validate {name}: {out:?}"
        );
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        seen.push((format!("validate {name}"), printed));
    }
    for (name, text) in [
        ("key not PEM", not_a_key),
        ("key is a certificate", key_is_cert),
    ] {
        let file = dir.join(format!("{}.yaml", name.replace(' ', "-")));
        std::fs::write(&file, text).unwrap();
        let out = run(&["--config", file.to_str().unwrap()], ENV);
        assert!(!out.status.success(), "{name}: started: {out:?}");
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            printed.contains("key_file"),
            "{name}: the error names the key: {printed}"
        );
        seen.push((format!("start-up with {name}"), printed));
    }
    seen
}

/// Scenario: otelspool runs with receiver tokens (from the environment and written in the
/// file), exporter headers (both kinds) and a TLS key, at log level debug; clients send right,
/// wrong and missing tokens, the wrong scheme, and plaintext to the TLS ports, over gRPC and
/// HTTP; the exporter keeps failing; `/metrics` and the health pages are read; then the same
/// at `RUST_LOG=trace`; then `validate` on good and broken configs and start-up with broken
/// key files.
/// Guarantees: all of that happened (the assertions on each step), and no token, header value
/// or key file content appears in any stdout, stderr, answer, page or message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_header_or_key_appears_in_any_output() {
    otelspool::exporters::ensure_crypto_provider();
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let secrets = secrets(&pki);
    let mut seen = exercise(&pki, dir.path(), "debug", None).await;
    seen.extend(exercise(&pki, dir.path(), "info", Some("trace")).await);
    seen.extend(validate_and_fail_to_start(&pki, dir.path()));
    for (what, text) in &seen {
        assert_clean(what, text, &secrets);
    }
}
