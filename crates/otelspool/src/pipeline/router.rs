//! From a receiver to the queues: run a pipeline's processors, then append to every exporter
//! queue of every pipeline the receiver feeds. The client is answered OK only when all those
//! appends are durable.

use std::sync::{Arc, LazyLock};

use futures::future::join_all;
use otelspool_queue::{AppendError, Queue};

use super::{Payload, Refusal, Signal};
use crate::ledger::JobLedger;
use crate::ledger::tally::TallyVisitor;
use crate::processors::ProcessorChain;
use crate::telemetry::{Metrics, REPEAT_LOG_INTERVAL, RateLimitedLog};

/// Failed queue writes are logged once per minute per exporter and reason (`queue_full`,
/// `storage_error`, ...), with the count not logged.
static QUEUE_WRITE_FAILURES: LazyLock<RateLimitedLog<(String, &'static str)>> =
    LazyLock::new(|| RateLimitedLog::new(REPEAT_LOG_INTERVAL));

/// One exporter's queue for one signal.
#[derive(Debug, Clone)]
pub struct ExporterQueue {
    /// The exporter id (`otlp/dash0`), the `exporter` metric label.
    pub exporter: String,
    /// The signal the queue holds.
    pub signal: Signal,
    /// The durable queue.
    pub queue: Queue,
    /// The job ledger and this queue's index in it, when the ledger follows this queue: each
    /// append is reported to it with the request's job counts.
    pub ledger: Option<(Arc<JobLedger>, usize)>,
}

/// A `service.pipelines` entry at run time.
#[derive(Debug)]
pub struct Pipeline {
    /// The pipeline id (`logs`, `logs/jobs`).
    pub id: String,
    /// Its processors, in order.
    pub processors: ProcessorChain,
    /// Its exporters' queues.
    pub exporters: Vec<ExporterQueue>,
    /// Where drops and failures are counted.
    pub metrics: Arc<Metrics>,
}

impl Pipeline {
    /// Runs the processors and appends the result to every exporter queue.
    pub async fn consume(&self, payload: Payload) -> Result<(), Refusal> {
        let mut payload = self.processors.apply(payload)?;
        let appends = self.exporters.iter().map(|e| {
            let body = payload.body.clone();
            async move { (e, e.queue.append(payload.items as u32, body).await) }
        });
        let mut refusal = None;
        for (e, result) in join_all(appends).await {
            let err = match result {
                Ok(id) => {
                    if let Some((ledger, q)) = &e.ledger {
                        let tally = payload.jobs.take().or_else(|| {
                            TallyVisitor::tally_of(ledger.keys(), payload.signal, &payload.body)
                        });
                        if let Some(t) = tally {
                            ledger.queued(*q, id, t);
                        }
                    }
                    continue;
                }
                Err(err) => err,
            };
            self.metrics
                .enqueue_failed(&e.exporter, payload.signal, payload.items);
            let r = match err {
                AppendError::Full { reason, .. } => Refusal::QueueFull(reason),
                AppendError::Io(reason) => Refusal::StorageFailed(reason),
                AppendError::Closed => Refusal::ShuttingDown,
                AppendError::TooLarge(n) => {
                    Refusal::Invalid(format!("request of {n} bytes is too large to queue"))
                }
            };
            if let Some(not_logged) = QUEUE_WRITE_FAILURES.event((e.exporter.clone(), r.reason())) {
                tracing::warn!(exporter = %e.exporter, pipeline = %self.id, error = %r, not_logged, "could not queue data; the client is told to retry");
            }
            refusal = Some(r);
        }
        refusal.map_or(Ok(()), Err)
    }
}

/// What one receiver feeds: the pipelines of each signal that list it.
#[derive(Debug, Default, Clone)]
pub struct Router {
    by_signal: [Vec<Arc<Pipeline>>; Signal::COUNT],
    /// The job ledger, with the signals whose tracked queue this router feeds.
    ledger: Option<(Arc<JobLedger>, [bool; Signal::COUNT])>,
}

impl Router {
    /// Adds a pipeline of `signal`.
    pub fn add(&mut self, signal: Signal, pipeline: Arc<Pipeline>) {
        self.by_signal[signal.index()].push(pipeline);
    }

    /// Counts acknowledged records in `ledger` for the signals whose tracked queue (see
    /// `ledger`'s module doc) one of this router's pipelines feeds.
    pub fn set_ledger(&mut self, ledger: Arc<JobLedger>) {
        let mut feeds = [false; Signal::COUNT];
        for s in Signal::ALL {
            feeds[s.index()] = self.by_signal[s.index()].iter().any(|p| {
                p.exporters.iter().any(|e| {
                    ledger
                        .tracked_index(&format!("{}/{}", e.exporter, s))
                        .is_some()
                })
            });
        }
        self.ledger = Some((ledger, feeds));
    }

    /// The job ledger's keys, when this router counts jobs of `signal` (for the receive walk).
    pub fn job_keys(&self, signal: Signal) -> Option<&Arc<[Box<str>]>> {
        let (ledger, feeds) = self.ledger.as_ref()?;
        feeds[signal.index()].then(|| ledger.keys())
    }

    /// True when some pipeline takes `signal`.
    pub fn accepts(&self, signal: Signal) -> bool {
        !self.by_signal[signal.index()].is_empty()
    }

    /// Admission before decoding: `Err` while any memory limiter on the way refuses.
    pub fn admit(&self, signal: Signal) -> Result<(), Refusal> {
        self.by_signal[signal.index()]
            .iter()
            .try_for_each(|p| p.processors.admit())
    }

    /// The lowest soft memory limit over every pipeline this router feeds.
    pub fn memory_soft_limit(&self) -> Option<u64> {
        self.by_signal
            .iter()
            .flatten()
            .filter_map(|p| p.processors.memory_soft_limit())
            .min()
    }

    /// Sends the payload into every pipeline of its signal.
    pub async fn consume(&self, payload: Payload) -> Result<(), Refusal> {
        let pipelines = &self.by_signal[payload.signal.index()];
        match pipelines.as_slice() {
            [] => Err(Refusal::Invalid(format!(
                "no {} pipeline takes this receiver's data",
                payload.signal
            ))),
            [one] => one.consume(payload).await,
            many => {
                let results = join_all(many.iter().map(|p| p.consume(payload.clone()))).await;
                results
                    .into_iter()
                    .collect::<Result<Vec<()>, _>>()
                    .map(|_| ())
            }
        }
    }
}
