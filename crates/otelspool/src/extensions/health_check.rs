//! `health_check`: `GET <path>` answers 200 with otelcol's JSON body while every pipeline runs
//! and every queue can write, 503 otherwise (starting, shutting down, or a queue's disk writes
//! failing, with the reason in the body).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::pipeline::ExporterQueue;

/// The process's health, shared with the health endpoint.
#[derive(Debug)]
pub struct Health {
    ready: AtomicBool,
    up_since: SystemTime,
    started: Instant,
    queues: std::sync::Mutex<Vec<ExporterQueue>>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            ready: AtomicBool::new(false),
            up_since: SystemTime::now(),
            started: Instant::now(),
            queues: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl Health {
    /// Marks the pipelines as running (true) or not (false).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Registers the queues whose write errors make the process unhealthy.
    pub fn watch_queues(&self, queues: Vec<ExporterQueue>) {
        *self.queues.lock().unwrap_or_else(|p| p.into_inner()) = queues;
    }

    /// The status code and JSON body of a health request.
    pub fn report(&self) -> (StatusCode, serde_json::Value) {
        let failing: Vec<String> = self
            .queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|q| {
                let err = q.queue.stats().write_error?;
                Some(format!(
                    "{} {}: queue writes failing: {err}",
                    q.exporter, q.signal
                ))
            })
            .collect();
        let ready = self.ready.load(Ordering::SeqCst);
        let ok = ready && failing.is_empty();
        let mut body = serde_json::json!({
            "status": if ok { "Server available" } else { "Server not available" },
            "upSince": humantime::format_rfc3339_seconds(self.up_since).to_string(),
            "uptime": humantime::format_duration(std::time::Duration::from_millis(self.started.elapsed().as_millis() as u64)).to_string(),
        });
        if !ready {
            body["reason"] = "pipelines not running".into();
        } else if !failing.is_empty() {
            body["reason"] = failing.join("; ").into();
        }
        (
            if ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            },
            body,
        )
    }
}

async fn health_handler(State(h): State<Arc<Health>>) -> Response {
    let (code, body) = h.report();
    (
        code,
        [(http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Serves the health endpoint until `shutdown`.
pub async fn serve_health(
    listener: TcpListener,
    path: String,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(address = ?listener.local_addr().ok(), %path, "health check listening");
    let app = Router::new()
        .route(&path, get(health_handler))
        .with_state(health);
    crate::server::serve(listener, app, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_is_503_and_ready_is_200_with_otelcol_fields() {
        let h = Health::default();
        assert_eq!(h.report().0, StatusCode::SERVICE_UNAVAILABLE);
        h.set_ready(true);
        let (code, body) = h.report();
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body["status"], "Server available");
        assert!(body["upSince"].as_str().is_some_and(|s| s.ends_with('Z')));
        assert!(body["uptime"].is_string());
    }
}
