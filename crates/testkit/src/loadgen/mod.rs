//! A load generator that plays concurrent ComfyUI-like jobs against an OTLP logs endpoint.
//!
//! Each job is one task that sends batches of log records ([`records`]) one request at a time,
//! at a steady pace (`rate` records per second, 0 = as fast as answers come back), and retries a
//! request the way the OpenTelemetry SDKs do ([`transport`]): the same request again after an
//! exponential backoff with jitter (capped at [`BACKOFF_CAP`], or the server's RetryInfo /
//! Retry-After if longer but still capped), until it is acknowledged, fails permanently,
//! `max_attempts` is reached or the hard `deadline` passes.
//!
//! Invariant: a record id is written to the ack log ([`acklog`]) only after its request was
//! answered with success, so "in the ack log" means "the endpoint acknowledged it". A request
//! cut short by the deadline or by a dying endpoint is never acknowledged (it may still have
//! been delivered: at-least-once, counted as "unexpected" by [`crate::check`]).

pub mod acklog;
pub mod records;
pub mod report;
pub mod transport;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;

use acklog::{AckLog, AckSender};
use records::JobRecords;
use report::{AckSample, JobStats, Report, ReportHead};
use transport::{Outcome, Protocol, Transport};

/// First retry delay.
pub const BACKOFF_INITIAL: Duration = Duration::from_millis(50);
/// Longest retry delay, whatever the server asks for (keeps tests fast).
pub const BACKOFF_CAP: Duration = Duration::from_secs(1);

/// Settings of one run.
#[derive(Clone, Debug)]
pub struct LoadgenConfig {
    /// `host:port` to send to.
    pub endpoint: String,
    /// gRPC or HTTP.
    pub protocol: Protocol,
    /// Concurrent jobs.
    pub jobs: u32,
    /// Connections (gRPC channels / HTTP clients) shared round-robin by the jobs; 0 = one per job.
    pub connections: u32,
    /// Log records per second per job; 0 = flat out.
    pub rate: f64,
    /// Stop starting new requests after this long.
    pub duration: Option<Duration>,
    /// Records per job, then stop.
    pub records: Option<u64>,
    /// Records per request.
    pub batch: usize,
    /// Approximate body size in bytes.
    pub record_size: usize,
    /// Prefix of every record id.
    pub run_id: String,
    /// Where to write acknowledged ids.
    pub ack_log: Option<PathBuf>,
    /// Where to write the JSON report.
    pub report: Option<PathBuf>,
    /// Attempts per request before giving up; 0 = until the deadline.
    pub max_attempts: u32,
    /// Hard stop: nothing is sent or retried after this long.
    pub deadline: Duration,
    /// Per-attempt timeout.
    pub timeout: Duration,
}

/// Runs the jobs to the end and returns the report (also written to `--report`).
pub async fn run(config: LoadgenConfig) -> anyhow::Result<Report> {
    anyhow::ensure!(config.jobs > 0, "--jobs must be at least 1");
    anyhow::ensure!(config.batch > 0, "--batch must be at least 1");
    let config = Arc::new(config);
    let ack_log = AckLog::create(config.ack_log.as_deref())?;
    let connections = if config.connections == 0 {
        config.jobs
    } else {
        config.connections.min(config.jobs)
    };
    let transports = (0..connections)
        .map(|_| Transport::connect(config.protocol, &config.endpoint))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for job in 0..config.jobs {
        let transport = transports[usize::try_from(job % connections).unwrap_or(0)].clone();
        tasks.spawn(run_job(
            Arc::clone(&config),
            job,
            transport,
            ack_log.sender(),
            start,
        ));
    }
    let mut total = JobStats::default();
    while let Some(done) = tasks.join_next().await {
        total.merge(done.context("a job task panicked")?);
    }
    let elapsed = start.elapsed();
    drop(transports);
    let lines = ack_log.finish()?;
    anyhow::ensure!(
        config.ack_log.is_none() || lines == total.acked_records,
        "ack log has {lines} lines but {} records were acknowledged",
        total.acked_records
    );
    let head = ReportHead {
        run_id: config.run_id.clone(),
        protocol: match config.protocol {
            Protocol::Grpc => "grpc".into(),
            Protocol::Http => "http".into(),
        },
        endpoint: config.endpoint.clone(),
        jobs: config.jobs,
        batch: config.batch,
    };
    let report = Report::build(head, total, elapsed);
    if let Some(path) = &config.report {
        let json = serde_json::to_vec_pretty(&report)?;
        tokio::fs::write(path, json)
            .await
            .with_context(|| format!("writing the report {}", path.display()))?;
    }
    Ok(report)
}

