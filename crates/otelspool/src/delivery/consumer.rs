//! The queue consumers: the loop that reads a batch from an exporter's durable queue, sends
//! it, and acknowledges it only once the backend accepted it; on a retryable failure puts it
//! back and waits; on a permanent one isolates the bad request and dead-letters it. Each
//! attempt's outcome is recorded once per batch in the queue's [`DeliveryStatus`].

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime};

use otelspool_queue::{BatchLimits, Entry, Queue};
use tokio_util::sync::CancellationToken;

use super::backoff::BackoffSettings;
use super::batch::concat;
use super::dead_letter::DeadLetter;
use super::probe_gate::ProbeGate;
use super::status::{DeliveryStatus, FailureKind};
use crate::exporters::{Accepted, ExportError, Exporter, RetryAction};
use crate::ledger::JobLedger;
use crate::pipeline::Signal;
use crate::telemetry::{Metrics, REPEAT_LOG_INTERVAL, RateLimitedLog};

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
    /// The queue's delivery status (last success, last error), shared with health and status.
    pub status: Arc<DeliveryStatus>,
    /// Cancelled at shutdown: stop waiting for retries.
    pub shutdown: CancellationToken,
    /// The job ledger and this queue's index in it, when the ledger follows this queue.
    pub ledger: Option<(Arc<JobLedger>, usize)>,
}

enum Attempt {
    Sent(Accepted),
    Retry(ExportError, Option<Duration>),
    Rejected(ExportError),
}

/// Starts `num_consumers` consumer tasks sharing one [`ProbeGate`], and so one backoff.
pub fn spawn_consumers(ctx: ConsumerContext) -> Vec<tokio::task::JoinHandle<()>> {
    let gate = Arc::new(ProbeGate::new(ctx.settings.backoff));
    (0..ctx.settings.num_consumers.max(1))
        .map(|_| {
            let (ctx, gate) = (ctx.clone(), Arc::clone(&gate));
            tokio::spawn(async move { consume(&ctx, &gate).await })
        })
        .collect()
}

/// One consumer: take a batch, send it, and on a retryable failure put it back.
///
/// Putting the batch back (instead of holding it through the backoff) keeps what consumers
/// hold to what is being sent at this moment, so that during an outage the backlog stays in
/// the queue, where `when_full: drop_oldest` can drop its oldest part and counts stay exact.
/// The wait before the next attempt happens at the gate, in [`ProbeGate::probe`].
async fn consume(ctx: &ConsumerContext, gate: &ProbeGate) {
    loop {
        // While failing, wait for the probe and the shared backoff; the probe is held through
        // the attempt.
        let probe = if gate.failing() {
            tokio::select! {
                guard = gate.probe() => guard,
                _ = ctx.shutdown.cancelled() => return,
            }
        } else {
            None
        };
        let Some(entries) = ctx.queue.next_batch(ctx.settings.limits).await else {
            return;
        };
        let ids: Vec<u64> = entries.iter().map(|e| e.id).collect();
        if probe.is_none() && gate.failing() {
            // Woken with data while another consumer's failure closed the gate: give it back
            // and queue for the probe.
            give_back(ctx, &entries).await;
            continue;
        }
        match attempt(ctx, &entries).await {
            Attempt::Sent(accepted) => {
                if let Some((failures, after)) = gate.succeeded() {
                    let not_logged = EXPORT_FAILURES.reset(&(ctx.exporter_id.clone(), ctx.signal));
                    tracing::info!(exporter = %ctx.exporter_id, signal = %ctx.signal, failures, ?after, not_logged, "export succeeded after retries");
                }
                sent(ctx, &entries, &ids, accepted).await;
            }
            Attempt::Rejected(err) => reject(ctx, gate, entries, err).await,
            Attempt::Retry(err, hint) => {
                let (expired, fresh) = split_expired(ctx, entries);
                if !fresh.is_empty() {
                    give_back(ctx, &fresh).await;
                    retry_later(ctx, gate, probe.is_some(), &err, hint);
                }
                if let Some((expired, max)) = expired {
                    let reason = format!(
                        "{} (gave up: queued longer than max_elapsed_time {max:?})",
                        err.reason
                    );
                    let err = ExportError::permanent(reason);
                    dead_letter(ctx, &expired, &err, FailureKind::Expired).await;
                }
            }
        }
    }
}

