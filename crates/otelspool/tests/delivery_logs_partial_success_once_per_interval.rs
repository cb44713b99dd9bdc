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
/// 2 items of every export rejected (`partial_success` with a message), within a second; the
/// clock then moves on 61 seconds and one more request is delivered.
/// Guarantees: the counters are exact (21 sent, 14 rejected, 14 failed) but the stage logs one
/// warning per minute in all (the exporter logs none of its own): the first rejection at once
/// (2 items, nothing skipped, the backend's message), then, after the minute, one line saying
/// that the 5 rejecting exports in between were not logged.
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
    let drained = || queue.stats().entries == 0;
    wait_for("the queue to drain", Duration::from_secs(20), drained).await;
    let first = captured.rejection_warnings();

    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(61)).await;
    tokio::time::resume();
    append_requests(&queue, &["g"], 5).await;
    wait_for("the last request", Duration::from_secs(20), || {
        drained() && backend.backend.stats().accepted_requests == 7
    })
    .await;

    let text = metrics.render();
    assert_eq!(metric(&text, "otelcol_exporter_sent_log_records"), 21);
    assert_eq!(metric(&text, "otelspool_exporter_rejected_log_records"), 14);
    assert_eq!(
        metric(&text, "otelcol_exporter_send_failed_log_records"),
        14
    );
    assert_eq!(first.len(), 1, "{first:?}");
    let warnings = captured.rejection_warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    for (w, skipped) in warnings.iter().zip([0, 5]) {
        assert_eq!(w["rejected"], 2, "{w}");
        assert_eq!(w["not_logged"], skipped, "{w}");
        assert_eq!(w["exporter"], EXPORTER_ID, "{w}");
        assert_eq!(w["backend_message"], "test backend mode: partial:2", "{w}");
    }

    shutdown.cancel();
    queue.close();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(20), t)
            .await
            .unwrap()
            .unwrap();
    }
}
