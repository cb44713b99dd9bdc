//! A backend outage of an hour must not flood the machine's log: the consumers of a queue log
//! its export failures once a minute, each line counting the failures it stands for. Runs the
//! consumers against the testkit backend (real gRPC on 127.0.0.1) on Tokio's paused clock.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use otelspool::delivery::spawn_consumers;
use otelspool_testkit::backend::Mode;
use tokio_util::sync::CancellationToken;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

use support::{
    append_requests, context, fast_backoff, grpc_exporter, open_queue, settings, start_backend,
    wait_for,
};

/// The `not_logged` field of each "export failed" line (`None`: a line without it), and of
/// the recovery line.
#[derive(Clone, Default)]
struct FailureLines {
    failed: Arc<Mutex<Vec<Option<u64>>>>,
    recovered: Arc<Mutex<Vec<Option<u64>>>>,
}

#[derive(Default)]
struct Fields {
    message: String,
    not_logged: Option<u64>,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "not_logged" {
            self.not_logged = Some(value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for FailureLines {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        if f.message.starts_with("export failed; data stays queued") {
            self.failed.lock().unwrap().push(f.not_logged);
        } else if f.message.starts_with("export succeeded after retries") {
            self.recovered.lock().unwrap().push(f.not_logged);
        }
    }
}

/// The value of the counter `name` in the Prometheus text `exposition`.
fn counter(exposition: &str, name: &str) -> u64 {
    exposition
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Scenario: the backend answers `UNAVAILABLE` for one hour (paused clock) while one request
/// is queued; ten consumers retry with a backoff of 20 ms growing to 1 s, so thousands of
/// attempts fail; then the backend recovers and the queue drains.
/// Guarantees: the failures are logged once a minute (59 to 61 lines for the hour, the first
/// at once), every line says how many failures it did not log, the recovery line reports those
/// since the last line, and all of them add up to every failed attempt (the retry counter),
/// so nothing is hidden.
#[tokio::test(start_paused = true)]
async fn an_hour_of_failed_exports_logs_one_line_a_minute_with_counts() {
    let lines = FailureLines::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(lines.clone()));
    let backend = start_backend(Mode::Unavailable).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = open_queue(dir.path().join("q"));
    append_requests(&queue, &["only"], 1).await;
    let shutdown = CancellationToken::new();
    let ctx = context(
        grpc_exporter(backend.addr),
        queue.clone(),
        None,
        settings(10, fast_backoff(20, 1000)),
        shutdown.clone(),
    );
    let metrics = ctx.metrics.clone();
    let tasks = spawn_consumers(ctx);

    tokio::time::sleep(Duration::from_secs(3600)).await;
    backend.backend.set_mode(Mode::Ok);
    wait_for("the queue to drain", Duration::from_secs(5), || {
        queue.stats().entries == 0
    })
    .await;
    shutdown.cancel();
    queue.close();
    for t in tasks {
        t.await.unwrap();
    }

    let failures = counter(&metrics.render(), "otelspool_exporter_send_retries");
    let failed = lines.failed.lock().unwrap().clone();
    let recovered = lines.recovered.lock().unwrap().clone();
    assert!(
        failures > 3000,
        "only {failures} failed attempts in an hour"
    );
    assert!(
        (59..=61).contains(&failed.len()),
        "{} lines for {failures} failures",
        failed.len()
    );
    assert_eq!(failed[0], Some(0), "the first failure is logged at once");
    let logged: u64 = failed
        .iter()
        .map(|l| 1 + l.expect("every line carries not_logged"))
        .sum();
    let [Some(since_last)] = recovered[..] else {
        panic!("one recovery line with not_logged: {recovered:?}");
    };
    assert!(
        since_last <= 61,
        "{since_last} failures since the last line"
    );
    assert_eq!(
        logged + since_last,
        failures,
        "lines + not_logged = failed attempts"
    );
}
