//! What the ledger answers about a job: counts, state and times, as JSON for the HTTP API (the
//! CLI reads the same JSON).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::book::{Counts, Job, JobState};

/// One job at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobView {
    /// The key value.
    pub id: String,
    /// The key it is a value of (`emerge.job_id`).
    pub key: String,
    /// Open or complete.
    pub state: JobState,
    /// Counts.
    pub counts: Counts,
    /// First record received (ms since the epoch).
    pub first_seen_ms: u64,
    /// Last record received (ms since the epoch).
    pub last_seen_ms: u64,
    /// Last delivery (ms since the epoch).
    pub last_delivery_ms: Option<u64>,
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl JobView {
    pub(super) fn of(id: &str, key: &str, job: &Job, state: JobState) -> JobView {
        JobView {
            id: id.to_string(),
            key: key.to_string(),
            state,
            counts: job.live,
            first_seen_ms: job.first_seen_ms,
            last_seen_ms: job.last_seen_ms,
            last_delivery_ms: job.last_delivery_ms,
        }
    }

    /// Delivered / received (1 when nothing was received).
    pub fn coverage(&self) -> f64 {
        if self.counts.received == 0 {
            1.0
        } else {
            self.counts.delivered as f64 / self.counts.received as f64
        }
    }

    /// The JSON the API answers.
    pub fn to_json(&self) -> Value {
        let c = &self.counts;
        json!({
            "id": self.id,
            "key": self.key,
            "state": self.state.as_str(),
            "received": c.received,
            "delivered": c.delivered,
            "rejected": c.rejected,
            "dropped": {
                "drop_oldest": c.dropped_full,
                "expired": c.dropped_expired,
            },
            "queued": c.queued(),
            "coverage": self.coverage(),
            "first_seen": rfc3339(self.first_seen_ms),
            "last_seen": rfc3339(self.last_seen_ms),
            "last_delivery": self.last_delivery_ms.map(rfc3339),
        })
    }
}
