//! A checking OTLP backend for tests.
//!
//! The backend listens for OTLP over gRPC ([`grpc`]) and over HTTP with protobuf or JSON bodies
//! ([`http`]), flattens every request into one JSON line per log record, span and metric point
//! ([`record`]) and appends those lines to the `--record` file, flushed before the request is
//! answered. Counters and the behaviour mode are exposed on a small control API ([`control`]).
//!
//! Invariants:
//! - A request is answered with success only after its items were written to the record file,
//!   so "acknowledged by the backend" always implies "visible in the record file".
//! - A refused request (any mode other than `ok`, `slow:MS`, `partial:N`; in mode `strict`,
//!   a request carrying a malformed id) records nothing.
//! - On start the existing record file is replayed into the counters, so counts and duplicate
//!   detection span backend restarts that share a record file.

pub mod control;
pub mod grpc;
pub mod http;
pub mod record;
pub mod request_log;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use record::{Record, Recorder, Tally};
use request_log::RequestLog;

/// How the backend answers export requests; switched at run time with `POST /mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Accept and record everything.
    Ok,
    /// Refuse with gRPC `UNAVAILABLE` / HTTP 503.
    Unavailable,
    /// Refuse with gRPC `RESOURCE_EXHAUSTED` plus `RetryInfo` of 1s / HTTP 429, `Retry-After: 1`.
    ResourceExhausted,
    /// Refuse with gRPC `INVALID_ARGUMENT` / HTTP 400 (a permanent error).
    Invalid,
    /// Wait this many milliseconds, then accept.
    Slow(u64),
    /// Accept and record everything, but report this many items as rejected.
    Partial(i64),
    /// Accept, except requests carrying a log record or span whose trace id is not 16 bytes
    /// (or whose span id is not 8): refused whole with gRPC `INVALID_ARGUMENT` / HTTP 400, as
    /// strict backends do.
    Strict,
}

impl Mode {
    /// The mode's spelling on the command line and in `POST /mode`.
    pub fn spelling(&self) -> String {
        match self {
            Mode::Ok => "ok".into(),
            Mode::Unavailable => "unavailable".into(),
            Mode::ResourceExhausted => "resource_exhausted".into(),
            Mode::Invalid => "invalid".into(),
            Mode::Slow(ms) => format!("slow:{ms}"),
            Mode::Partial(n) => format!("partial:{n}"),
            Mode::Strict => "strict".into(),
        }
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|e| format!("bad number in mode {s:?}: {e}"))
        };
        match s {
            "ok" => Ok(Mode::Ok),
            "unavailable" => Ok(Mode::Unavailable),
            "resource_exhausted" => Ok(Mode::ResourceExhausted),
            "invalid" => Ok(Mode::Invalid),
            "strict" => Ok(Mode::Strict),
            _ => match s.split_once(':') {
                Some(("slow", ms)) => Ok(Mode::Slow(number(ms)?)),
                Some(("partial", n)) => {
                    Ok(Mode::Partial(i64::try_from(number(n)?).unwrap_or(i64::MAX)))
                }
                _ => Err(format!(
                    "unknown mode {s:?}; expected ok, unavailable, resource_exhausted, invalid, \
                     slow:MS, partial:N or strict"
                )),
            },
        }
    }
}

/// Why a request was refused; each transport maps it to its own status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Mode `unavailable`.
    Unavailable,
    /// Mode `resource_exhausted`.
    ResourceExhausted,
    /// Mode `invalid`, a request body that could not be decoded, or (mode `strict`) a
    /// malformed id.
    Invalid,
}

/// Which listener a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP.
    Http,
}

/// Counters served by `GET /stats`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Export requests received (all transports, accepted or not).
    pub requests: u64,
    /// Export requests received over gRPC.
    pub grpc_requests: u64,
    /// Export requests received over HTTP.
    pub http_requests: u64,
    /// Export requests answered with success (including partial success).
    pub accepted_requests: u64,
    /// Requests whose body could not be decoded (HTTP only; tonic rejects bad gRPC bodies).
    pub undecodable_requests: u64,
    /// Log records recorded (including duplicates and records replayed from the record file).
    pub log_records: u64,
    /// Spans recorded.
    pub spans: u64,
    /// Metric data points recorded.
    pub metric_points: u64,
    /// Distinct log records by (body, attributes).
    pub unique_log_records: u64,
    /// Log records whose (body, attributes) was seen before.
    pub duplicate_log_records: u64,
    /// Items reported as rejected in `partial_success`.
    pub partial_rejected: u64,
    /// Requests refused by mode `unavailable`.
    pub refused_unavailable: u64,
    /// Requests refused by mode `resource_exhausted`.
    pub refused_resource_exhausted: u64,
    /// Requests refused by mode `invalid`.
    pub refused_invalid: u64,
    /// Items replayed from an existing record file at start.
    pub replayed_items: u64,
    /// The current mode.
    pub mode: String,
}

