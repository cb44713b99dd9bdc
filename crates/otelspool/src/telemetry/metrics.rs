//! Every self-metric, named as the OpenTelemetry Collector names it (no `_total` suffix, as
//! otelcol's Prometheus endpoint shows by default), emitted from one method per event.
//! otelspool-only figures use the `otelspool_` prefix.

use std::time::{Duration, Instant};

use prometheus::{
    CounterVec, Encoder, Gauge, GaugeVec, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use super::registry::{
    counter_vec, counters, gauge, gauge_vec, histogram, int_gauge, int_gauge_vec,
};
use crate::pipeline::Signal;
use crate::telemetry::process;
use crate::telemetry::watch::WatchedQueue;

/// The version of this build (the crate's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit this binary was built from (short hash), or `unknown` (see `build.rs`).
pub const COMMIT: &str = env!("OTELSPOOL_COMMIT");

/// Names of the metrics, in one place.
pub mod names {
    /// Receiver counters, per signal noun: `otelcol_receiver_accepted_log_records` ...
    pub const RECEIVER_ACCEPTED: &str = "otelcol_receiver_accepted_";
    /// `otelcol_receiver_refused_*`: refused with a retryable error (push-back).
    pub const RECEIVER_REFUSED: &str = "otelcol_receiver_refused_";
    /// `otelcol_receiver_failed_*`: malformed or otherwise permanently rejected.
    pub const RECEIVER_FAILED: &str = "otelcol_receiver_failed_";
    /// `otelcol_exporter_sent_*`.
    pub const EXPORTER_SENT: &str = "otelcol_exporter_sent_";
    /// `otelcol_exporter_send_failed_*`: given up on (dead-lettered), or rejected by partial success.
    pub const EXPORTER_SEND_FAILED: &str = "otelcol_exporter_send_failed_";
    /// `otelcol_exporter_enqueue_failed_*`.
    pub const EXPORTER_ENQUEUE_FAILED: &str = "otelcol_exporter_enqueue_failed_";
    /// Queue entries waiting.
    pub const QUEUE_SIZE: &str = "otelcol_exporter_queue_size";
    /// Queue entry limit.
    pub const QUEUE_CAPACITY: &str = "otelcol_exporter_queue_capacity";
    /// Queue bytes on disk.
    pub const QUEUE_BYTES: &str = "otelspool_exporter_queue_size_bytes";
    /// Queue byte limit.
    pub const QUEUE_CAPACITY_BYTES: &str = "otelspool_exporter_queue_capacity_bytes";
    /// Items waiting in the queue.
    pub const QUEUE_ITEMS: &str = "otelspool_exporter_queue_items";
    /// Age of the oldest queued entry.
    pub const QUEUE_OLDEST_AGE: &str = "otelspool_exporter_queue_oldest_age_seconds";
    /// 1 while the queue cannot write (disk full, I/O error).
    pub const QUEUE_WRITE_FAILING: &str = "otelspool_exporter_queue_write_failing";
    /// Unix time of the last batch the backend accepted, by exporter and signal; absent
    /// before the first.
    pub const EXPORTER_LAST_SUCCESS: &str = "otelspool_exporter_last_success_timestamp_seconds";
    /// Free bytes on a persistent queue's filesystem (`f_bavail * f_frsize`), by exporter and
    /// signal; absent for in-memory queues.
    pub const QUEUE_FILESYSTEM_FREE: &str = "otelspool_queue_filesystem_free_bytes";
    /// Items dropped by `when_full: drop_oldest`.
    pub const QUEUE_DROPPED: &str = "otelspool_exporter_queue_dropped_";
    /// Items found damaged on disk and skipped.
    pub const QUEUE_CORRUPT: &str = "otelspool_exporter_queue_corrupt_entries";
    /// Damaged bytes skipped or cut off when the queue was opened at start-up.
    pub const QUEUE_RECOVERY_DAMAGED_BYTES: &str =
        "otelspool_exporter_queue_recovery_damaged_bytes";
    /// Entries recovered from disk at start-up (sent again).
    pub const QUEUE_RECOVERED_ENTRIES: &str = "otelspool_exporter_queue_recovered_entries";
    /// Export attempts that failed and will be retried.
    pub const EXPORTER_RETRIES: &str = "otelspool_exporter_send_retries";
    /// Export requests in flight.
    pub const EXPORTER_IN_FLIGHT: &str = "otelcol_exporter_in_flight_requests";
    /// Latency of one export request.
    pub const EXPORTER_SEND_LATENCY: &str = "otelspool_exporter_send_latency_seconds";
    /// Requests refused, by reason: retryable (`memory_limit`, `queue_full`, `storage_error`,
    /// `shutting_down`) or not (`unauthenticated`: no valid token). Refusals before decoding
    /// cannot count items, so this is the figure to alert on.
    pub const RECEIVER_REFUSED_REQUESTS: &str = "otelspool_receiver_refused_requests";
    /// Latency from request received to client acknowledged (includes the durable write).
    pub const RECEIVER_ACK_LATENCY: &str = "otelspool_receiver_ack_latency_seconds";
    /// Resident memory.
    pub const PROCESS_RSS: &str = "otelcol_process_memory_rss";
    /// CPU seconds.
    pub const PROCESS_CPU: &str = "otelcol_process_cpu_seconds";
    /// Uptime seconds.
    pub const PROCESS_UPTIME: &str = "otelcol_process_uptime";
    /// `otelspool_exporter_rejected_*`: items the backend accepted but dropped, as it said in
    /// OTLP `partial_success` (also counted in `otelcol_exporter_send_failed_*`). otelcol has
    /// no metric for these: its exporters log a warning and count them as sent.
    pub const EXPORTER_REJECTED: &str = "otelspool_exporter_rejected_";
    /// `otelspool_exporter_dead_lettered_*`: items given up on (rejected permanently, or queued
    /// longer than a user-set `max_elapsed_time`) and moved to the dead-letter file (also
    /// counted in `otelcol_exporter_send_failed_*`).
    pub const EXPORTER_DEAD_LETTERED: &str = "otelspool_exporter_dead_lettered_";
    /// Always 1, labelled with `version` and `commit`.
    pub const BUILD_INFO: &str = "otelspool_build_info";
    /// Memory the process may use: the smaller of physical memory and the cgroup limit.
    pub const PROCESS_MEMORY_LIMIT: &str = "otelspool_process_memory_limit_bytes";
    /// A memory limiter's soft limit: above it, data is refused.
    pub const MEMORY_LIMITER_SOFT_LIMIT: &str = "otelspool_memory_limiter_soft_limit_bytes";
    /// Jobs the job ledger evicted (over `max_jobs`, or complete and past `retention`).
    pub const JOB_LEDGER_EVICTED: &str = "otelspool_job_ledger_evicted_jobs";
}

/// The registry and every metric in it.
pub struct Metrics {
    registry: Registry,
    started: Instant,
    receiver_accepted: [IntCounterVec; Signal::COUNT],
    receiver_refused: [IntCounterVec; Signal::COUNT],
    receiver_failed: [IntCounterVec; Signal::COUNT],
    exporter_sent: [IntCounterVec; Signal::COUNT],
    exporter_send_failed: [IntCounterVec; Signal::COUNT],
    exporter_enqueue_failed: [IntCounterVec; Signal::COUNT],
    exporter_rejected: [IntCounterVec; Signal::COUNT],
    exporter_dead_lettered: [IntCounterVec; Signal::COUNT],
    queue_dropped: [IntCounterVec; Signal::COUNT],
    exporter_retries: IntCounterVec,
    refused_requests: IntCounterVec,
    job_ledger_evicted: IntCounterVec,
    exporter_in_flight: GaugeVec,
    send_latency: HistogramVec,
    ack_latency: HistogramVec,
    queue_size: GaugeVec,
    queue_capacity: GaugeVec,
    queue_bytes: GaugeVec,
    queue_capacity_bytes: GaugeVec,
    queue_items: GaugeVec,
    queue_oldest_age: GaugeVec,
    queue_write_failing: GaugeVec,
    exporter_last_success: GaugeVec,
    queue_filesystem_free: GaugeVec,
    queue_recovery_damaged: GaugeVec,
    queue_recovered: GaugeVec,
    queue_corrupt: CounterVec,
    rss: Gauge,
    cpu: Gauge,
    uptime: Gauge,
    memory_limit: IntGauge,
    memory_limiter_soft_limit: IntGaugeVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// A snapshot of one queue for the gauges.
#[derive(Debug, Clone)]
pub struct QueueGauges<'a> {
    /// Exporter id.
    pub exporter: &'a str,
    /// Signal.
    pub signal: Signal,
    /// The queue's figures.
    pub stats: otelspool_queue::QueueStats,
    /// The queue's counters.
    pub counters: otelspool_queue::QueueCounters,
    /// What the queue found on disk at start-up.
    pub recovery: otelspool_queue::RecoveryReport,
}

impl Metrics {
    /// Creates the registry with every metric.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        use names::*;
        let reg = Registry::new();
        let rt = &["receiver", "transport"];
        let ex = &["exporter"];
        let q = &["exporter", "data_type"];
        Ok(Metrics {
            receiver_accepted: counters(
                &reg,
                RECEIVER_ACCEPTED,
                "Items accepted and durably queued",
                rt,
            )?,
            receiver_refused: counters(
                &reg,
                RECEIVER_REFUSED,
                "Items refused with a retryable error",
                rt,
            )?,
            receiver_failed: counters(&reg, RECEIVER_FAILED, "Items rejected as malformed", rt)?,
            exporter_sent: counters(&reg, EXPORTER_SENT, "Items the backend accepted", ex)?,
            exporter_send_failed: counters(
                &reg,
                EXPORTER_SEND_FAILED,
                "Items the backend rejected permanently (dead-lettered)",
                ex,
            )?,
            exporter_enqueue_failed: counters(
                &reg,
                EXPORTER_ENQUEUE_FAILED,
                "Items that could not be queued (client told to retry)",
                ex,
            )?,
            exporter_rejected: counters(
                &reg,
                EXPORTER_REJECTED,
                "Items the backend accepted but rejected through partial success",
                ex,
            )?,
            exporter_dead_lettered: counters(
                &reg,
                EXPORTER_DEAD_LETTERED,
                "Items given up on and moved to the dead-letter file",
                ex,
            )?,
            queue_dropped: counters(
                &reg,
                QUEUE_DROPPED,
                "Items dropped from a full queue (when_full: drop_oldest)",
                ex,
            )?,
            exporter_retries: counter_vec(
                &reg,
                EXPORTER_RETRIES,
                "Export attempts that failed and will be retried",
                &["exporter", "data_type"],
            )?,
            refused_requests: counter_vec(
                &reg,
                RECEIVER_REFUSED_REQUESTS,
                "Requests refused before being queued, by reason",
                &["receiver", "transport", "reason"],
            )?,
            job_ledger_evicted: counter_vec(
                &reg,
                JOB_LEDGER_EVICTED,
                "Jobs the job ledger evicted to stay within max_jobs and retention",
                &[],
            )?,
            exporter_in_flight: gauge_vec(
                &reg,
                EXPORTER_IN_FLIGHT,
                "Export requests in flight",
                ex,
            )?,
            send_latency: histogram(
                &reg,
                EXPORTER_SEND_LATENCY,
                "Duration of one export request",
                q,
            )?,
            ack_latency: histogram(
                &reg,
                RECEIVER_ACK_LATENCY,
                "Time from request received to client acknowledged",
                rt,
            )?,
            queue_size: gauge_vec(&reg, QUEUE_SIZE, "Entries in the sending queue", q)?,
            queue_capacity: gauge_vec(&reg, QUEUE_CAPACITY, "Entry limit of the sending queue", q)?,
            queue_bytes: gauge_vec(&reg, QUEUE_BYTES, "Bytes the sending queue uses on disk", q)?,
            queue_capacity_bytes: gauge_vec(
                &reg,
                QUEUE_CAPACITY_BYTES,
                "Byte limit of the sending queue",
                q,
            )?,
            queue_items: gauge_vec(&reg, QUEUE_ITEMS, "Items in the sending queue", q)?,
            queue_oldest_age: gauge_vec(
                &reg,
                QUEUE_OLDEST_AGE,
                "Age of the oldest queued entry",
                q,
            )?,
            queue_write_failing: gauge_vec(
                &reg,
                QUEUE_WRITE_FAILING,
                "1 while writes to the queue fail",
                q,
            )?,
            exporter_last_success: gauge_vec(
                &reg,
                EXPORTER_LAST_SUCCESS,
                "Unix time of the last batch the backend accepted",
                &["exporter", "data_type"],
            )?,
            queue_filesystem_free: gauge_vec(
                &reg,
                QUEUE_FILESYSTEM_FREE,
                "Free bytes on the queue's filesystem (available to unprivileged users)",
                &["exporter", "data_type"],
            )?,
            queue_recovery_damaged: gauge_vec(
                &reg,
                QUEUE_RECOVERY_DAMAGED_BYTES,
                "Damaged queue bytes skipped or cut off at start-up",
                q,
            )?,
            queue_recovered: gauge_vec(
                &reg,
                QUEUE_RECOVERED_ENTRIES,
                "Queue entries recovered from disk at start-up",
                q,
            )?,
            queue_corrupt: {
                let c = CounterVec::new(
                    Opts::new(
                        QUEUE_CORRUPT,
                        "Queue entries found damaged on read and skipped",
                    ),
                    q,
                )?;
                reg.register(Box::new(c.clone()))?;
                c
            },
            rss: gauge(&reg, PROCESS_RSS, "Resident memory in bytes")?,
            cpu: gauge(&reg, PROCESS_CPU, "CPU seconds used")?,
            uptime: gauge(&reg, PROCESS_UPTIME, "Seconds since start")?,
            memory_limit: int_gauge(
                &reg,
                PROCESS_MEMORY_LIMIT,
                "Memory the process may use: the smaller of physical memory and the cgroup limit",
            )?,
            memory_limiter_soft_limit: int_gauge_vec(
                &reg,
                MEMORY_LIMITER_SOFT_LIMIT,
                "Resident memory above which the memory limiter refuses data",
                &["processor"],
            )?,
            registry: {
                let info = int_gauge_vec(
                    &reg,
                    BUILD_INFO,
                    "Always 1; the labels name the build",
                    &["version", "commit"],
                )?;
                info.with_label_values(&[VERSION, COMMIT]).set(1);
                reg
            },
            started: Instant::now(),
        })
    }

    /// A receiver durably queued `items`.
    pub fn receiver_accepted(
        &self,
        receiver: &str,
        transport: &str,
        signal: Signal,
        items: u64,
        took: Duration,
    ) {
        self.receiver_accepted[signal.index()]
            .with_label_values(&[receiver, transport])
            .inc_by(items);
        self.ack_latency
            .with_label_values(&[receiver, transport])
            .observe(took.as_secs_f64());
    }

    /// A receiver refused `items` with a retryable error.
    pub fn receiver_refused(&self, receiver: &str, transport: &str, signal: Signal, items: u64) {
        self.receiver_refused[signal.index()]
            .with_label_values(&[receiver, transport])
            .inc_by(items);
    }

    /// A receiver refused one request with a retryable error for `reason`.
    pub fn receiver_refused_request(&self, receiver: &str, transport: &str, reason: &str) {
        self.refused_requests
            .with_label_values(&[receiver, transport, reason])
            .inc();
    }

    /// A receiver rejected a malformed request (items unknown: counted as the request's items, or 0).
    pub fn receiver_failed(&self, receiver: &str, transport: &str, signal: Signal, items: u64) {
        self.receiver_failed[signal.index()]
            .with_label_values(&[receiver, transport])
            .inc_by(items);
    }

    /// The backend accepted `items`.
    pub fn exporter_sent(&self, exporter: &str, signal: Signal, items: u64) {
        self.exporter_sent[signal.index()]
            .with_label_values(&[exporter])
            .inc_by(items);
    }

    /// The backend rejected `items` permanently.
    pub fn exporter_send_failed(&self, exporter: &str, signal: Signal, items: u64) {
        self.exporter_send_failed[signal.index()]
            .with_label_values(&[exporter])
            .inc_by(items);
    }

    /// The backend accepted a batch but rejected `items` of it (OTLP partial success): counted
    /// as rejected and as failed.
    pub fn exporter_rejected(&self, exporter: &str, signal: Signal, items: u64) {
        self.exporter_rejected[signal.index()]
            .with_label_values(&[exporter])
            .inc_by(items);
        self.exporter_send_failed(exporter, signal, items);
    }

    /// `items` were given up on and moved to the dead-letter file: counted as dead-lettered and
    /// as failed.
    pub fn exporter_dead_lettered(&self, exporter: &str, signal: Signal, items: u64) {
        self.exporter_dead_lettered[signal.index()]
            .with_label_values(&[exporter])
            .inc_by(items);
        self.exporter_send_failed(exporter, signal, items);
    }

    /// Creates the series of one exporter queue's counters at 0, so that they exist before
    /// their first event: a rate or an `increase()` over a series that appears with its first
    /// increment misses that increment, and alerts on it would not fire.
    pub fn init_exporter_queue(&self, exporter: &str, signal: Signal) {
        let i = signal.index();
        for family in [
            &self.exporter_sent[i],
            &self.exporter_send_failed[i],
            &self.exporter_enqueue_failed[i],
            &self.exporter_rejected[i],
            &self.exporter_dead_lettered[i],
        ] {
            family.with_label_values(&[exporter]);
        }
        self.exporter_retries
            .with_label_values(&[exporter, signal.as_str()]);
        self.exporter_in_flight.with_label_values(&[exporter]);
    }

    /// Creates the item counters of one receiver transport for `signal` at 0 (see
    /// [`Metrics::init_exporter_queue`]).
    pub fn init_receiver(&self, receiver: &str, transport: &str, signal: Signal) {
        let i = signal.index();
        for family in [
            &self.receiver_accepted[i],
            &self.receiver_refused[i],
            &self.receiver_failed[i],
        ] {
            family.with_label_values(&[receiver, transport]);
        }
    }

    /// A memory limiter `processor` refuses data above `soft_limit` bytes of RSS.
    pub fn memory_limiter_soft_limit(&self, processor: &str, soft_limit: u64) {
        self.memory_limiter_soft_limit
            .with_label_values(&[processor])
            .set(i64::try_from(soft_limit).unwrap_or(i64::MAX));
    }

    /// `items` could not be queued.
    pub fn enqueue_failed(&self, exporter: &str, signal: Signal, items: u64) {
        self.exporter_enqueue_failed[signal.index()]
            .with_label_values(&[exporter])
            .inc_by(items);
    }

    /// The job ledger evicted `jobs` jobs.
    pub fn job_ledger_evicted(&self, jobs: u64) {
        self.job_ledger_evicted
            .with_label_values(&[] as &[&str])
            .inc_by(jobs);
    }

    /// Counts one retried export attempt.
    pub fn exporter_retry(&self, exporter: &str, signal: Signal) {
        self.exporter_retries
            .with_label_values(&[exporter, signal.as_str()])
            .inc();
    }

    /// An export request started (+1) or ended (-1).
    pub fn exporter_in_flight(&self, exporter: &str, delta: f64) {
        self.exporter_in_flight
            .with_label_values(&[exporter])
            .add(delta);
    }

    /// One export request took `took`.
    pub fn send_latency(&self, exporter: &str, signal: Signal, took: Duration) {
        self.send_latency
            .with_label_values(&[exporter, signal.as_str()])
            .observe(took.as_secs_f64());
    }

    /// Sets the queue gauges and the queue-side counters from a snapshot.
    pub fn observe_queue(&self, q: &QueueGauges<'_>) {
        let l = [q.exporter, q.signal.as_str()];
        let s = &q.stats;
        self.queue_size.with_label_values(&l).set(s.entries as f64);
        self.queue_capacity
            .with_label_values(&l)
            .set(s.capacity_entries.min(1 << 53) as f64);
        self.queue_bytes
            .with_label_values(&l)
            .set(s.disk_bytes.max(s.payload_bytes) as f64);
        self.queue_capacity_bytes
            .with_label_values(&l)
            .set(s.capacity_bytes as f64);
        self.queue_items.with_label_values(&l).set(s.items as f64);
        self.queue_oldest_age
            .with_label_values(&l)
            .set(s.oldest_age.map_or(0.0, |a| a.as_secs_f64()));
        self.queue_write_failing
            .with_label_values(&l)
            .set(if s.write_error.is_some() { 1.0 } else { 0.0 });
        let r = &q.recovery;
        self.queue_recovery_damaged
            .with_label_values(&l)
            .set((r.skipped_bytes + r.truncated_bytes) as f64);
        self.queue_recovered
            .with_label_values(&l)
            .set(r.entries as f64);
        let dropped = &self.queue_dropped[q.signal.index()].with_label_values(&[q.exporter]);
        dropped.inc_by(q.counters.dropped_items.saturating_sub(dropped.get()));
        let corrupt = self.queue_corrupt.with_label_values(&l);
        corrupt.inc_by((q.counters.corrupt_entries as f64 - corrupt.get()).max(0.0));
    }

    /// Sets the delivery and filesystem gauges of one watched queue. A gauge stays absent
    /// until it has a value: no success yet, or an in-memory queue.
    pub fn observe_watched(&self, q: &WatchedQueue) {
        let l = [q.exporter.as_str(), q.signal.as_str()];
        if let Some(at) = q.status.last_success() {
            let secs = at
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            self.exporter_last_success.with_label_values(&l).set(secs);
        }
        if let Some(free) = q.free_bytes() {
            self.queue_filesystem_free
                .with_label_values(&l)
                .set(free as f64);
        }
    }

    /// Renders the Prometheus text format, refreshing the process gauges first.
    pub fn render(&self) -> String {
        if let Some(rss) = process::resident_memory_bytes() {
            self.rss.set(rss as f64);
        }
        if let Some(cpu) = process::cpu_seconds() {
            self.cpu.set(cpu);
        }
        self.uptime.set(self.started.elapsed().as_secs_f64());
        if let Some(limit) = process::total_memory_bytes() {
            self.memory_limit
                .set(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "could not encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: one accepted request and one sent batch, then a scrape.
    /// Guarantees: the otelcol names appear with otelcol's labels and values.
    #[test]
    fn otelcol_names_appear_with_their_labels() {
        let m = Metrics::new().expect("metrics");
        m.receiver_accepted("otlp", "grpc", Signal::Logs, 3, Duration::from_millis(1));
        m.exporter_sent("otlp/dash0", Signal::Traces, 2);
        let text = m.render();
        assert!(
            text.contains(
                r#"otelcol_receiver_accepted_log_records{receiver="otlp",transport="grpc"} 3"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"otelcol_exporter_sent_spans{exporter="otlp/dash0"} 2"#));
        assert!(text.contains("otelcol_process_memory_rss "));
    }

    /// Scenario: a fresh registry is scraped; then a partial success rejects 4 spans.
    /// Guarantees: `otelspool_build_info` is 1 with this build's version and commit (a
    /// non-empty short hash or `unknown`), the memory limit is exposed, and the rejected spans
    /// are counted as rejected and as failed.
    #[test]
    fn build_info_memory_limit_and_rejections_are_exposed() {
        let m = Metrics::new().expect("metrics");
        let text = m.render();
        let info = format!(r#"otelspool_build_info{{commit="{COMMIT}",version="{VERSION}"}} 1"#);
        assert!(text.contains(&info), "{text}");
        assert!(!COMMIT.is_empty());
        assert_eq!(VERSION, env!("CARGO_PKG_VERSION"));
        assert!(
            text.contains("otelspool_process_memory_limit_bytes "),
            "{text}"
        );
        m.exporter_rejected("otlp", Signal::Traces, 4);
        let text = m.render();
        assert!(text.contains(r#"otelspool_exporter_rejected_spans{exporter="otlp"} 4"#));
        assert!(text.contains(r#"otelcol_exporter_send_failed_spans{exporter="otlp"} 4"#));
    }

    /// Scenario: a queue (exporter `otlp`, traces) and a receiver transport (`otlp`, `http`,
    /// logs) are registered; nothing happens.
    /// Guarantees: their counters are exposed at 0 (so `increase()` sees a first event), and
    /// other signals' series do not appear.
    #[test]
    fn registered_queues_and_receivers_start_at_zero() {
        let m = Metrics::new().expect("metrics");
        m.init_exporter_queue("otlp", Signal::Traces);
        m.init_receiver("otlp", "http", Signal::Logs);
        let text = m.render();
        for series in [
            r#"otelcol_exporter_sent_spans{exporter="otlp"} 0"#,
            r#"otelcol_exporter_send_failed_spans{exporter="otlp"} 0"#,
            r#"otelcol_exporter_enqueue_failed_spans{exporter="otlp"} 0"#,
            r#"otelspool_exporter_rejected_spans{exporter="otlp"} 0"#,
            r#"otelspool_exporter_dead_lettered_spans{exporter="otlp"} 0"#,
            r#"otelspool_exporter_send_retries{data_type="traces",exporter="otlp"} 0"#,
            r#"otelcol_receiver_accepted_log_records{receiver="otlp",transport="http"} 0"#,
            r#"otelcol_receiver_refused_log_records{receiver="otlp",transport="http"} 0"#,
            r#"otelcol_receiver_failed_log_records{receiver="otlp",transport="http"} 0"#,
        ] {
            assert!(text.contains(series), "{series} missing in\n{text}");
        }
        assert!(!text.contains("otelcol_exporter_sent_log_records{"));
        assert!(!text.contains("otelcol_receiver_accepted_spans{"));
    }
}
