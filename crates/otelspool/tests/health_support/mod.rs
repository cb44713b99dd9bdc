//! Set-up of the health tests: the testkit backend in-process on 127.0.0.1, otelspool itself
//! (`app::run`, the binary's code path) with a generated config and a real data folder, an
//! HTTP client for its health endpoint, and the real `otelspool healthcheck` binary.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use prost::Message;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// How long any awaited condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A free port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// otelspool running in-process until dropped.
pub struct Spool {
    /// The OTLP/gRPC receiver.
    pub grpc: SocketAddr,
    /// The health endpoint.
    pub health: SocketAddr,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    http: reqwest::Client,
}

impl Drop for Spool {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The config: one `otlp` exporter to `backend` with a persistent queue in `data`, fast
/// retries, no batching, and `check_delivery` made of `checks` (YAML flow-mapping entries).
pub fn config(
    backend: SocketAddr,
    data: &Path,
    queue: &str,
    checks: &str,
) -> (String, SocketAddr, SocketAddr) {
    let grpc: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let health: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let yaml = format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc: {{ endpoint: "{grpc}" }}
exporters:
  otlp:
    endpoint: "{backend}"
    compression: none
    tls: {{ insecure: true }}
    retry_on_failure: {{ initial_interval: 50ms, max_interval: 200ms, randomization_factor: 0 }}
    sending_queue: {{ storage: file_storage{queue} }}
extensions:
  file_storage: {{ directory: "{data}", fsync: false }}
  health_check:
    endpoint: "{health}"
    check_delivery: {{ {checks} }}
service:
  extensions: [file_storage, health_check]
  telemetry: {{ metrics: {{ level: none }} }}
  pipelines:
    logs: {{ receivers: [otlp], exporters: [otlp] }}
"#,
        data = data.display()
    );
    (yaml, grpc, health)
}

impl Spool {
    /// Starts otelspool with `yaml` and waits until its health endpoint answers.
    pub async fn start(yaml: &str, grpc: SocketAddr, health: SocketAddr) -> Spool {
        otelspool::exporters::ensure_crypto_provider();
        let loaded = otelspool_config::load_str(yaml, "test.yaml", &|_| None)
            .unwrap_or_else(|e| panic!("config:\n{e}\n{yaml}"));
        let stop = CancellationToken::new();
        let task = tokio::spawn(otelspool::app::run(loaded.config, stop.clone()));
        let spool = Spool {
            grpc,
            health,
            stop,
            task: Some(task),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("http client"),
        };
        let what = "the health endpoint to answer /readyz with 200";
        poll_until(what, || async {
            spool.get("/readyz").await.ok().filter(|(c, _)| *c == 200)
        })
        .await;
        spool
    }

    /// GETs `path` from the health endpoint: status code and JSON body.
    pub async fn get(&self, path: &str) -> Result<(u16, Value), reqwest::Error> {
        let r = self
            .http
            .get(format!("http://{}{path}", self.health))
            .send()
            .await?;
        let code = r.status().as_u16();
        let text = r.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((code, body))
    }

    /// Asserts `/livez` answers 200 now.
    pub async fn assert_live(&self, during: &str) {
        let (code, body) = self.get("/livez").await.expect("/livez answers");
        assert_eq!(code, 200, "/livez during {during}: {body}");
    }

    /// Sends `n` OTLP/gRPC log requests of `records` records with `body_bytes`-byte bodies.
    pub async fn send(&self, n: usize, records: usize, body_bytes: usize) {
        let mut client = LogsServiceClient::connect(format!("http://{}", self.grpc))
            .await
            .expect("connect to the receiver")
            .max_encoding_message_size(64 << 20);
        let body = "x".repeat(body_bytes);
        for i in 0..n {
            let recs = (0..records)
                .map(|r| crate::support::record(&format!("{i}-{r}-{body}")))
                .collect();
            let bytes: Bytes = crate::support::request(recs);
            let req = ExportLogsServiceRequest::decode(bytes).expect("request");
            client.export(req).await.expect("otelspool acknowledges");
        }
    }

    /// Runs the real `otelspool healthcheck` against this instance: exit code and stderr.
    pub async fn healthcheck_command(&self, path: &str) -> (i32, String) {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_otelspool"))
            .args([
                "healthcheck",
                "--endpoint",
                &self.health.to_string(),
                "--path",
                path,
            ])
            .output()
            .await
            .expect("run otelspool healthcheck");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// Stops otelspool and waits for it.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(DEADLINE, task).await;
            assert!(
                matches!(result, Ok(Ok(Ok(())))),
                "otelspool stopped with {result:?}"
            );
        }
    }
}

/// Polls `check` every 50 ms until it gives `Some`, failing after [`DEADLINE`].
pub async fn poll_until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The failing checks of a health body, as `(check, exporter, signal)`.
pub fn failing(body: &Value) -> Vec<(String, String, String)> {
    body["failing_checks"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
                    (s("check"), s("exporter"), s("signal"))
                })
                .collect()
        })
        .unwrap_or_default()
}