/// Puts entries back in the queue. With the job ledger, through `release_entries`, so that
/// the ledger learns which of them `drop_oldest` dropped meanwhile (off the async workers: it
/// may write the ledger's snapshot).
async fn give_back(ctx: &ConsumerContext, entries: &[Entry]) {
    if ctx.ledger.is_some() {
        let (queue, entries) = (ctx.queue.clone(), entries.to_vec());
        let _ = tokio::task::spawn_blocking(move || queue.release_entries(&entries)).await;
    } else {
        let ids: Vec<u64> = entries.iter().map(|e| e.id).collect();
        ctx.queue.release(&ids);
    }
}

/// Retryable export failures are logged once per minute per queue, with the count not logged.
static EXPORT_FAILURES: LazyLock<RateLimitedLog<(String, Signal)>> =
    LazyLock::new(|| RateLimitedLog::new(REPEAT_LOG_INTERVAL));

/// A retryable failure of a batch already given back to the queue: counted, logged (the
/// first, then once a minute) and recorded at the gate, which spaces the next probe.
fn retry_later(
    ctx: &ConsumerContext,
    gate: &ProbeGate,
    probing: bool,
    err: &ExportError,
    hint: Option<Duration>,
) {
    ctx.metrics.exporter_retry(&ctx.exporter_id, ctx.signal);
    ctx.status.retrying(SystemTime::now(), &err.reason);
    let f = gate.failed(probing, hint);
    if let Some(not_logged) = EXPORT_FAILURES.event((ctx.exporter_id.clone(), ctx.signal)) {
        tracing::warn!(exporter = %ctx.exporter_id, signal = %ctx.signal, error = %err, failures = f.failures, failing_for = ?f.failing_for, retry_in = ?f.retry_in, not_logged, "export failed; data stays queued and will be retried");
    }
}

/// One export call for a batch.
async fn attempt(ctx: &ConsumerContext, entries: &[Entry]) -> Attempt {
    let started = Instant::now();
    ctx.metrics.exporter_in_flight(&ctx.exporter_id, 1.0);
    let result = ctx.exporter.export(ctx.signal, concat(entries)).await;
    ctx.metrics.exporter_in_flight(&ctx.exporter_id, -1.0);
    let took = started.elapsed();
    ctx.metrics.send_latency(&ctx.exporter_id, ctx.signal, took);
    ctx.status.attempted(took);
    match result {
        Ok(accepted) => Attempt::Sent(accepted),
        Err(err) => match err.action {
            RetryAction::Retry { after } if ctx.settings.retry => Attempt::Retry(err, after),
            RetryAction::Retry { .. } => Attempt::Rejected(ExportError {
                reason: format!("{} (retry_on_failure is disabled)", err.reason),
                ..err
            }),
            RetryAction::DontRetry => Attempt::Rejected(err),
        },
    }
}

