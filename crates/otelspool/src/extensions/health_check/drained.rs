//! `otelspool wait-drained`: asks a running otelspool's `/status.json` (the documented status
//! API) until every exporter queue is empty, for a rollback or a migration that must lose
//! nothing. It only watches: stopping what sends to otelspool is the operator's step before it
//! (docs/migration.md). Empty means: the pipelines run (a starting otelspool has not counted
//! its queue yet), and every queue holds no request, no record and nothing in flight.
//!
//! Hand-written over [`super::probe`] (a blocking HTTP/1.0 GET) so that the command works in
//! the `FROM scratch` image, like `otelspool healthcheck`.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::probe::{ProbeError, probe};

/// What one exporter queue still holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueBacklog {
    /// The exporter's id (`otlp/dash0`).
    pub exporter: String,
    /// `logs`, `traces` or `metrics`.
    pub signal: String,
    /// Client requests queued.
    pub requests: u64,
    /// Records (log records, spans, data points) queued.
    pub records: u64,
    /// Requests being sent now.
    pub in_flight: u64,
}

/// What a running otelspool still has to deliver, read from one `/status.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    /// `starting`, `running` or `shutting_down`.
    pub phase: String,
    /// One entry per exporter queue.
    pub queues: Vec<QueueBacklog>,
}

/// `/status.json` did not have the shape the status API documents.
#[derive(Debug, thiserror::Error)]
#[error("unexpected /status.json: {0}")]
pub struct StatusFormatError(String);

/// Why `wait-drained` did not see an empty otelspool.
#[derive(Debug, thiserror::Error)]
pub enum WaitDrainedError {
    /// The deadline passed with records still queued.
    #[error("still queued after {:.1}s: {}", .waited.as_secs_f64(), .last.describe())]
    Timeout {
        /// How long it waited.
        waited: Duration,
        /// The last answer.
        last: Backlog,
    },
    /// The endpoint never answered in time (the last error).
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// The endpoint answered something that is not the status API.
    #[error(transparent)]
    Format(#[from] StatusFormatError),
}

fn count(q: &Value, key: &str) -> Result<u64, StatusFormatError> {
    q["queue"][key]
        .as_u64()
        .ok_or_else(|| StatusFormatError(format!("exporters[].queue.{key} is not a count")))
}

impl Backlog {
    /// Reads a `/status.json` body.
    pub fn parse(body: &str) -> Result<Self, StatusFormatError> {
        let doc: Value =
            serde_json::from_str(body).map_err(|e| StatusFormatError(format!("not JSON: {e}")))?;
        let phase = doc["phase"]
            .as_str()
            .ok_or_else(|| StatusFormatError("no phase".into()))?
            .to_owned();
        let exporters = doc["exporters"]
            .as_array()
            .ok_or_else(|| StatusFormatError("no exporters list".into()))?;
        let queues = exporters
            .iter()
            .map(|q| {
                Ok(QueueBacklog {
                    exporter: q["exporter"].as_str().unwrap_or("?").to_owned(),
                    signal: q["signal"].as_str().unwrap_or("?").to_owned(),
                    requests: count(q, "requests")?,
                    records: count(q, "records")?,
                    in_flight: count(q, "in_flight_requests")?,
                })
            })
            .collect::<Result<_, StatusFormatError>>()?;
        Ok(Self { phase, queues })
    }

    /// True when the pipelines run and no queue holds or sends anything.
    pub fn is_drained(&self) -> bool {
        self.phase == "running"
            && self
                .queues
                .iter()
                .all(|q| q.requests == 0 && q.records == 0 && q.in_flight == 0)
    }

    /// Records queued in all queues together.
    pub fn records(&self) -> u64 {
        self.queues.iter().map(|q| q.records).sum()
    }

    /// One line for people: the phase and each non-empty queue.
    pub fn describe(&self) -> String {
        let busy: Vec<String> = self
            .queues
            .iter()
            .filter(|q| q.requests + q.records + q.in_flight > 0)
            .map(|q| {
                format!(
                    "{} ({}): {} records in {} requests, {} in flight",
                    q.exporter, q.signal, q.records, q.requests, q.in_flight
                )
            })
            .collect();
        if busy.is_empty() {
            format!("phase {}, every queue empty", self.phase)
        } else {
            format!("phase {}, {}", self.phase, busy.join("; "))
        }
    }
}

/// Asks `endpoint`'s `/status.json` every `every` until it reports an empty otelspool, or
/// `timeout` passes. `progress` sees each answer. A refused connection is retried until the
/// deadline (otelspool may be restarting), then returned.
pub fn wait_drained(
    endpoint: &str,
    timeout: Duration,
    every: Duration,
    mut progress: impl FnMut(&Backlog),
) -> Result<Backlog, WaitDrainedError> {
    let started = Instant::now();
    let deadline = started + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ask = left.clamp(Duration::from_millis(1), Duration::from_secs(5));
        let answer = probe(endpoint, "/status.json", ask);
        let last = match answer {
            Ok(a) => {
                let backlog = Backlog::parse(&a.body)?;
                progress(&backlog);
                if backlog.is_drained() {
                    return Ok(backlog);
                }
                Ok(backlog)
            }
            Err(e) => Err(e),
        };
        if Instant::now() + every >= deadline {
            return match last {
                Ok(last) => Err(WaitDrainedError::Timeout {
                    waited: started.elapsed(),
                    last,
                }),
                Err(e) => Err(e.into()),
            };
        }
        std::thread::sleep(every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(phase: &str, records: u64, requests: u64, in_flight: u64) -> String {
        serde_json::json!({
            "schema_version": 1, "phase": phase,
            "exporters": [
                {"exporter": "otlp/dash0", "signal": "logs",
                 "queue": {"requests": requests, "records": records, "in_flight_requests": in_flight}},
                {"exporter": "otlp/dash0", "signal": "traces",
                 "queue": {"requests": 0, "records": 0, "in_flight_requests": 0}},
            ]
        })
        .to_string()
    }

    /// Scenario: status documents with an empty queue, queued records, a request in flight,
    /// and an otelspool still starting.
    /// Guarantees: only a running otelspool with nothing queued and nothing in flight counts
    /// as drained; the description names the busy queue with its figures.
    #[test]
    fn only_running_with_every_queue_empty_is_drained() {
        let empty = Backlog::parse(&doc("running", 0, 0, 0)).expect("parse");
        assert!(empty.is_drained());
        assert_eq!(empty.describe(), "phase running, every queue empty");

        let queued = Backlog::parse(&doc("running", 120, 3, 0)).expect("parse");
        assert!(!queued.is_drained());
        assert_eq!(queued.records(), 120);
        assert_eq!(
            queued.describe(),
            "phase running, otlp/dash0 (logs): 120 records in 3 requests, 0 in flight"
        );

        let sending = Backlog::parse(&doc("running", 0, 0, 1)).expect("parse");
        assert!(!sending.is_drained());
        let starting = Backlog::parse(&doc("starting", 0, 0, 0)).expect("parse");
        assert!(!starting.is_drained());
    }

    /// Scenario: bodies that are not the status API (not JSON, no phase, a count missing).
    /// Guarantees: each is refused with a typed error instead of being read as empty.
    #[test]
    fn other_documents_are_refused() {
        assert!(Backlog::parse("<html>").is_err());
        assert!(Backlog::parse(r#"{"exporters": []}"#).is_err());
        let missing = r#"{"phase":"running","exporters":[{"queue":{"requests":0,"records":0}}]}"#;
        assert!(Backlog::parse(missing).is_err());
    }
}
