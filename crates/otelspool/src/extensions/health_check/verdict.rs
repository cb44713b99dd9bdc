//! The health verdict, decided here and only here.
//!
//! Liveness ([`Phase::live`]): the process serves, so it is live unless it is shutting down.
//! Readiness ([`evaluate`]): started, not shutting down, every queue can write, and every
//! configured delivery check passes. Each reason for not being ready is one [`Failure`]
//! variant carrying its figures; the JSON bodies, the status page and `otelspool healthcheck`
//! all show the same failures ([`render`]: their names, messages and JSON).

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, SystemTime};

use otelspool_queue::QueueStats;

use crate::delivery::DeliverySnapshot;
use crate::pipeline::Signal;

/// Where the process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Opening queues and binding ports.
    Starting,
    /// Receivers and consumers run.
    Running,
    /// Stopping: receivers closed or closing.
    ShuttingDown,
}

impl Phase {
    /// Live: the process serves (anything but shutting down).
    pub fn live(self) -> bool {
        self != Phase::ShuttingDown
    }
}

/// The phase, shared between the run loop and the health endpoint.
#[derive(Debug)]
pub struct SharedPhase(AtomicU8);

impl Default for SharedPhase {
    fn default() -> Self {
        SharedPhase(AtomicU8::new(0))
    }
}

impl SharedPhase {
    /// Sets the phase.
    pub fn set(&self, phase: Phase) {
        let v = match phase {
            Phase::Starting => 0,
            Phase::Running => 1,
            Phase::ShuttingDown => 2,
        };
        self.0.store(v, Ordering::SeqCst);
    }

    /// The phase now.
    pub fn get(&self) -> Phase {
        match self.0.load(Ordering::SeqCst) {
            0 => Phase::Starting,
            1 => Phase::Running,
            _ => Phase::ShuttingDown,
        }
    }
}

/// The configured delivery checks (`health_check.check_delivery`); each applies when set.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DeliveryChecks {
    /// `max_time_since_success`.
    pub max_time_since_success: Option<Duration>,
    /// `max_oldest_record_age`.
    pub max_oldest_record_age: Option<Duration>,
    /// `max_queue_fill_ratio`.
    pub max_queue_fill_ratio: Option<f64>,
    /// `min_free_disk_mib`, in bytes.
    pub min_free_disk_bytes: Option<u64>,
}

/// What the verdict reads of one exporter queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueView<'a> {
    /// Exporter id.
    pub exporter: &'a str,
    /// Signal.
    pub signal: Signal,
    /// The queue's contents and limits.
    pub stats: &'a QueueStats,
    /// Its delivery status.
    pub delivery: &'a DeliverySnapshot,
    /// Free bytes on its filesystem (persistent queues, once sampled).
    pub free_bytes: Option<u64>,
}

impl QueueView<'_> {
    /// The larger of the entry and byte fill ratios.
    pub fn fill_ratio(&self) -> f64 {
        let s = self.stats;
        let ratio = |used: u64, cap: u64| {
            if cap == 0 {
                0.0
            } else {
                used as f64 / cap as f64
            }
        };
        ratio(s.entries, s.capacity_entries)
            .max(ratio(s.disk_bytes.max(s.payload_bytes), s.capacity_bytes))
    }

    /// How long data has waited without any successful send: the shorter of the time since
    /// the last success and the age of the oldest queued record (so a record arriving after a
    /// long idle period does not count the idle time). `None` when the queue is empty.
    pub fn stalled_for(&self, now: SystemTime) -> Option<Duration> {
        if self.stats.entries == 0 {
            return None;
        }
        let since_success = self.delivery.time_since_success(now);
        Some(
            self.stats
                .oldest_age
                .map_or(since_success, |a| a.min(since_success)),
        )
    }
}

