//! What an operator watches of the running process: every exporter queue with its delivery
//! status and the free space of its filesystem, the pipelines, and a short history of
//! counters from which rates are computed. Shared (behind an `Arc`) by the health checks,
//! the status page and the metrics endpoint; refreshed by [`super::sampler`].
//!
//! Rates are computed server-side, so that scripts reading `/status.json` get them without
//! keeping state: every [`SAMPLE_PERIOD`] the sampler records each queue's appended and
//! delivered item counters in a ring of [`RATE_SAMPLES`]; a rate is the difference between
//! the newest and the oldest sample over the time between them.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use otelspool_queue::Queue;

use crate::delivery::DeliveryStatus;
use crate::pipeline::Signal;

/// How often the sampler refreshes free space and rate samples.
pub const SAMPLE_PERIOD: Duration = Duration::from_secs(2);
/// Samples kept per queue: rates cover the last `(RATE_SAMPLES - 1) * SAMPLE_PERIOD` (10 s).
pub const RATE_SAMPLES: usize = 6;

const UNKNOWN: u64 = u64::MAX;

/// One exporter queue (exporter × signal) as the operator sees it.
#[derive(Debug, Clone)]
pub struct WatchedQueue {
    /// Exporter id (`otlp/dash0`).
    pub exporter: String,
    /// Signal.
    pub signal: Signal,
    /// The queue.
    pub queue: Queue,
    /// Its delivery status, written by its consumers.
    pub status: Arc<DeliveryStatus>,
    /// The queue's folder; `None` for an in-memory queue.
    pub dir: Option<PathBuf>,
    /// Ids of the pipelines that write to it.
    pub pipelines: Vec<String>,
    free_bytes: Arc<AtomicU64>,
}

impl WatchedQueue {
    /// A watched queue; its free space is unknown until first sampled.
    pub fn new(
        exporter: String,
        signal: Signal,
        queue: Queue,
        status: Arc<DeliveryStatus>,
        dir: Option<PathBuf>,
        pipelines: Vec<String>,
    ) -> Self {
        WatchedQueue {
            exporter,
            signal,
            queue,
            status,
            dir,
            pipelines,
            free_bytes: Arc::new(AtomicU64::new(UNKNOWN)),
        }
    }

    /// Bytes available to unprivileged users on the queue folder's filesystem (`f_bavail *
    /// f_frsize`), as last sampled; `None` for an in-memory queue or before the first sample.
    pub fn free_bytes(&self) -> Option<u64> {
        let v = self.free_bytes.load(Ordering::Relaxed);
        (v != UNKNOWN && self.dir.is_some()).then_some(v)
    }

    /// Stores a sample of the free space (`None`: could not be read).
    pub fn set_free_bytes(&self, bytes: Option<u64>) {
        let v = bytes.map_or(UNKNOWN, |b| b.min(UNKNOWN - 1));
        self.free_bytes.store(v, Ordering::Relaxed);
    }
}

/// A `service.pipelines` entry, for the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineView {
    /// Pipeline id (`logs`, `logs/jobs`).
    pub id: String,
    /// Its signal.
    pub signal: Signal,
    /// Receiver ids.
    pub receivers: Vec<String>,
    /// Exporter ids.
    pub exporters: Vec<String>,
}

/// Items per second over the rate window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Items durably appended to the queue per second.
    pub received_per_second: f64,
    /// Items the backend accepted per second.
    pub delivered_per_second: f64,
    /// The time the rates are computed over.
    pub window: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    appended: u64,
    delivered: u64,
}

/// Everything watched, shared by health, status and metrics.
#[derive(Debug)]
pub struct Watch {
    /// Every exporter queue, ordered by exporter id then signal.
    pub queues: Vec<WatchedQueue>,
    /// Every pipeline.
    pub pipelines: Vec<PipelineView>,
    samples: Mutex<Vec<VecDeque<Sample>>>,
}

