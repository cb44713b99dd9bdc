//! The health endpoint's routes: readiness at the configured path and `/readyz`, liveness at
//! `/livez`, the status page at `/status` and its data at `/status.json`; the job ledger's
//! `/v1/jobs` routes (`jobs.rs`).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Health;

/// The status page: one self-contained HTML file (no CDN, no build step).
const STATUS_PAGE: &str = include_str!("status.html");

pub(super) fn json(code: StatusCode, body: Value) -> Response {
    (
        code,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn readiness(State(h): State<Arc<Health>>) -> Response {
    let (code, body) = h.readiness();
    json(code, body)
}

async fn liveness(State(h): State<Arc<Health>>) -> Response {
    let (code, body) = h.liveness();
    json(code, body)
}

async fn status_json(State(h): State<Arc<Health>>) -> Response {
    json(StatusCode::OK, h.status_json())
}

async fn status_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        STATUS_PAGE,
    )
        .into_response()
}

/// The router: `path` (readiness, otelcol's), `/readyz`, `/livez`, `/status`, `/status.json`.
/// A `path` equal to one of the fixed routes is served by that route (validation only
/// allows `/readyz`, which means the same).
pub fn router(path: &str, health: Arc<Health>) -> Router {
    let fixed = ["/readyz", "/livez", "/status", "/status.json"];
    let mut app = Router::new()
        .route("/readyz", get(readiness))
        .route("/livez", get(liveness))
        .route("/status", get(status_page))
        .route("/status.json", get(status_json))
        .merge(super::jobs::routes());
    if !fixed.contains(&path) {
        app = app.route(path, get(readiness));
    }
    app.with_state(health)
}

/// Serves the health endpoint until `shutdown`.
pub async fn serve_health(
    listener: TcpListener,
    path: String,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(address = ?listener.local_addr().ok(), %path, "health check listening (also /readyz, /livez, /status, /status.json)");
    crate::server::serve(listener, router(&path, health), shutdown).await
}
