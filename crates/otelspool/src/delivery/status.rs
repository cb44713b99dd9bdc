//! The delivery status of one exporter queue (exporter × signal): when the backend last
//! accepted a batch, the last failure with its reason and time, and counts of attempts,
//! retries, deliveries and give-ups, plus the latencies of the latest exports.
//!
//! Written by the queue's consumers once per export attempt (per batch, never per client
//! request), read by the health checks, `/status.json` and the
//! `otelspool_exporter_last_success_timestamp_seconds` gauge. One short mutex section per
//! write; readers take a [`DeliverySnapshot`].

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How many recent export latencies are kept for the percentiles.
pub const LATENCY_SAMPLES: usize = 128;

/// What kind of failure the last error was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Transient: the data stays queued and is sent again.
    Retryable,
    /// The backend rejected the data for good: it went to the dead-letter file.
    Rejected,
    /// Retried longer than the user's `max_elapsed_time`: it went to the dead-letter file.
    Expired,
    /// The backend accepted the batch but rejected some of its items (OTLP partial success).
    PartiallyRejected,
}

impl FailureKind {
    /// The spelling in `/status.json`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FailureKind::Retryable => "retryable",
            FailureKind::Rejected => "rejected",
            FailureKind::Expired => "expired",
            FailureKind::PartiallyRejected => "partially_rejected",
        }
    }
}

/// The most recent failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// The exporter's reason (never contains header values).
    pub reason: String,
    /// Its kind.
    pub kind: FailureKind,
    /// When it happened.
    pub at: SystemTime,
}

/// Percentiles of the latest export latencies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// How many latencies these are computed from (at most [`LATENCY_SAMPLES`]).
    pub samples: usize,
}

/// A copy of the status at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliverySnapshot {
    /// When tracking started (the queue's consumers were created).
    pub since: SystemTime,
    /// When the backend last accepted a batch.
    pub last_success: Option<SystemTime>,
    /// The most recent failure, kept after later successes.
    pub last_error: Option<LastError>,
    /// Export calls made.
    pub attempts: u64,
    /// Export calls that failed retryably (the data was queued again).
    pub retries: u64,
    /// Failed export calls since the last success.
    pub consecutive_failures: u64,
    /// Items the backend accepted.
    pub delivered_items: u64,
    /// Items the backend rejected inside an accepted batch (partial success).
    pub partially_rejected_items: u64,
    /// Items given up on and written to the dead-letter file (or dropped without one).
    pub dead_lettered_items: u64,
    /// Latencies of the latest exports; `None` before the first.
    pub latency: Option<LatencySummary>,
}

impl DeliverySnapshot {
    /// How long the exporter has gone without a successful send at `now`: since the last
    /// success, or since tracking started when there was none.
    pub fn time_since_success(&self, now: SystemTime) -> Duration {
        now.duration_since(self.last_success.unwrap_or(self.since))
            .unwrap_or_default()
    }
}

#[derive(Debug)]
struct Inner {
    snapshot: DeliverySnapshot,
    latencies: Vec<Duration>,
    next: usize,
}

/// The delivery status of one exporter queue; shared by its consumers and its readers.
#[derive(Debug)]
pub struct DeliveryStatus {
    inner: Mutex<Inner>,
}

impl Default for DeliveryStatus {
    fn default() -> Self {
        DeliveryStatus::new(SystemTime::now())
    }
}

