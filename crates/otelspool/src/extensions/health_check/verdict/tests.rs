//! The verdict's decisions, on hand-made figures.

use std::time::{Duration, SystemTime};

use otelspool_queue::QueueStats;

use super::*;
use crate::delivery::DeliveryStatus;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn stats(entries: u64, oldest: Option<u64>) -> QueueStats {
    QueueStats {
        entries,
        items: entries * 10,
        payload_bytes: entries * 100,
        capacity_entries: 100,
        capacity_bytes: 1 << 20,
        oldest_age: oldest.map(Duration::from_secs),
        ..QueueStats::default()
    }
}

fn view<'a>(stats: &'a QueueStats, delivery: &'a DeliverySnapshot) -> QueueView<'a> {
    QueueView {
        exporter: "otlp",
        signal: Signal::Logs,
        stats,
        delivery,
        free_bytes: Some(10 << 20),
    }
}

fn checks() -> DeliveryChecks {
    DeliveryChecks {
        max_time_since_success: Some(Duration::from_secs(60)),
        max_oldest_record_age: Some(Duration::from_secs(600)),
        max_queue_fill_ratio: Some(0.8),
        min_free_disk_bytes: Some(1 << 20),
    }
}

/// Scenario: a running process whose exporter last succeeded an hour ago and whose queue is
/// empty.
/// Guarantees: ready; an idle exporter is not a failing one.
#[test]
fn idle_exporter_with_an_empty_queue_is_ready() {
    let status = DeliveryStatus::new(at(0));
    status.succeeded(at(1000), 5, 0, "");
    let d = status.snapshot();
    let s = stats(0, None);
    let v = evaluate(Phase::Running, &[view(&s, &d)], Some(&checks()), at(4600));
    assert_eq!(v, Verdict::Ready);
}

/// Scenario: after an hour idle, one record arrived 2 s ago; then the same record 90 s later
/// with still no success.
/// Guarantees: not failing at 2 s (idle time does not count); failing at 92 s with the
/// figures (stalled 92 s, threshold 60 s, 10 records).
#[test]
fn time_since_success_counts_only_while_data_waits() {
    let status = DeliveryStatus::new(at(0));
    status.succeeded(at(1000), 5, 0, "");
    let d = status.snapshot();
    let s = stats(1, Some(2));
    let c = checks();
    assert!(queue_failures(&view(&s, &d), Some(&c), at(4600)).is_empty());
    let s = stats(1, Some(92));
    let f = queue_failures(&view(&s, &d), Some(&c), at(4690));
    assert_eq!(
        f,
        vec![Failure::NoRecentSuccess {
            exporter: "otlp".into(),
            signal: Signal::Logs,
            stalled: Duration::from_secs(92),
            threshold: Duration::from_secs(60),
            queued_records: 10,
        }]
    );
    let j = f[0].to_json();
    assert_eq!(j["check"], "max_time_since_success");
    assert_eq!(
        (j["value"].as_f64(), j["threshold"].as_f64()),
        (Some(92.0), Some(60.0))
    );
    assert_eq!(
        (j["exporter"].as_str(), j["signal"].as_str()),
        (Some("otlp"), Some("logs"))
    );
}

/// Scenario: each remaining threshold exceeded alone: an old record while sends succeed, a
/// queue 90 % full, 512 KiB free.
/// Guarantees: exactly the matching failure, with its value and threshold in the JSON.
#[test]
fn each_threshold_fails_alone() {
    let now = at(10_000);
    let status = DeliveryStatus::new(at(0));
    status.succeeded(now, 5, 0, "");
    let d = status.snapshot();
    let c = checks();

    let old = stats(1, Some(700));
    let f = queue_failures(&view(&old, &d), Some(&c), now);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].check(), "max_oldest_record_age");
    assert_eq!(f[0].to_json()["value"].as_f64(), Some(700.0));

    let full = stats(90, Some(1));
    let f = queue_failures(&view(&full, &d), Some(&c), now);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].to_json()["value"].as_f64(), Some(0.9));
    assert_eq!(f[0].to_json()["threshold"].as_f64(), Some(0.8));

    let s = stats(0, None);
    let mut low = view(&s, &d);
    low.free_bytes = Some(512 << 10);
    let f = queue_failures(&low, Some(&c), now);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].check(), "min_free_disk_mib");
    assert_eq!(f[0].to_json()["value"].as_u64(), Some(512 << 10));
    assert_eq!(f[0].to_json()["unit"], "bytes");
}

/// Scenario: the same bad figures with no checks configured; then a queue write error.
/// Guarantees: without `check_delivery` only the phase and queue write errors decide.
#[test]
fn only_configured_checks_apply() {
    let d = DeliveryStatus::new(at(0)).snapshot();
    let s = stats(99, Some(5000));
    let mut q = view(&s, &d);
    q.free_bytes = Some(0);
    assert_eq!(
        evaluate(Phase::Running, &[q], None, at(9000)),
        Verdict::Ready
    );
    let one = DeliveryChecks {
        max_queue_fill_ratio: Some(0.5),
        ..DeliveryChecks::default()
    };
    let v = evaluate(Phase::Running, &[q], Some(&one), at(9000));
    assert_eq!(v.failures().len(), 1);
    let mut failing = stats(0, None);
    failing.write_error = Some("no space left on device".into());
    let v = evaluate(Phase::Running, &[view(&failing, &d)], None, at(9000));
    assert_eq!(v.failures()[0].check(), "queue_writes");
}

/// Scenario: the three phases with healthy queues.
/// Guarantees: only `Running` is ready; only `ShuttingDown` is not live.
#[test]
fn phases() {
    assert_eq!(
        evaluate(Phase::Starting, &[], None, at(1)).failures(),
        &[Failure::Starting]
    );
    assert!(evaluate(Phase::Running, &[], None, at(1)).is_ready());
    assert!(!evaluate(Phase::ShuttingDown, &[], None, at(1)).is_ready());
    assert!(Phase::Starting.live() && Phase::Running.live() && !Phase::ShuttingDown.live());
    let shared = SharedPhase::default();
    assert_eq!(shared.get(), Phase::Starting);
    shared.set(Phase::ShuttingDown);
    assert_eq!(shared.get(), Phase::ShuttingDown);
}
