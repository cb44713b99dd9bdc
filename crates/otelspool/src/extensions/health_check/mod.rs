//! `health_check`: the health endpoint, with otelcol's `GET <path>` and otelspool's additions.
//!
//! - `GET <path>` (default `/`) and `GET /readyz`: readiness. 200 with otelcol's body
//!   (`status`, `upSince`, `uptime`) when started, every queue can write and every configured
//!   `check_delivery` threshold holds; 503 with the same fields plus `reason` and
//!   `failing_checks` otherwise.
//! - `GET /livez`: liveness. 200 unless shutting down, whatever the backend does.
//! - `GET /status` (an HTML page embedded in the binary) and `GET /status.json` (the documented
//!   API it reads): queues, delivery, rates, latencies and the verdict per exporter.
//!
//! The verdict is decided in [`verdict`] only; this module gathers the figures and renders.
//! [`probe`] is the client `otelspool healthcheck` uses; [`drained`] the one of
//! `otelspool wait-drained`.

pub mod drained;
mod jobs;
pub mod probe;
mod server;
mod status;
pub mod verdict;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::StatusCode;
use serde_json::{Value, json};

use crate::delivery::DeliverySnapshot;
use crate::telemetry::Watch;
use otelspool_queue::{QueueCounters, QueueStats};
pub use server::serve_health;
use verdict::{DeliveryChecks, Phase, QueueView, SharedPhase, Verdict, evaluate};

/// The extension's settings at run time.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSettings {
    /// Listen address.
    pub endpoint: String,
    /// The otelcol path (readiness).
    pub path: String,
    /// The delivery checks, when configured and enabled.
    pub checks: Option<DeliveryChecks>,
}

/// The process's health, shared by the run loop and the health endpoint.
#[derive(Debug)]
pub struct Health {
    phase: SharedPhase,
    up_since: SystemTime,
    started: Instant,
    checks: Option<DeliveryChecks>,
    watch: Arc<Watch>,
    ledger: std::sync::OnceLock<Arc<crate::ledger::JobLedger>>,
}

/// The figures of one queue at one moment.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    pub stats: QueueStats,
    pub counters: QueueCounters,
    pub delivery: DeliverySnapshot,
    pub free_bytes: Option<u64>,
}

impl Health {
    /// Health over `watch`'s queues with `checks`; starts in [`Phase::Starting`].
    pub fn new(watch: Arc<Watch>, checks: Option<DeliveryChecks>) -> Self {
        Health {
            phase: SharedPhase::default(),
            up_since: SystemTime::now(),
            started: Instant::now(),
            checks,
            watch,
            ledger: std::sync::OnceLock::new(),
        }
    }

    /// Serves the job ledger's routes (`/v1/jobs`) and its status panel.
    pub fn set_ledger(&self, ledger: Arc<crate::ledger::JobLedger>) {
        let _ = self.ledger.set(ledger);
    }

    /// The job ledger, when it is on.
    pub fn ledger(&self) -> Option<&Arc<crate::ledger::JobLedger>> {
        self.ledger.get()
    }

    /// Moves to `phase`.
    pub fn set_phase(&self, phase: Phase) {
        self.phase.set(phase);
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase.get()
    }

    fn observe(&self) -> Vec<Observed> {
        self.watch
            .queues
            .iter()
            .map(|q| Observed {
                stats: q.queue.stats(),
                counters: q.queue.counters(),
                delivery: q.status.snapshot(),
                free_bytes: q.free_bytes(),
            })
            .collect()
    }

    fn views<'a>(&'a self, observed: &'a [Observed]) -> Vec<QueueView<'a>> {
        self.watch
            .queues
            .iter()
            .zip(observed)
            .map(|(q, o)| QueueView {
                exporter: &q.exporter,
                signal: q.signal,
                stats: &o.stats,
                delivery: &o.delivery,
                free_bytes: o.free_bytes,
            })
            .collect()
    }

    /// The readiness verdict now.
    pub fn verdict(&self) -> Verdict {
        let observed = self.observe();
        evaluate(
            self.phase(),
            &self.views(&observed),
            self.checks.as_ref(),
            SystemTime::now(),
        )
    }

    fn otelcol_body(&self, ok: bool) -> Value {
        let uptime = Duration::from_millis(self.started.elapsed().as_millis() as u64);
        json!({
            "status": if ok { "Server available" } else { "Server not available" },
            "upSince": humantime::format_rfc3339_seconds(self.up_since).to_string(),
            "uptime": humantime::format_duration(uptime).to_string(),
        })
    }

    /// Readiness (`<path>`, `/readyz`): the status code and JSON body.
    pub fn readiness(&self) -> (StatusCode, Value) {
        let verdict = self.verdict();
        let mut body = self.otelcol_body(verdict.is_ready());
        if verdict.is_ready() {
            return (StatusCode::OK, body);
        }
        let failures = verdict.failures();
        body["reason"] = failures
            .iter()
            .map(|f| f.message())
            .collect::<Vec<_>>()
            .join("; ")
            .into();
        body["failing_checks"] = failures.iter().map(|f| f.to_json()).collect();
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }

    /// Liveness (`/livez`): 200 unless shutting down.
    pub fn liveness(&self) -> (StatusCode, Value) {
        let live = self.phase().live();
        let code = if live {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (code, self.otelcol_body(live))
    }

    /// The `/status.json` document.
    pub fn status_json(&self) -> Value {
        let observed = self.observe();
        let now = SystemTime::now();
        let views = self.views(&observed);
        let verdict = evaluate(self.phase(), &views, self.checks.as_ref(), now);
        let mut doc = status::document(&status::Inputs {
            watch: &self.watch,
            observed: &observed,
            views: &views,
            verdict: &verdict,
            phase: self.phase(),
            checks: self.checks.as_ref(),
            up_since: self.up_since,
            uptime: self.started.elapsed(),
            now,
        });
        // The "recent jobs" panel, when the job ledger is on.
        if let (Some(l), Some(o)) = (self.ledger(), doc.as_object_mut()) {
            let jobs: Vec<Value> = l
                .jobs(0, None, RECENT_JOBS)
                .iter()
                .map(|v| v.to_json())
                .collect();
            o.insert("recent_jobs".into(), Value::Array(jobs));
        }
        doc
    }
}

/// Jobs shown in the status page's "recent jobs" panel.
const RECENT_JOBS: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: health over no queues, before and after start, then shutting down.
    /// Guarantees: otelcol's three fields; 503 with a `starting` failing check before the
    /// pipelines run, 200 with exactly otelcol's body after; `/livez` 200 until shutdown.
    #[test]
    fn readiness_and_liveness_follow_the_phase() {
        let h = Health::new(Arc::new(Watch::new(Vec::new(), Vec::new())), None);
        let (code, body) = h.readiness();
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["failing_checks"][0]["check"], "starting");
        assert_eq!(h.liveness().0, StatusCode::OK);
        h.set_phase(Phase::Running);
        let (code, body) = h.readiness();
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body["status"], "Server available");
        assert!(body["upSince"].as_str().is_some_and(|s| s.ends_with('Z')));
        assert!(body["uptime"].is_string());
        assert_eq!(body.as_object().map(|o| o.len()), Some(3), "{body}");
        h.set_phase(Phase::ShuttingDown);
        assert_eq!(h.liveness().0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(h.readiness().1["status"], "Server not available");
    }
}
