//! The delivery stage's log of partial-success rejections, in a test binary of its own: it
//! installs a `tracing` subscriber that captures every line, which must see no other test's
//! events.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use otelspool::delivery::spawn_consumers;
use otelspool_testkit::backend::Mode;
use tokio_util::sync::CancellationToken;

use support::{
    EXPORTER_ID, append_requests, context, fast_backoff, grpc_exporter, open_queue, settings,
    start_backend, wait_for,
};

/// A `tracing` writer collecting JSON log lines in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The WARN lines that carry a `rejected` field, as parsed JSON.
    fn rejection_warnings(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["level"] == "WARN" && !v["rejected"].is_null())
            .collect()
    }
}

/// The value of `<name>{exporter="otlp/test"}` in the metrics text.
fn metric(text: &str, name: &str) -> u64 {
    let prefix = format!("{name}{{exporter=\"{EXPORTER_ID}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or(0)
}

/// Scenario: six requests of 5 records are delivered one per export to a backend that reports
/// 2 items of every export rejected (`partial_success` with a message), all within a minute.
/// Guarantees: the counters are exact (18 sent, 12 rejected, 12 failed) but the stage logs one
/// warning in all (the exporter logs none of its own): the first rejection, with its count
/// (2), its batch count (1) and the backend's message; the rest waits for the next minute.
#[tokio::test]
async fn partial_success_is_logged_once_per_interval() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .init();

    let backend = start_backend(Mode::Partial(2)).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = open_queue(dir.path().join("queue"));
    append_requests(&queue, &["a", "b", "c", "d", "e", "f"], 5).await;
    let shutdown = CancellationToken::new();
    let ctx = context(
        grpc_exporter(backend.addr),
        queue.clone(),
        None,
        settings(1, fast_backoff(20, 200)),
        shutdown.clone(),
    );
    let metrics = Arc::clone(&ctx.metrics);
    let tasks = spawn_consumers(ctx);
    wait_for("the queue to drain", Duration::from_secs(20), || {
        queue.stats().entries == 0
    })
    .await;

    assert_eq!(backend.backend.stats().accepted_requests, 6);
    let text = metrics.render();
    assert_eq!(metric(&text, "otelcol_exporter_sent_log_records"), 18);
    assert_eq!(metric(&text, "otelspool_exporter_rejected_log_records"), 12);
    assert_eq!(
        metric(&text, "otelcol_exporter_send_failed_log_records"),
        12
    );
    let warnings = captured.rejection_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["rejected"], 2);
    assert_eq!(warnings[0]["batches"], 1);
    assert_eq!(warnings[0]["exporter"], EXPORTER_ID);
    assert_eq!(
        warnings[0]["backend_message"],
        "test backend mode: partial:2"
    );

    shutdown.cancel();
    queue.close();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(20), t)
            .await
            .unwrap()
            .unwrap();
    }
}