impl DeliveryStatus {
    /// A status tracking from `since`.
    pub fn new(since: SystemTime) -> Self {
        DeliveryStatus {
            inner: Mutex::new(Inner {
                snapshot: DeliverySnapshot {
                    since,
                    last_success: None,
                    last_error: None,
                    attempts: 0,
                    retries: 0,
                    consecutive_failures: 0,
                    delivered_items: 0,
                    partially_rejected_items: 0,
                    dead_lettered_items: 0,
                    latency: None,
                },
                latencies: Vec::with_capacity(LATENCY_SAMPLES),
                next: 0,
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// One export call ended after `took`, whatever its outcome.
    pub fn attempted(&self, took: Duration) {
        self.with(|i| {
            i.snapshot.attempts += 1;
            if i.latencies.len() < LATENCY_SAMPLES {
                i.latencies.push(took);
            } else {
                i.latencies[i.next] = took;
            }
            i.next = (i.next + 1) % LATENCY_SAMPLES;
        });
    }

    /// The backend accepted a batch of `delivered` items at `at`, rejecting
    /// `partially_rejected` more (partial success, with the backend's `message`).
    pub fn succeeded(
        &self,
        at: SystemTime,
        delivered: u64,
        partially_rejected: u64,
        message: &str,
    ) {
        self.with(|i| {
            let s = &mut i.snapshot;
            s.last_success = Some(at);
            s.consecutive_failures = 0;
            s.delivered_items += delivered;
            if partially_rejected > 0 {
                s.partially_rejected_items += partially_rejected;
                s.last_error = Some(LastError {
                    reason: format!("{partially_rejected} items rejected: {message}"),
                    kind: FailureKind::PartiallyRejected,
                    at,
                });
            }
        });
    }

    /// An export failed retryably at `at`; the data was queued again.
    pub fn retrying(&self, at: SystemTime, reason: &str) {
        self.with(|i| {
            let s = &mut i.snapshot;
            s.retries += 1;
            s.consecutive_failures += 1;
            s.last_error = Some(LastError {
                reason: reason.to_owned(),
                kind: FailureKind::Retryable,
                at,
            });
        });
    }

    /// `items` were given up on at `at` (`kind` says why).
    pub fn gave_up(&self, at: SystemTime, items: u64, kind: FailureKind, reason: &str) {
        self.with(|i| {
            let s = &mut i.snapshot;
            s.consecutive_failures += 1;
            s.dead_lettered_items += items;
            s.last_error = Some(LastError {
                reason: reason.to_owned(),
                kind,
                at,
            });
        });
    }

    /// When the backend last accepted a batch (cheaper than a snapshot).
    pub fn last_success(&self) -> Option<SystemTime> {
        self.with(|i| i.snapshot.last_success)
    }

    /// Items the backend accepted so far (cheaper than a snapshot).
    pub fn delivered_items(&self) -> u64 {
        self.with(|i| i.snapshot.delivered_items)
    }

    /// The status now, with the latency percentiles computed.
    pub fn snapshot(&self) -> DeliverySnapshot {
        let (mut snapshot, mut latencies) =
            self.with(|i| (i.snapshot.clone(), i.latencies.clone()));
        latencies.sort_unstable();
        snapshot.latency = summarize(&latencies);
        snapshot
    }
}

/// Nearest-rank percentiles of sorted latencies.
fn summarize(sorted: &[Duration]) -> Option<LatencySummary> {
    let n = sorted.len();
    let rank = |p: usize| sorted[((n * p).div_ceil(100)).clamp(1, n) - 1];
    (n > 0).then(|| LatencySummary {
        p50: rank(50),
        p90: rank(90),
        p99: rank(99),
        samples: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// Scenario: failures, then a success, then a permanent rejection.
    /// Guarantees: counters add up; a success clears the consecutive failures but keeps the
    /// last error; time since success counts from the start until the first success.
    #[test]
    fn records_successes_and_failures() {
        let s = DeliveryStatus::new(at(100));
        assert_eq!(
            s.snapshot().time_since_success(at(130)),
            Duration::from_secs(30)
        );
        s.attempted(Duration::from_millis(5));
        s.retrying(at(110), "connection refused");
        s.attempted(Duration::from_millis(5));
        s.retrying(at(120), "connection refused");
        let snap = s.snapshot();
        assert_eq!(
            (snap.attempts, snap.retries, snap.consecutive_failures),
            (2, 2, 2)
        );
        let e = snap.last_error.expect("error");
        assert_eq!(
            (e.kind, e.at, e.reason.as_str()),
            (FailureKind::Retryable, at(120), "connection refused")
        );

        s.attempted(Duration::from_millis(5));
        s.succeeded(at(125), 40, 0, "");
        let snap = s.snapshot();
        assert_eq!(snap.last_success, Some(at(125)));
        assert_eq!((snap.consecutive_failures, snap.delivered_items), (0, 40));
        assert_eq!(snap.time_since_success(at(130)), Duration::from_secs(5));
        assert_eq!(snap.last_error.expect("kept").at, at(120));

        s.gave_up(at(126), 3, FailureKind::Rejected, "invalid argument");
        let snap = s.snapshot();
        assert_eq!(snap.dead_lettered_items, 3);
        assert_eq!(snap.last_error.expect("error").kind, FailureKind::Rejected);
    }

    /// Scenario: more latencies than the reservoir keeps, 1..=200 ms.
    /// Guarantees: only the latest [`LATENCY_SAMPLES`] count; nearest-rank percentiles.
    #[test]
    fn latency_percentiles_cover_the_latest_exports() {
        let s = DeliveryStatus::default();
        assert_eq!(s.snapshot().latency, None);
        for ms in 1..=200 {
            s.attempted(Duration::from_millis(ms));
        }
        let l = s.snapshot().latency.expect("latency");
        // The latest 128 are 73..=200 ms.
        assert_eq!(l.samples, LATENCY_SAMPLES);
        assert_eq!(l.p50, Duration::from_millis(72 + 64));
        assert_eq!(l.p90, Duration::from_millis(72 + 116));
        assert_eq!(l.p99, Duration::from_millis(72 + 127));
    }
}