/// Exponential backoff with full jitter in the upper half: [d/2, d].
fn jittered(delay: Duration) -> Duration {
    delay.mul_f64(0.5 + fastrand::f64() * 0.5)
}

fn elapsed_us(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

async fn run_job(
    config: Arc<LoadgenConfig>,
    job: u32,
    mut transport: Transport,
    acks: AckSender,
    start: Instant,
) -> JobStats {
    let mut stats = JobStats::default();
    let mut records = JobRecords::new(&config.run_id, job, config.record_size);
    let deadline = start + config.deadline;
    let stop_at = config.duration.map(|d| start + d);
    let interval =
        (config.rate > 0.0).then(|| Duration::from_secs_f64(config.batch as f64 / config.rate));
    // Spread the jobs' first requests over one interval so they do not all fire at once.
    let mut next_at = start + interval.map_or(Duration::ZERO, |i| i.mul_f64(fastrand::f64()));
    let mut produced = 0u64;
    loop {
        let remaining = config
            .records
            .map_or(u64::MAX, |n| n.saturating_sub(produced));
        if remaining == 0 {
            break;
        }
        if let Some(interval) = interval {
            let now = Instant::now();
            if next_at > now {
                if stop_at.is_some_and(|s| next_at >= s) || next_at >= deadline {
                    break;
                }
                tokio::time::sleep_until(next_at).await;
            } else if now - next_at > Duration::from_secs(1) {
                next_at = now; // fell behind (long retries): do not burst to catch up
            }
            next_at += interval;
        }
        let now = Instant::now();
        if stop_at.is_some_and(|s| now >= s) || now >= deadline {
            break;
        }
        let count = usize::try_from(remaining.min(config.batch as u64)).unwrap_or(config.batch);
        let (request, ids) = records.next_batch(count);
        produced += count as u64;
        let payload = transport.payload(request);
        stats.sent_records += count as u64;
        stats.requests += 1;
        let first_send = Instant::now();
        let mut backoff = BACKOFF_INITIAL;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if attempt > 1 {
                stats.retries += 1;
            }
            let now = Instant::now();
            if now >= deadline {
                stats.abandoned_requests += 1;
                break;
            }
            let timeout = config.timeout.min(deadline - now);
            let outcome = transport.attempt(&payload, timeout).await;
            stats.attempt_latencies_us.push(elapsed_us(now));
            match outcome {
                Outcome::Ok { rejected } => {
                    acks.acked(&ids);
                    stats.acked_records += count as u64;
                    stats.acked_requests += 1;
                    stats.partial_rejected += u64::try_from(rejected).unwrap_or(0);
                    stats.acks.push(AckSample {
                        at_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
                        records: u32::try_from(count).unwrap_or(u32::MAX),
                        latency_us: elapsed_us(first_send),
                    });
                    break;
                }
                Outcome::Fail { reason } => {
                    *stats.errors.entry(reason).or_default() += 1;
                    stats.failed_requests += 1;
                    stats.failed_records += count as u64;
                    break;
                }
                Outcome::Retry { after, reason } => {
                    *stats.errors.entry(reason).or_default() += 1;
                    if Instant::now() >= deadline {
                        stats.abandoned_requests += 1;
                        break;
                    }
                    if config.max_attempts > 0 && attempt >= config.max_attempts {
                        stats.failed_requests += 1;
                        stats.failed_records += count as u64;
                        break;
                    }
                    let delay = jittered(backoff)
                        .max(after.unwrap_or_default())
                        .min(BACKOFF_CAP);
                    backoff = (backoff * 2).min(BACKOFF_CAP);
                    tokio::time::sleep_until((Instant::now() + delay).min(deadline)).await;
                }
            }
        }
    }
    stats
}
