//! The `/status.json` document: a stable, documented API (docs/operations.md) that the status
//! page reads and scripts may use. Fields are only ever added; none is renamed or removed
//! without a `schema_version` bump.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::Observed;
use super::verdict::{DeliveryChecks, Phase, QueueView, Verdict, queue_failures};
use crate::telemetry::Watch;

/// The version of the document's shape.
pub const SCHEMA_VERSION: u64 = 1;

/// What the document is made from.
pub(super) struct Inputs<'a> {
    pub watch: &'a Watch,
    pub observed: &'a [Observed],
    pub views: &'a [QueueView<'a>],
    pub verdict: &'a Verdict,
    pub phase: Phase,
    pub checks: Option<&'a DeliveryChecks>,
    pub up_since: SystemTime,
    pub uptime: Duration,
    pub now: SystemTime,
}

fn time(t: SystemTime) -> Value {
    humantime::format_rfc3339_millis(t).to_string().into()
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Starting => "starting",
        Phase::Running => "running",
        Phase::ShuttingDown => "shutting_down",
    }
}

/// Builds the document.
pub(super) fn document(i: &Inputs<'_>) -> Value {
    let checks = i.checks.map(|c| {
        json!({
            "max_time_since_success_seconds": c.max_time_since_success.map(secs),
            "max_oldest_record_age_seconds": c.max_oldest_record_age.map(secs),
            "max_queue_fill_ratio": c.max_queue_fill_ratio,
            "min_free_disk_bytes": c.min_free_disk_bytes,
        })
    });
    let exporters: Vec<Value> = (0..i.watch.queues.len()).map(|n| exporter(i, n)).collect();
    let pipelines: Vec<Value> = i
        .watch
        .pipelines
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "signal": p.signal.as_str(),
                "receivers": p.receivers,
                "exporters": p.exporters,
            })
        })
        .collect();
    json!({
        "schema_version": SCHEMA_VERSION,
        "version": env!("CARGO_PKG_VERSION"),
        "time": time(i.now),
        "start_time": time(i.up_since),
        "uptime_seconds": secs(i.uptime),
        "phase": phase_name(i.phase),
        "live": i.phase.live(),
        "healthy": i.verdict.is_ready(),
        "status": if i.verdict.is_ready() { "Server available" } else { "Server not available" },
        "failing_checks": i.verdict.failures().iter().map(|f| f.to_json()).collect::<Vec<_>>(),
        "checks": checks,
        "rates_window_seconds": i.watch.rates(0).map(|r| secs(r.window)),
        "pipelines": pipelines,
        "exporters": exporters,
    })
}

fn exporter(i: &Inputs<'_>, n: usize) -> Value {
    let (q, o, view) = (&i.watch.queues[n], &i.observed[n], &i.views[n]);
    let s = &o.stats;
    let d = &o.delivery;
    let failures = queue_failures(view, i.checks, i.now);
    let rates = i.watch.rates(n).map(|r| {
        json!({
            "received_records_per_second": (r.received_per_second * 10.0).round() / 10.0,
            "delivered_records_per_second": (r.delivered_per_second * 10.0).round() / 10.0,
        })
    });
    let last_error = d
        .last_error
        .as_ref()
        .map(|e| json!({ "reason": e.reason, "kind": e.kind.as_str(), "time": time(e.at) }));
    let latency = d.latency.map(|l| {
        json!({ "p50": secs(l.p50), "p90": secs(l.p90), "p99": secs(l.p99), "samples": l.samples })
    });
    json!({
        "exporter": q.exporter,
        "signal": q.signal.as_str(),
        "pipelines": q.pipelines,
        "healthy": failures.is_empty(),
        "failing_checks": failures.iter().map(|f| f.to_json()).collect::<Vec<_>>(),
        "queue": {
            "persistent": q.dir.is_some(),
            "requests": s.entries,
            "records": s.items,
            "bytes": s.disk_bytes.max(s.payload_bytes),
            "capacity_requests": (s.capacity_entries < 1 << 53).then_some(s.capacity_entries),
            "capacity_bytes": s.capacity_bytes,
            "fill_ratio": (view.fill_ratio() * 10000.0).round() / 10000.0,
            "oldest_age_seconds": s.oldest_age.map(secs),
            "in_flight_requests": s.in_flight,
            "write_error": s.write_error,
            "filesystem_free_bytes": o.free_bytes,
            "dropped_records": o.counters.dropped_items,
        },
        "rates": rates,
        "delivery": {
            "last_success": d.last_success.map(time),
            "seconds_since_success": d.last_success.map(|_| secs(d.time_since_success(i.now))),
            "attempts": d.attempts,
            "retries": d.retries,
            "consecutive_failures": d.consecutive_failures,
            "delivered_records": d.delivered_items,
            "partially_rejected_records": d.partially_rejected_items,
            "dead_lettered_records": d.dead_lettered_items,
            "last_error": last_error,
            "latency_seconds": latency,
        },
    })
}
