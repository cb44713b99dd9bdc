//! The fault proxy's control API.
//!
//! - `GET /stats`: [`super::ProxyStats`] as JSON (connections, bytes each way, mode).
//! - `GET /mode`; `POST /mode` with a body `pass`, `blackhole`, `reset`, `slow:MS` or `cut`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use super::{Proxy, ProxyMode};

/// Serves the control API on `listener`.
pub async fn serve(proxy: Arc<Proxy>, listener: TcpListener) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/stats", get(stats))
        .route("/mode", get(get_mode).post(set_mode))
        .with_state(proxy);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn stats(State(proxy): State<Arc<Proxy>>) -> Response {
    match serde_json::to_vec(&proxy.stats()) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn get_mode(State(proxy): State<Arc<Proxy>>) -> String {
    proxy.mode().spelling()
}

async fn set_mode(State(proxy): State<Arc<Proxy>>, body: String) -> Response {
    match body.parse::<ProxyMode>() {
        Ok(mode) => {
            proxy.set_mode(mode);
            mode.spelling().into_response()
        }
        Err(message) => (StatusCode::BAD_REQUEST, message).into_response(),
    }
}
