//! Component tests of the delivery stage (the queue consumers) against the testkit's checking
//! backend over real gRPC on 127.0.0.1, with a real queue in a temporary folder: what the
//! backend sees, what the queue still holds, and what lands in the dead-letter file.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use otelspool::delivery::{ConsumerContext, read_dead_letters, spawn_consumers};
use otelspool::pipeline::{Decoded, Signal};
use otelspool::telemetry::Metrics;
use otelspool_queue::{BatchLimits, Queue};
use otelspool_testkit::backend::Mode;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use support::{
    EXPORTER_ID, TestBackend, append_requests, context, fast_backoff, grpc_exporter, open_queue,
    record, request, settings, start_backend, wait_for,
};

const DEADLINE: Duration = Duration::from_secs(20);

/// A running delivery stage: backend, queue, consumers.
struct Stage {
    backend: TestBackend,
    queue: Queue,
    dir: tempfile::TempDir,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// A backend in `mode` and an empty queue in a new folder.
async fn prepare(mode: Mode) -> (TestBackend, Queue, tempfile::TempDir) {
    let backend = start_backend(mode).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = open_queue(dir.path().join("queue"));
    (backend, queue, dir)
}

impl Stage {
    /// Starts the consumers with `configure` applied to the default context (one consumer,
    /// one request per export, 20 ms backoff doubling to 200 ms).
    fn start(
        (backend, queue, dir): (TestBackend, Queue, tempfile::TempDir),
        configure: impl FnOnce(&mut ConsumerContext),
    ) -> Stage {
        let shutdown = CancellationToken::new();
        let mut ctx = context(
            grpc_exporter(backend.addr),
            queue.clone(),
            Some(dir.path().join("dead-letter.bin")),
            settings(1, fast_backoff(20, 200)),
            shutdown.clone(),
        );
        configure(&mut ctx);
        let metrics = Arc::clone(&ctx.metrics);
        let tasks = spawn_consumers(ctx);
        Stage {
            backend,
            queue,
            dir,
            metrics,
            shutdown,
            tasks,
        }
    }

    async fn drained(&self) {
        wait_for("the queue to drain", DEADLINE, || {
            self.queue.stats().entries == 0
        })
        .await;
    }

    fn dead_letters(&self) -> Vec<bytes::Bytes> {
        let path = self.dir.path().join("dead-letter.bin");
        read_dead_letters(&std::fs::read(path).unwrap_or_default())
    }

    /// The value of `<name>{exporter="otlp/test"}` in the metrics text.
    fn metric(&self, name: &str) -> u64 {
        let prefix = format!("{name}{{exporter=\"{EXPORTER_ID}\"}} ");
        self.metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
            .unwrap_or(0)
    }

