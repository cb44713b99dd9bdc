//! Set-up of the job ledger tests: the testkit backend in-process with its record file (so
//! what it received can be counted per job), a config with `job_ledger`, OTLP/gRPC log
//! requests tagged with `emerge.job_id`, and readers for the ledger's `/v1/jobs` API.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otelspool_testkit::backend::{Backend, Mode, grpc};
use serde_json::Value;
use tokio::net::TcpListener;

/// How long any awaited condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A free port on 127.0.0.1 (bound then released).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// The testkit backend, recording every item to a file.
pub struct RecordingBackend {
    /// Mode and counters.
    pub backend: Arc<Backend>,
    /// Where it listens (OTLP/gRPC).
    pub addr: SocketAddr,
    /// Its record file (one JSON line per item).
    pub record: PathBuf,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for RecordingBackend {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts the backend in `mode`, recording into `dir/record.jsonl`.
pub async fn start_backend(dir: &Path, mode: Mode) -> RecordingBackend {
    let record = dir.join("record.jsonl");
    let backend = Arc::new(Backend::open(Some(record.clone()), mode).expect("backend"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(grpc::serve(Arc::clone(&backend), listener, None));
    RecordingBackend {
        backend,
        addr,
        record,
        server,
    }
}

/// Unique log records (by body) the backend recorded, per `emerge.job_id`.
pub fn backend_unique_per_job(record: &Path) -> HashMap<String, u64> {
    let text = std::fs::read_to_string(record).unwrap_or_default();
    let mut seen: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).expect("record line");
        let job = v["attributes"]["emerge.job_id"]
            .as_str()
            .or_else(|| v["resource"]["emerge.job_id"].as_str());
        let Some(job) = job else {
            continue;
        };
        let body = v["body"].as_str().unwrap_or_default().to_owned();
        seen.entry(job.to_owned()).or_default().insert(body);
    }
    seen.into_iter().map(|(k, v)| (k, v.len() as u64)).collect()
}

/// Endpoints of one otelspool.
#[derive(Clone, Copy, Debug)]
pub struct Endpoints {
    /// OTLP/gRPC receiver.
    pub grpc: SocketAddr,
    /// Health endpoint (and `/v1/jobs`).
    pub health: SocketAddr,
}

/// A config: one `otlp` exporter to `backend`, persistent queue in `data` (`queue`: more
/// flow-mapping entries for `sending_queue`), fast retries, no batching, `job_ledger` with
/// `ledger` (flow-mapping entries).
pub fn config(backend: SocketAddr, data: &Path, queue: &str, ledger: &str) -> (String, Endpoints) {
    let e = Endpoints {
        grpc: free_addr(),
        health: free_addr(),
    };
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
  file_storage: {{ directory: "{data}", fsync: true }}
  health_check: {{ endpoint: "{health}" }}
  job_ledger: {{ {ledger} }}
service:
  extensions: [file_storage, health_check, job_ledger]
  telemetry: {{ metrics: {{ level: none }}, logs: {{ level: warn }} }}
  pipelines:
    logs: {{ receivers: [otlp], exporters: [otlp] }}
"#,
        grpc = e.grpc,
        health = e.health,
        data = data.display()
    );
    (yaml, e)
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

/// One request of `records` log records of `job`, bodies `<job>-<round>-<i>`; the job id on
/// the record itself (`on_resource`: on the resource instead).
pub fn job_request(
    job: &str,
    round: usize,
    records: usize,
    on_resource: bool,
) -> ExportLogsServiceRequest {
    padded_request(job, round, records, on_resource, 0)
}

/// As [`job_request`], each body followed by `pad` bytes.
pub fn padded_request(
    job: &str,
    round: usize,
    records: usize,
    on_resource: bool,
    pad: usize,
) -> ExportLogsServiceRequest {
    let padding = "x".repeat(pad);
    let attrs = vec![string_kv("emerge.job_id", job)];
    let log_records = (0..records)
        .map(|i| LogRecord {
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!(
                    "{job}-{round}-{i}{padding}"
                ))),
            }),
            attributes: if on_resource { vec![] } else { attrs.clone() },
            ..LogRecord::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: on_resource.then(|| opentelemetry_proto::tonic::resource::v1::Resource {
                attributes: attrs.clone(),
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records,
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

/// Sends one request per job (concurrently), `records` each; every one must be acknowledged.
pub async fn send_round(grpc: SocketAddr, jobs: &[String], round: usize, records: usize) {
    send_padded_round(grpc, jobs, round, records, 0).await;
}

/// As [`send_round`], each record body padded with `pad` bytes.
pub async fn send_padded_round(
    grpc: SocketAddr,
    jobs: &[String],
    round: usize,
    records: usize,
    pad: usize,
) {
    let client = LogsServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connect to the receiver");
    let sends = jobs.iter().map(|job| {
        let mut c = client.clone();
        let req = padded_request(job, round, records, round % 2 == 1, pad);
        async move { c.export(req).await.expect("otelspool acknowledges") }
    });
    futures::future::join_all(sends).await;
}

/// GETs `path` from the health endpoint: status and JSON body.
pub async fn get(health: SocketAddr, path: &str) -> Option<(u16, Value)> {
    otelspool::exporters::ensure_crypto_provider();
    let r = reqwest::Client::new()
        .get(format!("http://{health}{path}"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    let code = r.status().as_u16();
    let text = r.text().await.ok()?;
    Some((code, serde_json::from_str(&text).ok()?))
}

/// The ledger's jobs by id.
pub async fn ledger_jobs(health: SocketAddr) -> Option<HashMap<String, Value>> {
    let (code, body) = get(health, "/v1/jobs").await?;
    (code == 200).then_some(())?;
    Some(
        body["jobs"]
            .as_array()?
            .iter()
            .map(|j| (j["id"].as_str().unwrap_or_default().to_owned(), j.clone()))
            .collect(),
    )
}

/// Polls the ledger's jobs every 50 ms until `done` holds, failing after [`DEADLINE`] with
/// the last jobs seen.
pub async fn wait_for_jobs(
    health: SocketAddr,
    what: &str,
    done: impl Fn(&HashMap<String, Value>) -> bool,
) -> HashMap<String, Value> {
    let until = tokio::time::Instant::now() + DEADLINE;
    let mut last = HashMap::new();
    while tokio::time::Instant::now() < until {
        if let Some(l) = ledger_jobs(health).await {
            if done(&l) {
                return l;
            }
            last = l;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut jobs: Vec<_> = last.values().map(ToString::to_string).collect();
    jobs.sort();
    panic!(
        "timed out after {DEADLINE:?} waiting for {what}; last seen:\n{}",
        jobs.join("\n")
    );
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

/// The real `otelspool jobs <args> --endpoint <health>`: exit code, stdout, stderr.
pub async fn jobs_command(health: SocketAddr, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_otelspool"))
        .arg("jobs")
        .args(args)
        .args(["--endpoint", &health.to_string()])
        .output()
        .await
        .expect("run otelspool jobs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `n` job ids.
pub fn job_ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:03}")).collect()
}
