//! The queue consumers: read batches from an exporter's durable queue, send them, and
//! acknowledge them only once the backend accepted them.
//!
//! - Batching (`batch` processor settings) happens here, on read: queued requests of one signal
//!   are merged by concatenating their protobuf bytes, which protobuf defines as merging the
//!   repeated `resource_*` fields. No decode, no re-encode, nothing split.
//! - Retryable failures are retried with backoff for as long as it takes: no time cutoff unless
//!   the user set `max_elapsed_time` (otelcol drops after 300 s by default).
//! - A permanent failure of a merged batch is retried entry by entry, so one bad request does
//!   not take good ones with it; what the backend still rejects goes to the dead-letter file,
//!   is counted in `otelcol_exporter_send_failed_*` and logged with the reason.
//! - On shutdown, a batch waiting for a retry goes back to the queue, which keeps it on disk.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use otelspool_queue::{BatchLimits, Entry, Queue};
use tokio_util::sync::CancellationToken;

use super::dead_letter::DeadLetter;
use super::{
    Accepted, Backoff, BackoffSettings, DebugExporter, ExportError, OtlpGrpcExporter,
    OtlpHttpExporter, RetryAction,
};
use crate::pipeline::Signal;
use crate::telemetry::Metrics;

/// A configured exporter: one closed set, one `match`.
#[derive(Debug, Clone)]
pub enum Exporter {
    /// `otlp`.
    OtlpGrpc(OtlpGrpcExporter),
    /// `otlphttp`.
    OtlpHttp(OtlpHttpExporter),
    /// `debug`.
    Debug(DebugExporter),
}

impl Exporter {
    /// Sends one encoded request.
    pub async fn export(&self, signal: Signal, body: Bytes) -> Result<Accepted, ExportError> {
        match self {
            Exporter::OtlpGrpc(e) => e.export(signal, body).await,
            Exporter::OtlpHttp(e) => e.export(signal, body).await,
            Exporter::Debug(e) => Ok(e.export(signal, &body)),
        }
    }
}

/// How the consumers of one queue behave.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Batch shape (from the pipeline's `batch` processor, or one request at a time).
    pub limits: BatchLimits,
    /// Retry back-off.
    pub backoff: BackoffSettings,
    /// `retry_on_failure.enabled`.
    pub retry: bool,
    /// Give up after this long (only when the user set `max_elapsed_time` to a non-zero value).
    pub max_elapsed: Option<Duration>,
    /// `sending_queue.num_consumers`.
    pub num_consumers: usize,
}

/// Everything one consumer needs.
#[derive(Debug, Clone)]
pub struct ConsumerContext {
    /// Exporter id, the metric label.
    pub exporter_id: String,
    /// The signal of the queue.
    pub signal: Signal,
    /// The exporter.
    pub exporter: Arc<Exporter>,
    /// The queue.
    pub queue: Queue,
    /// Where permanent rejections go.
    pub dead_letter: DeadLetter,
    /// Behaviour.
    pub settings: ConsumerSettings,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Cancelled at shutdown: stop waiting for retries.
    pub shutdown: CancellationToken,
}

enum Outcome {
    Sent(Accepted),
    Rejected(ExportError),
    Shutdown,
}

/// Starts `num_consumers` consumer tasks.
pub fn spawn_consumers(ctx: ConsumerContext) -> Vec<tokio::task::JoinHandle<()>> {
    (0..ctx.settings.num_consumers.max(1))
        .map(|_| {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                while let Some(entries) = ctx.queue.next_batch(ctx.settings.limits).await {
                    deliver(&ctx, entries).await;
                }
            })
        })
        .collect()
}

fn concat(entries: &[Entry]) -> Bytes {
    if let [one] = entries {
        return one.payload.clone();
    }
    let mut buf = BytesMut::with_capacity(entries.iter().map(|e| e.payload.len()).sum());
    for e in entries {
        buf.extend_from_slice(&e.payload);
    }
    buf.freeze()
}

