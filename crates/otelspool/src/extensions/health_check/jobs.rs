//! The job ledger's routes on the health endpoint (present only when the ledger is on):
//! - `GET /v1/jobs/{id}`: one job's counts (404 when unknown);
//! - `GET /v1/jobs?since=RFC3339&state=open|complete&limit=N`: jobs, most recent first;
//! - `POST /v1/jobs/{id}/flush?timeout=30s`: waits until every record of the job received so
//!   far has an outcome; 200 when all were delivered, 409 when some were rejected or dropped,
//!   504 at the timeout (with what is still queued and the exporters' last errors), 404 at once
//!   for an unknown job.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::StatusCode;
use serde_json::json;

use super::Health;
use super::server::json;
use crate::ledger::JobLedger;
use crate::ledger::book::JobState;

/// Longest flush wait a request may ask for.
const MAX_FLUSH_TIMEOUT: Duration = Duration::from_secs(3600);
/// Most jobs one listing answers.
const MAX_LIST: usize = 10_000;

fn bad_request(message: String) -> Response {
    json(StatusCode::BAD_REQUEST, json!({ "error": message }))
}

fn unknown(id: &str) -> Response {
    json(
        StatusCode::NOT_FOUND,
        json!({ "error": format!("no job {id} in the ledger"), "id": id }),
    )
}

fn ledger_of(h: &Health) -> Option<Arc<JobLedger>> {
    h.ledger().cloned()
}

fn disabled() -> Response {
    json(
        StatusCode::NOT_FOUND,
        json!({ "error": "the job ledger is off (list job_ledger in service.extensions)" }),
    )
}

async fn one(State(h): State<Arc<Health>>, Path(id): Path<String>) -> Response {
    let Some(l) = ledger_of(&h) else {
        return disabled();
    };
    match l.job(&id) {
        Some(v) => json(StatusCode::OK, v.to_json()),
        None => unknown(&id),
    }
}

async fn list(State(h): State<Arc<Health>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(l) = ledger_of(&h) else {
        return disabled();
    };
    let since = match q.get("since") {
        None => 0,
        Some(s) => match humantime::parse_rfc3339_weak(s) {
            Ok(t) => t
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            Err(e) => return bad_request(format!("since: {e} (want RFC 3339)")),
        },
    };
    let state = match q.get("state").map(String::as_str) {
        None => None,
        Some("open") => Some(JobState::Open),
        Some("complete") => Some(JobState::Complete),
        Some(other) => return bad_request(format!("state: {other:?} (want open or complete)")),
    };
    let limit = match q.get("limit").map(|s| s.parse::<usize>()) {
        None => MAX_LIST,
        Some(Ok(n)) => n.min(MAX_LIST),
        Some(Err(e)) => return bad_request(format!("limit: {e}")),
    };
    let (kept, evicted, unattributed) = l.totals();
    let jobs: Vec<_> = l
        .jobs(since, state, limit)
        .iter()
        .map(|v| v.to_json())
        .collect();
    json(
        StatusCode::OK,
        json!({
            "jobs": jobs,
            "jobs_kept": kept,
            "jobs_evicted": evicted,
            "unattributed_rejected": unattributed,
        }),
    )
}

async fn flush(
    State(h): State<Arc<Health>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(l) = ledger_of(&h) else {
        return disabled();
    };
    let timeout = match q.get("timeout") {
        None => Duration::from_secs(30),
        Some(t) => match humantime::parse_duration(t) {
            Ok(d) => d.min(MAX_FLUSH_TIMEOUT),
            Err(e) => return bad_request(format!("timeout: {e}")),
        },
    };
    match l.flush(&id, timeout).await {
        None => unknown(&id),
        Some(o) => {
            let code = if !o.settled {
                StatusCode::GATEWAY_TIMEOUT
            } else if o.all_delivered() {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            };
            json(code, o.to_json())
        }
    }
}

/// The routes, added to the health endpoint's router.
pub fn routes() -> Router<Arc<Health>> {
    Router::new()
        .route("/v1/jobs", get(list))
        .route("/v1/jobs/{id}", get(one))
        .route("/v1/jobs/{id}/flush", post(flush))
}
