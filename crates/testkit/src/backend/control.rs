//! The control API tests use to observe and steer the backend.
//!
//! - `GET /stats`: the counters ([`super::Stats`]) as JSON.
//! - `GET /mode`, `POST /mode` with a body such as `ok`, `unavailable`, `resource_exhausted`,
//!   `invalid`, `slow:500`, `partial:3`, `strict`.
//! - `GET /headers`: names of the last export request's headers, the `dash0-dataset` value and
//!   whether `authorization` was `Bearer test-token` (no other value is ever exposed).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use super::{Backend, Mode};

/// Serves the control API on `listener`.
pub async fn serve(backend: Arc<Backend>, listener: TcpListener) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/stats", get(stats))
        .route("/mode", get(get_mode).post(set_mode))
        .route("/headers", get(headers))
        .with_state(backend);
    axum::serve(listener, app).await?;
    Ok(())
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn stats(State(backend): State<Arc<Backend>>) -> Response {
    json(&backend.stats())
}

async fn get_mode(State(backend): State<Arc<Backend>>) -> String {
    backend.mode().spelling()
}

async fn set_mode(State(backend): State<Arc<Backend>>, body: String) -> Response {
    match body.parse::<Mode>() {
        Ok(mode) => {
            backend.set_mode(mode);
            mode.spelling().into_response()
        }
        Err(message) => (StatusCode::BAD_REQUEST, message).into_response(),
    }
}

async fn headers(State(backend): State<Arc<Backend>>) -> Response {
    json(&backend.last_headers())
}