    async fn stop(self) -> (TestBackend, tempfile::TempDir) {
        self.shutdown.cancel();
        self.queue.close();
        for t in self.tasks {
            tokio::time::timeout(DEADLINE, t).await.unwrap().unwrap();
        }
        let queue = self.queue;
        tokio::task::spawn_blocking(move || queue.shutdown())
            .await
            .unwrap();
        (self.backend, self.dir)
    }
}

fn limits(min_items: u64, linger_ms: u64, max_items: u64, max_bytes: u64) -> BatchLimits {
    BatchLimits {
        min_items,
        linger: Duration::from_millis(linger_ms),
        max_items,
        max_bytes,
    }
}

/// Scenario: ten requests of 3 log records are queued; the consumer reads with
/// `min_items: 5`, `max_items: 9` and a 200 ms linger.
/// Guarantees: batches are merged on read up to `max_items` (three requests, 9 records, per
/// export) and the remainder, below `min_items`, is sent once it has lingered: the backend sees
/// exports of 9, 9, 9 and 3 records, each record once.
#[tokio::test]
async fn batches_are_merged_on_read_up_to_max_items_and_the_rest_sent_after_linger() {
    let parts = prepare(Mode::Ok).await;
    let names: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    append_requests(&parts.1, &names, 3).await;
    let stage = Stage::start(parts, |c| c.settings.limits = limits(5, 200, 9, u64::MAX));
    stage.drained().await;

    let b = &stage.backend.backend;
    assert_eq!(b.request_log().accepted_items, vec![9, 9, 9, 3]);
    assert_eq!(b.stats().unique_log_records, 30);
    assert_eq!(b.stats().duplicate_log_records, 0);
    stage.stop().await;
}

/// Scenario: six requests of the same size are queued; the consumer reads with `max_bytes`
/// of two and a half requests and no item limit.
/// Guarantees: `max_bytes` caps what one export carries: the backend sees three exports of two
/// requests (6 records) each.
#[tokio::test]
async fn max_bytes_caps_a_merged_batch() {
    let parts = prepare(Mode::Ok).await;
    append_requests(&parts.1, &["a", "b", "c", "d", "e", "f"], 3).await;
    let one = request((0..3).map(|i| record(&format!("a-{i}"))).collect()).len() as u64;
    let stage = Stage::start(parts, |c| c.settings.limits = limits(1, 0, 0, one * 5 / 2));
    stage.drained().await;

    assert_eq!(
        stage.backend.backend.request_log().accepted_items,
        vec![6, 6, 6]
    );
    stage.stop().await;
}

/// Scenario: twenty requests are queued for three consumers while the backend is unavailable;
/// after it refused several exports it recovers.
/// Guarantees: retryable failures are retried until the backend accepts; then the queue is
/// empty and the backend holds every record exactly once (a refused export records nothing,
/// so here at-least-once delivery is exactly once).
#[tokio::test]
async fn retries_until_the_backend_recovers_then_acknowledges() {
    let parts = prepare(Mode::Unavailable).await;
    let names: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    append_requests(&parts.1, &names, 2).await;
    let stage = Stage::start(parts, |c| c.settings.num_consumers = 3);
    let b = Arc::clone(&stage.backend.backend);
    wait_for("five refusals", DEADLINE, || {
        b.stats().refused_unavailable >= 5
    })
    .await;
    assert_eq!(stage.queue.stats().entries, 20);

    b.set_mode(Mode::Ok);
    stage.drained().await;
    let stats = b.stats();
    assert_eq!(stats.unique_log_records, 40);
    assert_eq!(stats.duplicate_log_records, 0);
    assert_eq!(stage.metric("otelcol_exporter_sent_log_records"), 40);
    stage.stop().await;
}

/// Scenario: ten requests are queued for ten consumers while the backend is unavailable, with
/// a backoff of 50 ms doubling to 400 ms.
/// Guarantees: a failed batch goes back to the queue and, while the backend fails, one
/// consumer at a time probes it: after the first refusals, at every sample at most one entry is
/// handed out (in flight), and all ten stay queued.
#[tokio::test]
async fn while_failing_batches_go_back_to_the_queue_and_one_consumer_probes() {
    let parts = prepare(Mode::Unavailable).await;
    let names: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    append_requests(&parts.1, &names, 1).await;
    let stage = Stage::start(parts, |c| {
        c.settings.num_consumers = 10;
        c.settings.backoff = fast_backoff(50, 400);
    });
    let b = Arc::clone(&stage.backend.backend);
    wait_for("the first probe after the burst", DEADLINE, || {
        b.stats().refused_unavailable >= 12
    })
    .await;

    // Sample what is handed out through four more probes.
    let mut max_in_flight = 0;
    let until = tokio::time::Instant::now() + DEADLINE;
    while b.stats().refused_unavailable < 16 {
        assert!(tokio::time::Instant::now() < until, "probes stopped");
        let stats = stage.queue.stats();
        max_in_flight = max_in_flight.max(stats.in_flight);
        assert_eq!(stats.entries, 10);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(max_in_flight <= 1, "{max_in_flight} entries held at once");
    stage.stop().await;
}

/// Scenario: five requests are merged into one export; one carries a 3-byte trace id, which
/// the backend (mode `strict`) refuses permanently, with the whole request.
/// Guarantees: the merged batch is resent request by request: the four good ones are
/// delivered, the bad one alone is in the dead-letter file (byte for byte) and counted as
/// failed and dead-lettered, and the queue is empty.
#[tokio::test]
async fn a_permanent_rejection_of_a_merged_batch_dead_letters_only_the_bad_request() {
    let parts = prepare(Mode::Strict).await;
    let mut bad = record("bad-0");
    bad.trace_id = vec![1, 2, 3];
    let bad = request(vec![bad, record("bad-1")]);
    append_requests(&parts.1, &["a", "b"], 2).await;
    parts.1.append(2, bad.clone()).await.unwrap();
    append_requests(&parts.1, &["c", "d"], 2).await;
    let stage = Stage::start(parts, |c| c.settings.limits = limits(1, 0, 0, u64::MAX));
    stage.drained().await;

    let b = &stage.backend.backend;
    assert_eq!(b.stats().unique_log_records, 8);
    assert_eq!(
        b.stats().refused_invalid,
        2,
        "the merged batch and the bad one"
    );
    assert_eq!(b.request_log().accepted_items, vec![2, 2, 2, 2]);
    assert_eq!(stage.dead_letters(), vec![bad]);
    assert_eq!(stage.metric("otelcol_exporter_send_failed_log_records"), 2);
    assert_eq!(stage.metric("otelcol_exporter_sent_log_records"), 8);
    assert_eq!(
        stage.metric("otelspool_exporter_dead_lettered_log_records"),
        2
    );
    stage.stop().await;
}

/// Scenario: two requests are merged into one export while the backend is unavailable, with
/// `max_elapsed_time: 300ms`.
/// Guarantees: once they have been queued that long they are given up on: both are in the
/// dead-letter file, counted as failed and dead-lettered, and the queue is empty; the backend
/// got nothing.
#[tokio::test]
async fn max_elapsed_time_expiry_moves_a_merged_batch_to_the_dead_letter_file() {
    let parts = prepare(Mode::Unavailable).await;
    append_requests(&parts.1, &["a", "b"], 2).await;
    let stage = Stage::start(parts, |c| {
        c.settings.limits = limits(1, 0, 0, u64::MAX);
        c.settings.max_elapsed = Some(Duration::from_millis(300));
    });
    stage.drained().await;

    assert_eq!(stage.backend.backend.stats().accepted_requests, 0);
    let letters = stage.dead_letters();
    let records: u64 = letters
        .iter()
        .map(|l| Decoded::from_protobuf(Signal::Logs, l).unwrap().items())
        .sum();
    assert_eq!(records, 4, "{} dead letters", letters.len());
    assert_eq!(stage.metric("otelcol_exporter_send_failed_log_records"), 4);
    assert_eq!(
        stage.metric("otelspool_exporter_dead_lettered_log_records"),
        4
    );
    stage.stop().await;
}

/// Scenario: the backend accepts an export of 5 records but reports 2 rejected
/// (`partial_success`).
/// Guarantees: the export is acknowledged, not retried (the queue is empty, the backend got
/// one request), and counted as 3 sent and 2 failed, the 2 also as rejected (not as
/// dead-lettered).
#[tokio::test]
async fn partial_success_is_counted_and_acknowledged() {
    let parts = prepare(Mode::Partial(2)).await;
    append_requests(&parts.1, &["p"], 5).await;
    let stage = Stage::start(parts, |_| {});
    stage.drained().await;

    assert_eq!(stage.backend.backend.stats().requests, 1);
    assert_eq!(stage.metric("otelcol_exporter_sent_log_records"), 3);
    assert_eq!(stage.metric("otelcol_exporter_send_failed_log_records"), 2);
    assert_eq!(stage.metric("otelspool_exporter_rejected_log_records"), 2);
    assert_eq!(
        stage.metric("otelspool_exporter_dead_lettered_log_records"),
        0
    );
    stage.stop().await;
}

/// Scenario: five requests are queued while the backend is unavailable; the stage shuts down
/// mid-outage; the queue is reopened from its folder and delivered to a backend that is up.
/// Guarantees: shutdown stops the consumers promptly and leaves unsent data queued on disk:
/// the reopened queue holds all five requests and delivers all ten records.
#[tokio::test]
async fn shutdown_leaves_unsent_data_queued() {
    let parts = prepare(Mode::Unavailable).await;
    append_requests(&parts.1, &["a", "b", "c", "d", "e"], 2).await;
    let stage = Stage::start(parts, |c| c.settings.num_consumers = 4);
    let b = Arc::clone(&stage.backend.backend);
    wait_for("three refusals", DEADLINE, || {
        b.stats().refused_unavailable >= 3
    })
    .await;
    let (backend, dir) = stage.stop().await;
    drop(backend);

    let backend = start_backend(Mode::Ok).await;
    let queue = open_queue(dir.path().join("queue"));
    assert_eq!(queue.stats().entries, 5);
    let stage = Stage::start((backend, queue, dir), |_| {});
    stage.drained().await;
    assert_eq!(stage.backend.backend.stats().unique_log_records, 10);
    stage.stop().await;
}