impl Watch {
    /// Watches `queues` and `pipelines`.
    pub fn new(queues: Vec<WatchedQueue>, pipelines: Vec<PipelineView>) -> Self {
        let samples = Mutex::new(vec![VecDeque::with_capacity(RATE_SAMPLES); queues.len()]);
        Watch {
            queues,
            pipelines,
            samples,
        }
    }

    /// Records one sample of every queue's counters at `at`.
    pub fn sample_counters(&self, at: Instant) {
        let mut rings = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        for (q, ring) in self.queues.iter().zip(rings.iter_mut()) {
            if ring.len() == RATE_SAMPLES {
                ring.pop_front();
            }
            ring.push_back(Sample {
                at,
                appended: q.queue.counters().appended_items,
                delivered: q.status.delivered_items(),
            });
        }
    }

    /// The rates of queue `index` (into [`Watch::queues`]); `None` until two samples exist.
    pub fn rates(&self, index: usize) -> Option<Rates> {
        let rings = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let ring = rings.get(index)?;
        let (first, last) = (ring.front()?, ring.back()?);
        let window = last.at.checked_duration_since(first.at)?;
        let secs = window.as_secs_f64();
        (secs > 0.0).then(|| Rates {
            received_per_second: last.appended.saturating_sub(first.appended) as f64 / secs,
            delivered_per_second: last.delivered.saturating_sub(first.delivered) as f64 / secs,
            window,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use otelspool_queue::QueueOptions;

    use super::*;
    use crate::telemetry::Metrics;

    fn watched(dir: Option<PathBuf>) -> WatchedQueue {
        let queue = Queue::open(QueueOptions::new("t", None)).expect("queue").0;
        let status = Arc::new(DeliveryStatus::default());
        WatchedQueue::new(
            "otlp".into(),
            Signal::Logs,
            queue,
            status,
            dir,
            vec!["logs".into()],
        )
    }

    /// Scenario: 30 items appended and 20 delivered between two samples 2 s apart.
    /// Guarantees: rates of 15/s received and 10/s delivered over a 2 s window; no rate from a
    /// single sample.
    #[tokio::test]
    async fn rates_are_differences_over_the_window() {
        let w = Watch::new(vec![watched(None)], Vec::new());
        let t0 = Instant::now();
        w.sample_counters(t0);
        assert_eq!(w.rates(0), None);
        let q = &w.queues[0];
        for _ in 0..3 {
            q.queue
                .append(10, bytes::Bytes::from_static(b"x"))
                .await
                .expect("append");
        }
        q.status.succeeded(SystemTime::now(), 20, 0, "");
        w.sample_counters(t0 + Duration::from_secs(2));
        let r = w.rates(0).expect("rates");
        assert_eq!(r.window, Duration::from_secs(2));
        assert_eq!(
            (r.received_per_second, r.delivered_per_second),
            (15.0, 10.0)
        );
    }

    /// Scenario: the two health gauges for a persistent and an in-memory queue, before and
    /// after the first success.
    /// Guarantees: last-success is absent before the first success and then the Unix time of
    /// it; free bytes appear for the persistent queue only.
    #[test]
    fn health_gauges_appear_only_with_a_value() {
        let m = Metrics::new().expect("metrics");
        let disk = watched(Some(PathBuf::from("/queue")));
        let memory = WatchedQueue {
            exporter: "otlp/mem".into(),
            ..watched(None)
        };
        disk.set_free_bytes(Some(4096));
        memory.set_free_bytes(Some(4096));
        m.observe_watched(&disk);
        m.observe_watched(&memory);
        let text = m.render();
        assert!(
            !text.contains("otelspool_exporter_last_success_timestamp_seconds{"),
            "{text}"
        );
        assert!(text.contains(
            r#"otelspool_queue_filesystem_free_bytes{data_type="logs",exporter="otlp"} 4096"#
        ));
        assert!(!text.contains(r#"otelspool_queue_filesystem_free_bytes{exporter="otlp/mem""#));
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        disk.status.succeeded(at, 1, 0, "");
        m.observe_watched(&disk);
        assert!(m.render().contains(
            r#"otelspool_exporter_last_success_timestamp_seconds{data_type="logs",exporter="otlp"} 1700000000"#
        ));
    }
}
