//! Every self-metric, named as the OpenTelemetry Collector names it (no `_total` suffix, as
//! otelcol's Prometheus endpoint shows by default), emitted from one method per event.
//! otelspool-only figures use the `otelspool_` prefix.

use std::time::{Duration, Instant};

use prometheus::{
    CounterVec, Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts,
    Registry, TextEncoder,
};

use crate::pipeline::Signal;
use crate::telemetry::process;
use crate::telemetry::watch::WatchedQueue;

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
    queue_dropped: [IntCounterVec; Signal::COUNT],
    exporter_retries: IntCounterVec,
    refused_requests: IntCounterVec,
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

type BuildResult<T> = Result<T, prometheus::Error>;

fn counters(
    reg: &Registry,
    prefix: &str,
    help: &str,
    labels: &[&str],
) -> BuildResult<[IntCounterVec; Signal::COUNT]> {
    let make = |noun: &str| {
        counter_vec(
            reg,
            &format!("{prefix}{noun}"),
            &format!("{help} ({noun})"),
            labels,
        )
    };
    let [a, b, c] = Signal::ALL.map(Signal::item_noun);
    Ok([make(a)?, make(b)?, make(c)?])
}

fn counter_vec(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> BuildResult<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    reg.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge_vec(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> BuildResult<GaugeVec> {
    let g = GaugeVec::new(Opts::new(name, help), labels)?;
    reg.register(Box::new(g.clone()))?;
    Ok(g)
}

fn gauge(reg: &Registry, name: &str, help: &str) -> BuildResult<Gauge> {
    let g = Gauge::new(name, help)?;
    reg.register(Box::new(g.clone()))?;
    Ok(g)
}

fn histogram(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> BuildResult<HistogramVec> {
    let buckets = vec![
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)?;
    reg.register(Box::new(h.clone()))?;
    Ok(h)
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
                &["exporter", "signal"],
            )?,
            queue_filesystem_free: gauge_vec(
                &reg,
                QUEUE_FILESYSTEM_FREE,
                "Free bytes on the queue's filesystem (available to unprivileged users)",
                &["exporter", "signal"],
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
            registry: reg,
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

    /// `items` could not be queued.
    pub fn enqueue_failed(&self, exporter: &str, signal: Signal, items: u64) {
        self.exporter_enqueue_failed[signal.index()]
            .with_label_values(&[exporter])
            .inc_by(items);
    }

    /// An export attempt failed and will be retried.
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
}
