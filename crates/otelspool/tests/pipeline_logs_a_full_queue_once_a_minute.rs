//! A queue that stays full refuses every request; the refusals are logged once a minute per
//! exporter and reason, each line counting those it did not log. On Tokio's paused clock.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use otelspool::pipeline::{ExporterQueue, Payload, Pipeline, Refusal, Signal};
use otelspool::processors::ProcessorChain;
use otelspool::telemetry::Metrics;
use otelspool_queue::{Queue, QueueOptions};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// The `not_logged` of each "could not queue data" line.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<Option<u64>>>>);

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

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Lines {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        if f.message.starts_with("could not queue data") {
            self.0.lock().unwrap().push(f.not_logged);
        }
    }
}

/// Scenario: a queue of one entry is full; 1,000 requests are refused in the first minute,
/// then one more after a minute (paused clock).
/// Guarantees: each is refused `QueueFull`, but only two lines are logged: the first at once,
/// the second a minute later counting the 999 it stands for.
#[tokio::test(start_paused = true)]
async fn a_full_queue_is_logged_once_a_minute_with_the_refusals_counted() {
    let lines = Lines::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(lines.clone()));
    let mut options = QueueOptions::new("full", None);
    options.max_entries = 1;
    let (queue, _) = Queue::open(options).unwrap();
    let pipeline = Pipeline {
        id: "logs".into(),
        processors: ProcessorChain::default(),
        exporters: vec![ExporterQueue {
            exporter: "otlp/full".into(),
            signal: Signal::Logs,
            queue,
            ledger: None,
        }],
        metrics: Arc::new(Metrics::new().unwrap()),
    };
    let payload = || Payload::from_protobuf(Signal::Logs, common::logs(1)).unwrap();
    pipeline.consume(payload()).await.unwrap();
    for _ in 0..1000 {
        let refused = pipeline.consume(payload()).await;
        assert!(matches!(refused, Err(Refusal::QueueFull(_))), "{refused:?}");
    }
    tokio::time::advance(Duration::from_secs(61)).await;
    let refused = pipeline.consume(payload()).await;
    assert!(matches!(refused, Err(Refusal::QueueFull(_))), "{refused:?}");
    assert_eq!(*lines.0.lock().unwrap(), [Some(0), Some(999)]);
}