/// What `GET /headers` reports about the last export request.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HeaderSummary {
    /// Transport of the last request, if any arrived yet.
    pub transport: Option<Transport>,
    /// Header (or gRPC metadata) names, lower-case and sorted.
    pub names: Vec<String>,
    /// The value of `dash0-dataset`, if sent.
    pub dash0_dataset: Option<String>,
    /// Whether `authorization` was sent at all.
    pub authorization_present: bool,
    /// Whether `authorization` equalled `Bearer test-token`.
    pub authorization_is_test_token: bool,
    /// How the body was compressed: `grpc-encoding` or `Content-Encoding`, if sent.
    pub content_encoding: Option<String>,
}

impl HeaderSummary {
    /// Summarises request headers without keeping any value but `dash0-dataset`.
    pub fn from_headers(transport: Transport, headers: &::http::HeaderMap) -> Self {
        let mut names: Vec<String> = headers.keys().map(|k| k.as_str().to_owned()).collect();
        names.sort();
        names.dedup();
        let auth = headers.get("authorization");
        HeaderSummary {
            transport: Some(transport),
            names,
            dash0_dataset: headers
                .get("dash0-dataset")
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            authorization_present: auth.is_some(),
            authorization_is_test_token: auth.is_some_and(|v| v.as_bytes() == b"Bearer test-token"),
            content_encoding: headers
                .get(match transport {
                    Transport::Grpc => "grpc-encoding",
                    Transport::Http => "content-encoding",
                })
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        }
    }
}

