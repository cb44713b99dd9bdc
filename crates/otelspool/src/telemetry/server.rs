//! The Prometheus endpoint (`GET /metrics`), refreshing the queue gauges on every scrape.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Metrics, QueueGauges, Watch};

struct MetricsState {
    metrics: Arc<Metrics>,
    watch: Arc<Watch>,
}

async fn scrape(State(s): State<Arc<MetricsState>>) -> impl IntoResponse {
    for q in &s.watch.queues {
        s.metrics.observe_queue(&QueueGauges {
            exporter: &q.exporter,
            signal: q.signal,
            stats: q.queue.stats(),
            counters: q.queue.counters(),
            recovery: q.queue.recovery_report(),
        });
        s.metrics.observe_watched(q);
    }
    (
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

/// Serves `/metrics` until `shutdown`.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    watch: Arc<Watch>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(address = ?listener.local_addr().ok(), "self-metrics listening on /metrics");
    let state = Arc::new(MetricsState { metrics, watch });
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(state);
    crate::server::serve(listener, app, shutdown).await
}
