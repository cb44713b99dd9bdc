//! Runs a built configuration and stops it in stages.
//!
//! Start: open queues (recovering their backlog), bind every port (a taken port fails start-up
//! with the component and address named), start consumers, then report healthy.
//!
//! Stop (SIGTERM / SIGINT): report unhealthy; stop receivers, letting in-flight requests
//! finish their durable append; close the queues; let in-flight exports finish (bounded) and
//! put batches waiting for a retry back; write each queue's ack ledger. Unsent data stays on
//! disk for the next start: nothing queued is deleted because the backend is down
//! (otelcol core #15677).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::build::{Parts, build};
use crate::delivery::spawn_consumers;
use crate::exporters::ensure_crypto_provider;
use crate::extensions::health_check::verdict::Phase;
use crate::extensions::health_check::{Health, serve_health};
use crate::receivers::otlp::{serve_grpc, serve_http};
use crate::telemetry::{run_sampler, serve_metrics};

/// How long in-flight requests and exports get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Turns otelcol's endpoint forms into something `bind` takes: `:4317` means all interfaces.
pub fn bind_address(endpoint: &str) -> String {
    let e = endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    if e.starts_with(':') {
        format!("0.0.0.0{e}")
    } else {
        e.to_string()
    }
}

async fn bind(what: &str, endpoint: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(bind_address(endpoint))
        .await
        .with_context(|| format!("{what}: cannot listen on {endpoint}"))
}

/// Runs until a stop signal or until `stop` is cancelled; then shuts down in stages.
pub async fn run(config: otelspool_config::Config, stop: CancellationToken) -> anyhow::Result<()> {
    ensure_crypto_provider();
    let retry_stop = CancellationToken::new();
    let Parts {
        receivers,
        queues,
        consumers,
        health,
        watch,
        metrics_address,
        metrics,
        ledger,
    } = build(&config, retry_stop.clone()).await?;
    let ledger_thread = ledger.as_ref().map(|l| l.start());

    let servers_stop = CancellationToken::new();
    let mut servers = JoinSet::new();
    let health_state = Arc::new(Health::new(
        watch.clone(),
        health.as_ref().and_then(|h| h.checks),
    ));
    if let Some(l) = &ledger {
        health_state.set_ledger(l.clone());
    }
    let sampler_stop = CancellationToken::new();
    let sampler = tokio::spawn(run_sampler(watch.clone(), sampler_stop.clone()));
    for r in receivers {
        if let Some((endpoint, settings)) = r.grpc {
            let l = bind(&format!("receiver {} (grpc)", r.ctx.id), &endpoint).await?;
            let (ctx, stop) = (r.ctx.clone(), servers_stop.clone());
            servers.spawn(async move {
                serve_grpc(l, ctx, settings, stop)
                    .await
                    .context("OTLP/gRPC server")
            });
        }
        if let Some((endpoint, settings)) = r.http {
            let l = bind(&format!("receiver {} (http)", r.ctx.id), &endpoint).await?;
            let (ctx, stop) = (r.ctx.clone(), servers_stop.clone());
            servers.spawn(async move {
                serve_http(l, ctx, settings, stop)
                    .await
                    .context("OTLP/HTTP server")
            });
        }
    }
    if let Some(h) = health {
        let (endpoint, path) = (h.endpoint, h.path);
        let l = bind("extension health_check", &endpoint).await?;
        let (h, stop) = (health_state.clone(), servers_stop.clone());
        servers.spawn(async move {
            serve_health(l, path, h, stop)
                .await
                .context("health check server")
        });
    }
    if let Some(address) = metrics_address {
        let l = bind("service.telemetry.metrics", &address).await?;
        let (m, w, stop) = (metrics.clone(), watch.clone(), servers_stop.clone());
        servers.spawn(async move { serve_metrics(l, m, w, stop).await.context("metrics server") });
    }
    let mut consumer_tasks = Vec::new();
    for c in consumers {
        consumer_tasks.extend(spawn_consumers(c));
    }
    health_state.set_phase(Phase::Running);
    tracing::info!(queues = queues.len(), "otelspool is running");

    let failure = tokio::select! {
        _ = stop.cancelled() => None,
        _ = shutdown_signal() => None,
        Some(res) = servers.join_next() => Some(match res {
            Ok(Ok(())) => anyhow::anyhow!("a server stopped unexpectedly"),
            Ok(Err(e)) => e,
            Err(e) => anyhow::anyhow!("a server task failed: {e}"),
        }),
    };
    match &failure {
        None => tracing::info!("shutting down: stopping receivers"),
        Some(e) => tracing::error!(error = %format!("{e:#}"), "shutting down after a failure"),
    }
    health_state.set_phase(Phase::ShuttingDown);
    servers_stop.cancel();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "receivers did not finish in time; aborting the remaining requests (they were not acknowledged)"
        );
        servers.abort_all();
    }
    for q in &queues {
        q.queue.close();
    }
    retry_stop.cancel();
    let exports = futures::future::join_all(consumer_tasks);
    if tokio::time::timeout(SHUTDOWN_GRACE, exports).await.is_err() {
        tracing::warn!(
            "exports still in flight at the deadline; their data stays queued and is resent at the next start"
        );
    }
    if let Some(t) = ledger_thread {
        // A last snapshot, with what the consumers delivered up to now.
        let _ = tokio::task::spawn_blocking(move || t.stop()).await;
    }
    let to_close: Vec<_> = queues.iter().map(|q| q.queue.clone()).collect();
    let _ = tokio::task::spawn_blocking(move || to_close.iter().for_each(|q| q.shutdown())).await;
    for q in &queues {
        let s = q.queue.stats();
        if s.entries > 0 {
            tracing::info!(exporter = %q.exporter, signal = %q.signal, entries = s.entries, items = s.items, "kept unsent data on disk for the next start");
        }
    }
    sampler_stop.cancel();
    let _ = sampler.await;
    tracing::info!("stopped");
    failure.map_or(Ok(()), Err)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("could not install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM"),
        _ = int.recv() => tracing::info!("received SIGINT"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otelcol_endpoint_forms_bind() {
        assert_eq!(bind_address(":4317"), "0.0.0.0:4317");
        assert_eq!(bind_address("localhost:4318"), "localhost:4318");
        assert_eq!(bind_address("127.0.0.1:1"), "127.0.0.1:1");
    }
}