/// With a user-set `max_elapsed_time`: splits off the entries queued longer than that (and
/// the limit), to be given up on; the rest are retried.
fn split_expired(
    ctx: &ConsumerContext,
    entries: Vec<Entry>,
) -> (Option<(Vec<Entry>, Duration)>, Vec<Entry>) {
    let Some(max) = ctx.settings.max_elapsed else {
        return (None, entries);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (expired, fresh): (Vec<Entry>, Vec<Entry>) = entries
        .into_iter()
        .partition(|e| now.saturating_sub(Duration::from_nanos(e.appended_at)) >= max);
    ((!expired.is_empty()).then_some((expired, max)), fresh)
}

/// Partial-success rejections are logged once per minute per queue, with the count not logged.
static PARTIAL_REJECTIONS: LazyLock<RateLimitedLog<(String, Signal)>> =
    LazyLock::new(|| RateLimitedLog::new(REPEAT_LOG_INTERVAL));

/// A batch the backend accepted: counted as sent, except the items it rejected through
/// partial success (counted as rejected and failed, not resent, and logged rate-limited with
/// the backend's message, as is a warning it attached), and acknowledged.
async fn sent(ctx: &ConsumerContext, entries: &[Entry], ids: &[u64], accepted: Accepted) {
    let items: u64 = entries.iter().map(|e| u64::from(e.items)).sum();
    let rejected = accepted.rejected_items.min(items);
    ctx.status.succeeded(
        SystemTime::now(),
        items - rejected,
        rejected,
        &accepted.message,
    );
    ctx.metrics
        .exporter_sent(&ctx.exporter_id, ctx.signal, items - rejected);
    if rejected > 0 {
        ctx.metrics
            .exporter_rejected(&ctx.exporter_id, ctx.signal, rejected);
    }
    if (rejected > 0 || !accepted.message.is_empty())
        && let Some(not_logged) = PARTIAL_REJECTIONS.event((ctx.exporter_id.clone(), ctx.signal))
    {
        tracing::warn!(exporter = %ctx.exporter_id, signal = %ctx.signal, rejected, backend_message = %accepted.message, not_logged, "backend accepted an export but rejected items in it (partial success); they are not resent; all are counted in otelspool_exporter_rejected_*");
    }
    if let Some((ledger, q)) = &ctx.ledger {
        if rejected == 0 {
            ledger.delivered(*q, entries, 0);
        } else {
            // A partial success writes the ledger's snapshot: off the async workers.
            let (ledger, q, entries) = (Arc::clone(ledger), *q, entries.to_vec());
            let _ =
                tokio::task::spawn_blocking(move || ledger.delivered(q, &entries, rejected)).await;
        }
    }
    ctx.queue.ack(ids);
}

/// A permanent rejection: a merged batch is resent entry by entry to isolate the bad one;
/// what the backend still rejects goes to the dead-letter file.
async fn reject(ctx: &ConsumerContext, gate: &ProbeGate, entries: Vec<Entry>, err: ExportError) {
    if entries.len() == 1 {
        return dead_letter(ctx, &entries, &err, FailureKind::Rejected).await;
    }
    tracing::warn!(exporter = %ctx.exporter_id, signal = %ctx.signal, error = %err, entries = entries.len(), "backend rejected a merged batch permanently; resending its requests one by one to isolate the bad one");
    for e in entries {
        let one = [e];
        let ids = [one[0].id];
        match attempt(ctx, &one).await {
            Attempt::Sent(accepted) => sent(ctx, &one, &ids, accepted).await,
            Attempt::Rejected(err) => dead_letter(ctx, &one, &err, FailureKind::Rejected).await,
            // Fine on its own, failing now for a passing reason: back to the queue.
            Attempt::Retry(err, hint) => {
                give_back(ctx, &one).await;
                retry_later(ctx, gate, false, &err, hint);
            }
        }
    }
}

/// Dead-lettered batches are logged once per minute per queue and outcome (written or not).
static DEAD_LETTERS: LazyLock<RateLimitedLog<(String, Signal, bool)>> =
    LazyLock::new(|| RateLimitedLog::new(REPEAT_LOG_INTERVAL));

/// Gives up on `entries`: counted as failed, kept in the dead-letter file (one record), logged
/// with the reason (rate-limited), recorded in the status as `kind`, and acknowledged.
async fn dead_letter(
    ctx: &ConsumerContext,
    entries: &[Entry],
    err: &ExportError,
    kind: FailureKind,
) {
    let items: u64 = entries.iter().map(|e| u64::from(e.items)).sum();
    ctx.status
        .gave_up(SystemTime::now(), items, kind, &err.reason);
    let ids: Vec<u64> = entries.iter().map(|e| e.id).collect();
    ctx.metrics
        .exporter_dead_lettered(&ctx.exporter_id, ctx.signal, items);
    match ctx.dead_letter.write(concat(entries)).await {
        Ok(()) => {
            if let Some(not_logged) =
                DEAD_LETTERS.event((ctx.exporter_id.clone(), ctx.signal, true))
            {
                tracing::error!(exporter = %ctx.exporter_id, signal = %ctx.signal, items, error = %err, file = ?ctx.dead_letter.path(), not_logged, "gave up on data (rejected permanently or expired); kept it in the dead-letter file")
            }
        }
        Err(e) => {
            if let Some(not_logged) =
                DEAD_LETTERS.event((ctx.exporter_id.clone(), ctx.signal, false))
            {
                tracing::error!(exporter = %ctx.exporter_id, signal = %ctx.signal, items, error = %err, dead_letter_error = %e, not_logged, "gave up on data (rejected permanently or expired) and the dead-letter file could not be written; the data is dropped")
            }
        }
    }
    if let Some((ledger, q)) = &ctx.ledger {
        // Writes the ledger's snapshot before the queue may forget the records: off the async
        // workers.
        let expired = kind == FailureKind::Expired;
        let (ledger, q, entries) = (Arc::clone(ledger), *q, entries.to_vec());
        let _ = tokio::task::spawn_blocking(move || ledger.gave_up(q, &entries, expired)).await;
    }
    ctx.queue.ack(&ids);
}
