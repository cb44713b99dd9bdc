//! Component tests of the shared retry backoff: the consumers of one queue back off together
//! against the testkit backend (real gRPC on 127.0.0.1), on Tokio's paused clock so that an
//! outage of seconds takes no time and the spacing of attempts is exact.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::time::Duration;

use otelspool::delivery::spawn_consumers;
use otelspool_testkit::backend::Mode;
use tokio_util::sync::CancellationToken;

use support::{
    append_requests, context, fast_backoff, grpc_exporter, open_queue, settings, start_backend,
    wait_for,
};

const INITIAL_MS: u64 = 20;
const MAX_MS: u64 = 320;
const CONSUMERS: usize = 10;

/// The least gap before attempt `i + 1` that a single backoff of `INITIAL_MS` doubling to
/// `MAX_MS` allows: 20, 40, 80, 160, 320, 320, ... ms.
fn least_gap(i: usize) -> Duration {
    let ms = INITIAL_MS.saturating_mul(1 << i.min(16)).min(MAX_MS);
    Duration::from_millis(ms)
}

/// Scenario: the backend is unavailable for 3 s (paused clock) while one request is queued for
/// an exporter with `num_consumers: 10` and a backoff of 20 ms doubling to 320 ms, no jitter.
/// Guarantees: the ten consumers share one backoff: each attempt comes at least the shared
/// backoff after the previous one (20, 40, 80, 160, then 320 ms: the gaps reach
/// `max_interval`), so the backend sees at most 3 s / 320 ms + log2(320 / 20) + 2 attempts,
/// and at least the six it takes to reach `max_interval`.
#[tokio::test(start_paused = true)]
async fn backoff_grows_to_max_interval_across_consumers_during_an_outage() {
    let backend = start_backend(Mode::Unavailable).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = open_queue(dir.path().join("q"));
    append_requests(&queue, &["only"], 1).await;
    let shutdown = CancellationToken::new();
    let ctx = context(
        grpc_exporter(backend.addr),
        queue.clone(),
        None,
        settings(CONSUMERS, fast_backoff(INITIAL_MS, MAX_MS)),
        shutdown.clone(),
    );
    let tasks = spawn_consumers(ctx);

    // The outage: simulated time passes while the consumers retry.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let log = backend.backend.request_log();
    let attempts = log.arrivals.len() as u64;
    let bound = 3000 / MAX_MS + (MAX_MS / INITIAL_MS).ilog2() as u64 + 2;
    assert!(
        attempts <= bound,
        "{attempts} attempts in 3 s, more than {bound}: gaps {:?}",
        log.gaps()
    );
    assert!(attempts >= 6, "only {attempts} attempts: {:?}", log.gaps());
    for (i, gap) in log.gaps().into_iter().enumerate() {
        assert!(
            gap + Duration::from_millis(1) >= least_gap(i),
            "attempt {} came {gap:?} after the previous one, before the shared backoff of {:?}: {:?}",
            i + 2,
            least_gap(i),
            log.gaps()
        );
    }
    assert!(log.gaps().iter().any(|g| *g >= least_gap(16)));
    assert_eq!(queue.stats().entries, 1, "the request stays queued");

    shutdown.cancel();
    queue.close();
    for t in tasks {
        t.await.unwrap();
    }
}

/// Scenario: the backend throttles with `RESOURCE_EXHAUSTED` and a `RetryInfo` of 1 s for 5 s
/// (paused clock); the exporter has ten consumers and a 20 ms backoff.
/// Guarantees: the server's delay wins over the computed one for all consumers together: every
/// attempt comes at least 1 s after the previous one, so at most 6 attempts in 5 s.
#[tokio::test(start_paused = true)]
async fn server_retry_delay_spaces_all_consumers_attempts() {
    let backend = start_backend(Mode::ResourceExhausted).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = open_queue(dir.path().join("q"));
    append_requests(&queue, &["only"], 1).await;
    let shutdown = CancellationToken::new();
    let ctx = context(
        grpc_exporter(backend.addr),
        queue.clone(),
        None,
        settings(CONSUMERS, fast_backoff(INITIAL_MS, MAX_MS)),
        shutdown.clone(),
    );
    let tasks = spawn_consumers(ctx);

    tokio::time::sleep(Duration::from_secs(5)).await;

    let log = backend.backend.request_log();
    assert!(log.arrivals.len() >= 2, "{:?}", log.gaps());
    assert!(log.arrivals.len() <= 6, "{:?}", log.gaps());
    for gap in log.gaps() {
        assert!(gap >= Duration::from_secs(1), "{:?}", log.gaps());
    }

    shutdown.cancel();
    queue.close();
    for t in tasks {
        t.await.unwrap();
    }
}

/// Scenario: after an outage long enough for the backoff to reach 320 ms, the backend recovers
/// and the queue drains; then it fails again for a new request.
/// Guarantees: the success reset the shared backoff: the second outage's first retry comes
/// after `initial_interval` (20 ms), not `max_interval`.
#[tokio::test(start_paused = true)]
async fn a_success_resets_the_shared_backoff() {
    let backend = start_backend(Mode::Unavailable).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = open_queue(dir.path().join("q"));
    append_requests(&queue, &["first"], 1).await;
    let shutdown = CancellationToken::new();
    let ctx = context(
        grpc_exporter(backend.addr),
        queue.clone(),
        None,
        settings(CONSUMERS, fast_backoff(INITIAL_MS, MAX_MS)),
        shutdown.clone(),
    );
    let tasks = spawn_consumers(ctx);
    tokio::time::sleep(Duration::from_secs(2)).await;
    backend.backend.set_mode(Mode::Ok);
    wait_for("the queue to drain", Duration::from_secs(5), || {
        queue.stats().entries == 0
    })
    .await;

    backend.backend.set_mode(Mode::Unavailable);
    backend.backend.keep_request_log();
    append_requests(&queue, &["second"], 1).await;
    wait_for("two attempts", Duration::from_secs(5), || {
        backend.backend.request_log().arrivals.len() >= 2
    })
    .await;
    let first_gap = backend.backend.request_log().gaps()[0];
    assert!(
        first_gap + Duration::from_millis(1) >= least_gap(0) && first_gap < least_gap(1),
        "first retry after {first_gap:?}: the backoff was not reset to {:?}",
        least_gap(0)
    );

    shutdown.cancel();
    queue.close();
    for t in tasks {
        t.await.unwrap();
    }
}