/// Shared state of one running backend.
#[derive(Debug)]
pub struct Backend {
    mode: Mutex<Mode>,
    stats: Mutex<Stats>,
    headers: Mutex<HeaderSummary>,
    recorder: Mutex<Recorder>,
    request_log: Mutex<Option<RequestLog>>,
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (counters stay usable).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Backend {
    /// Opens the record file (replaying existing lines into the counters) and starts in `mode`.
    pub fn open(record: Option<PathBuf>, mode: Mode) -> anyhow::Result<Self> {
        let (recorder, replayed) = Recorder::open(record)?;
        let mut stats = Stats {
            replayed_items: replayed.items(),
            ..Stats::default()
        };
        add_tally(&mut stats, &replayed);
        Ok(Backend {
            mode: Mutex::new(mode),
            stats: Mutex::new(stats),
            headers: Mutex::new(HeaderSummary::default()),
            recorder: Mutex::new(recorder),
            request_log: Mutex::new(None),
        })
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        *lock(&self.mode)
    }

    /// Switches the mode.
    pub fn set_mode(&self, mode: Mode) {
        tracing::info!(mode = %mode.spelling(), "mode switched");
        *lock(&self.mode) = mode;
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let mut stats = lock(&self.stats).clone();
        stats.mode = self.mode().spelling();
        stats
    }

    /// The header summary of the last export request.
    pub fn last_headers(&self) -> HeaderSummary {
        lock(&self.headers).clone()
    }

    /// Counts an incoming request, remembers its headers and applies the mode.
    ///
    /// Returns the number of items to report as rejected, or the refusal to answer with.
    pub async fn admit(
        &self,
        transport: Transport,
        headers: &::http::HeaderMap,
    ) -> Result<i64, Refusal> {
        *lock(&self.headers) = HeaderSummary::from_headers(transport, headers);
        self.log_arrival();
        {
            let mut stats = lock(&self.stats);
            stats.requests += 1;
            match transport {
                Transport::Grpc => stats.grpc_requests += 1,
                Transport::Http => stats.http_requests += 1,
            }
        }
        let mode = self.mode();
        let refusal = match mode {
            Mode::Ok | Mode::Strict => return Ok(0),
            Mode::Partial(n) => return Ok(n),
            Mode::Slow(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                return Ok(0);
            }
            Mode::Unavailable => Refusal::Unavailable,
            Mode::ResourceExhausted => Refusal::ResourceExhausted,
            Mode::Invalid => Refusal::Invalid,
        };
        let mut stats = lock(&self.stats);
        match refusal {
            Refusal::Unavailable => stats.refused_unavailable += 1,
            Refusal::ResourceExhausted => stats.refused_resource_exhausted += 1,
            Refusal::Invalid => stats.refused_invalid += 1,
        }
        Err(refusal)
    }

    /// Counts a request whose body could not be decoded.
    pub fn note_undecodable(&self) {
        lock(&self.stats).undecodable_requests += 1;
    }

    /// In mode `strict`, refuses (and counts) a request carrying a malformed id.
    pub fn check_ids(&self, records: &[Record]) -> Result<(), Refusal> {
        if self.mode() != Mode::Strict || !records.iter().any(Record::has_malformed_ids) {
            return Ok(());
        }
        lock(&self.stats).refused_invalid += 1;
        Err(Refusal::Invalid)
    }

    /// Appends the records to the record file (flushed) and counts them; `rejected` is what the
    /// answer will report in `partial_success`.
    pub async fn accept(
        self: &Arc<Self>,
        records: Vec<Record>,
        rejected: i64,
    ) -> std::io::Result<()> {
        self.log_accepted(records.len() as u64);
        let this = Arc::clone(self);
        let tally = tokio::task::spawn_blocking(move || lock(&this.recorder).append(&records))
            .await
            .map_err(std::io::Error::other)??;
        let mut stats = lock(&self.stats);
        add_tally(&mut stats, &tally);
        stats.accepted_requests += 1;
        stats.partial_rejected += u64::try_from(rejected).unwrap_or(0);
        Ok(())
    }
}

fn add_tally(stats: &mut Stats, tally: &Tally) {
    stats.log_records += tally.log_records;
    stats.spans += tally.spans;
    stats.metric_points += tally.metric_points;
    stats.unique_log_records += tally.unique_log_records;
    stats.duplicate_log_records += tally.duplicate_log_records;
}

/// Where to listen and what to do; built from the command line.
#[derive(Clone, Debug, Default)]
pub struct BackendConfig {
    /// OTLP/gRPC listen address.
    pub grpc: Option<SocketAddr>,
    /// OTLP/HTTP listen address.
    pub http: Option<SocketAddr>,
    /// Control API listen address.
    pub control: Option<SocketAddr>,
    /// JSON-lines file that receives every item.
    pub record: Option<PathBuf>,
    /// File that receives the bound addresses as JSON once listening.
    pub ready_file: Option<PathBuf>,
    /// Initial mode.
    pub mode: Option<Mode>,
    /// PEM certificate and key for gRPC TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// The addresses actually bound, written to the `--ready-file`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BoundAddrs {
    /// OTLP/gRPC address.
    pub grpc: Option<SocketAddr>,
    /// OTLP/HTTP address.
    pub http: Option<SocketAddr>,
    /// Control API address.
    pub control: Option<SocketAddr>,
    /// This process's id.
    pub pid: u32,
}

/// Binds every configured listener, writes the ready file and serves until SIGINT/SIGTERM or
/// until a server fails.
pub async fn run(config: BackendConfig) -> anyhow::Result<()> {
    let backend = Arc::new(Backend::open(
        config.record.clone(),
        config.mode.unwrap_or(Mode::Ok),
    )?);
    let mut bound = BoundAddrs {
        pid: std::process::id(),
        ..BoundAddrs::default()
    };
    let mut servers: JoinSet<anyhow::Result<()>> = JoinSet::new();

    if let Some(addr) = config.grpc {
        let listener = bind(addr, "grpc").await?;
        bound.grpc = Some(listener.local_addr()?);
        let tls = match &config.tls {
            Some((cert, key)) => Some(grpc::load_tls(cert, key)?),
            None => None,
        };
        servers.spawn(grpc::serve(Arc::clone(&backend), listener, tls));
    }
    if let Some(addr) = config.http {
        let listener = bind(addr, "http").await?;
        bound.http = Some(listener.local_addr()?);
        servers.spawn(http::serve(Arc::clone(&backend), listener));
    }
    if let Some(addr) = config.control {
        let listener = bind(addr, "control").await?;
        bound.control = Some(listener.local_addr()?);
        servers.spawn(control::serve(Arc::clone(&backend), listener));
    }
    if servers.is_empty() {
        anyhow::bail!("nothing to do: give at least one of --grpc, --http, --control");
    }
    if let Some(path) = &config.ready_file {
        write_ready_file(path, &bound)?;
    }
    tracing::info!(
        grpc = ?bound.grpc, http = ?bound.http, control = ?bound.control,
        mode = %backend.mode().spelling(), "test backend listening"
    );

    tokio::select! {
        Some(done) = servers.join_next() => {
            done.context("server task panicked")??;
            anyhow::bail!("a server stopped unexpectedly");
        }
        () = shutdown_signal() => {
            tracing::info!("shutdown signal received; stopping");
            Ok(())
        }
    }
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} listener on {addr}"))
}

/// Writes the ready file atomically (temporary file, then rename) so readers never see half.
fn write_ready_file(path: &std::path::Path, bound: &BoundAddrs) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(bound)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip() {
        for s in [
            "ok",
            "unavailable",
            "resource_exhausted",
            "invalid",
            "slow:250",
            "partial:3",
            "strict",
        ] {
            let mode: Mode = s.parse().unwrap();
            assert_eq!(mode.spelling(), s);
        }
        assert!("sometimes".parse::<Mode>().is_err());
        assert!("slow:x".parse::<Mode>().is_err());
    }
}