fn deliver(ctx: &ConsumerContext, entries: Vec<Entry>) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let ids: Vec<u64> = entries.iter().map(|e| e.id).collect();
        let items: u64 = entries.iter().map(|e| u64::from(e.items)).sum();
        let body = concat(&entries);
        match send_with_retry(ctx, body.clone()).await {
            Outcome::Sent(accepted) => {
                let rejected = accepted.rejected_items.min(items);
                ctx.metrics
                    .exporter_sent(&ctx.exporter_id, ctx.signal, items - rejected);
                if rejected > 0 {
                    ctx.metrics
                        .exporter_send_failed(&ctx.exporter_id, ctx.signal, rejected);
                    tracing::warn!(exporter = %ctx.exporter_id, signal = %ctx.signal, rejected, message = %accepted.message, "backend accepted the batch but rejected some items (partial success); they cannot be resent");
                }
                ctx.queue.ack(&ids);
            }
            Outcome::Rejected(err) if entries.len() > 1 => {
                tracing::warn!(exporter = %ctx.exporter_id, signal = %ctx.signal, error = %err, entries = entries.len(), "backend rejected a merged batch permanently; resending its requests one by one to isolate the bad one");
                for e in entries {
                    deliver(ctx, vec![e]).await;
                }
            }
            Outcome::Rejected(err) => {
                ctx.metrics
                    .exporter_send_failed(&ctx.exporter_id, ctx.signal, items);
                match ctx.dead_letter.write(body).await {
                    Ok(()) => {
                        tracing::error!(exporter = %ctx.exporter_id, signal = %ctx.signal, items, error = %err, file = ?ctx.dead_letter.path(), "backend rejected data permanently; kept it in the dead-letter file")
                    }
                    Err(e) => {
                        tracing::error!(exporter = %ctx.exporter_id, signal = %ctx.signal, items, error = %err, dead_letter_error = %e, "backend rejected data permanently and the dead-letter file could not be written; the data is dropped")
                    }
                }
                ctx.queue.ack(&ids);
            }
            Outcome::Shutdown => ctx.queue.release(&ids),
        }
    })
}

async fn send_with_retry(ctx: &ConsumerContext, body: Bytes) -> Outcome {
    let started = Instant::now();
    let mut backoff = Backoff::new(ctx.settings.backoff);
    let mut failures = 0u64;
    loop {
        let attempt = Instant::now();
        ctx.metrics.exporter_in_flight(&ctx.exporter_id, 1.0);
        let result = ctx.exporter.export(ctx.signal, body.clone()).await;
        ctx.metrics.exporter_in_flight(&ctx.exporter_id, -1.0);
        ctx.metrics
            .send_latency(&ctx.exporter_id, ctx.signal, attempt.elapsed());
        let err = match result {
            Ok(accepted) => {
                if failures > 0 {
                    tracing::info!(exporter = %ctx.exporter_id, signal = %ctx.signal, failures, after = ?started.elapsed(), "export succeeded after retries");
                }
                return Outcome::Sent(accepted);
            }
            Err(e) => e,
        };
        let RetryAction::Retry { after } = err.action else {
            return Outcome::Rejected(err);
        };
        if !ctx.settings.retry {
            return Outcome::Rejected(ExportError {
                reason: format!("{} (retry_on_failure is disabled)", err.reason),
                ..err
            });
        }
        if let Some(max) = ctx.settings.max_elapsed
            && started.elapsed() >= max
        {
            return Outcome::Rejected(ExportError {
                reason: format!("{} (gave up after max_elapsed_time {max:?})", err.reason),
                ..err
            });
        }
        failures += 1;
        ctx.metrics.exporter_retry(&ctx.exporter_id, ctx.signal);
        let delay = backoff.next_delay(after);
        // Log the first failure and then at most about once a minute per consumer.
        if failures == 1
            || failures.is_power_of_two() && started.elapsed() > Duration::from_secs(60)
        {
            tracing::warn!(exporter = %ctx.exporter_id, signal = %ctx.signal, error = %err, failures, retry_in = ?delay, "export failed; data stays queued and will be retried");
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = ctx.shutdown.cancelled() => return Outcome::Shutdown,
        }
    }
}