/// One reason the process is not ready.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Still starting.
    Starting,
    /// Shutting down.
    ShuttingDown,
    /// A queue's disk writes fail (disk full, I/O error): clients are refused.
    QueueWritesFailing {
        /// Exporter id.
        exporter: String,
        /// Signal.
        signal: Signal,
        /// The queue's error.
        error: String,
    },
    /// `max_time_since_success`: data has waited longer than allowed with no successful send.
    NoRecentSuccess {
        /// Exporter id.
        exporter: String,
        /// Signal.
        signal: Signal,
        /// How long (see [`QueueView::stalled_for`]).
        stalled: Duration,
        /// The threshold.
        threshold: Duration,
        /// Records queued.
        queued_records: u64,
    },
    /// `max_oldest_record_age`: the oldest queued record is older than allowed.
    OldestRecordTooOld {
        /// Exporter id.
        exporter: String,
        /// Signal.
        signal: Signal,
        /// Its age.
        age: Duration,
        /// The threshold.
        threshold: Duration,
    },
    /// `max_queue_fill_ratio`: the queue is fuller than allowed.
    QueueTooFull {
        /// Exporter id.
        exporter: String,
        /// Signal.
        signal: Signal,
        /// Fill ratio (the larger of entries and bytes).
        ratio: f64,
        /// The threshold.
        threshold: f64,
    },
    /// `min_free_disk_mib`: the queue's filesystem has less free space than required.
    LowFreeDisk {
        /// Exporter id.
        exporter: String,
        /// Signal.
        signal: Signal,
        /// Free bytes.
        free_bytes: u64,
        /// The threshold in bytes.
        threshold: u64,
    },
}

/// The readiness verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Accepting and delivering.
    Ready,
    /// Not ready, for these reasons (never empty).
    NotReady(Vec<Failure>),
}

impl Verdict {
    /// True for [`Verdict::Ready`].
    pub fn is_ready(&self) -> bool {
        matches!(self, Verdict::Ready)
    }

    /// The failures (empty when ready).
    pub fn failures(&self) -> &[Failure] {
        match self {
            Verdict::Ready => &[],
            Verdict::NotReady(f) => f,
        }
    }
}

/// Decides readiness at `now` from the phase, every queue, and the configured checks.
pub fn evaluate(
    phase: Phase,
    queues: &[QueueView<'_>],
    checks: Option<&DeliveryChecks>,
    now: SystemTime,
) -> Verdict {
    let mut failures = match phase {
        Phase::Starting => vec![Failure::Starting],
        Phase::ShuttingDown => vec![Failure::ShuttingDown],
        Phase::Running => Vec::new(),
    };
    for q in queues {
        failures.extend(queue_failures(q, checks, now));
    }
    if failures.is_empty() {
        Verdict::Ready
    } else {
        Verdict::NotReady(failures)
    }
}

/// The failures of one queue.
pub fn queue_failures(
    q: &QueueView<'_>,
    checks: Option<&DeliveryChecks>,
    now: SystemTime,
) -> Vec<Failure> {
    let (exporter, signal) = (q.exporter.to_owned(), q.signal);
    let mut out = Vec::new();
    if let Some(error) = &q.stats.write_error {
        out.push(Failure::QueueWritesFailing {
            exporter: exporter.clone(),
            signal,
            error: error.clone(),
        });
    }
    let Some(c) = checks else { return out };
    if let (Some(threshold), Some(stalled)) = (c.max_time_since_success, q.stalled_for(now))
        && stalled > threshold
    {
        out.push(Failure::NoRecentSuccess {
            exporter: exporter.clone(),
            signal,
            stalled,
            threshold,
            queued_records: q.stats.items,
        });
    }
    if let (Some(threshold), Some(age)) = (c.max_oldest_record_age, q.stats.oldest_age)
        && age > threshold
    {
        out.push(Failure::OldestRecordTooOld {
            exporter: exporter.clone(),
            signal,
            age,
            threshold,
        });
    }
    if let Some(threshold) = c.max_queue_fill_ratio
        && q.fill_ratio() > threshold
    {
        out.push(Failure::QueueTooFull {
            exporter: exporter.clone(),
            signal,
            ratio: q.fill_ratio(),
            threshold,
        });
    }
    if let (Some(threshold), Some(free_bytes)) = (c.min_free_disk_bytes, q.free_bytes)
        && free_bytes < threshold
    {
        out.push(Failure::LowFreeDisk {
            exporter,
            signal,
            free_bytes,
            threshold,
        });
    }
    out
}

mod render;
#[cfg(test)]
mod tests;
