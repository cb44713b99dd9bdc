//! The consumers record each export's outcome in the queue's delivery status (what health,
//! `/status.json` and the last-success gauge read), against the testkit backend over real
//! gRPC on 127.0.0.1.

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use otelspool::delivery::{DeliveryStatus, FailureKind, spawn_consumers};
use otelspool_testkit::backend::Mode;
use tokio_util::sync::CancellationToken;

use support::{append_requests, context, fast_backoff, grpc_exporter, open_queue, settings};
use support::{start_backend, wait_for};

const DEADLINE: Duration = Duration::from_secs(20);

/// Scenario: a request the backend rejects permanently (INVALID_ARGUMENT), then one while it
/// is unavailable, then it accepts; one consumer.
/// Guarantees: the rejection is recorded as `rejected` with its 2 records dead-lettered; the
/// outage as `retryable` retries with consecutive failures; the success sets the last
/// success, clears the consecutive failures, counts the 3 delivered records and keeps the
/// last error; every export call counts as an attempt with a latency sample.
#[tokio::test]
async fn outcomes_are_recorded_per_batch() {
    let backend = start_backend(Mode::Invalid).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let queue = open_queue(dir.path().join("queue"));
    let shutdown = CancellationToken::new();
    let mut ctx = context(
        grpc_exporter(backend.addr),
        queue.clone(),
        Some(dir.path().join("dead-letter.bin")),
        settings(1, fast_backoff(20, 100)),
        shutdown.clone(),
    );
    let status = Arc::new(DeliveryStatus::default());
    ctx.status = Arc::clone(&status);
    let tasks = spawn_consumers(ctx);

    append_requests(&queue, &["bad"], 2).await;
    wait_for("the rejection", DEADLINE, || {
        status.snapshot().dead_lettered_items == 2
    })
    .await;
    let s = status.snapshot();
    let e = s.last_error.clone().expect("last error");
    assert_eq!(e.kind, FailureKind::Rejected);
    assert_eq!((s.last_success, s.consecutive_failures), (None, 1));

    backend.backend.set_mode(Mode::Unavailable);
    append_requests(&queue, &["later"], 3).await;
    wait_for("two retries", DEADLINE, || status.snapshot().retries >= 2).await;
    let s = status.snapshot();
    assert_eq!(
        s.last_error.as_ref().expect("error").kind,
        FailureKind::Retryable
    );
    assert!(s.consecutive_failures >= 3, "{s:?}");

    let before = SystemTime::now();
    backend.backend.set_mode(Mode::Ok);
    wait_for("the delivery", DEADLINE, || {
        status.snapshot().delivered_items == 3
    })
    .await;
    let s = status.snapshot();
    assert!(s.last_success.is_some_and(|t| t >= before), "{s:?}");
    assert_eq!(s.consecutive_failures, 0);
    assert_eq!(
        s.last_error.as_ref().expect("kept").kind,
        FailureKind::Retryable
    );
    assert_eq!(s.attempts, 1 + s.retries + 1, "{s:?}");
    assert_eq!(s.latency.expect("latency").samples as u64, s.attempts);

    shutdown.cancel();
    queue.close();
    for t in tasks {
        t.await.expect("consumer");
    }
}
