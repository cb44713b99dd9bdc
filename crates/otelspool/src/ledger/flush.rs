//! "Flush this job": wait until every record of a job received so far has an outcome
//! (delivered, rejected or dropped), woken by the job's own notifier (no polling), or until a
//! timeout; answer the counts, and on timeout what is still queued and the exporters' last
//! errors.

use std::time::Duration;

use serde_json::{Value, json};

use super::JobLedger;
use super::view::JobView;

/// How a flush ended.
#[derive(Debug, Clone)]
pub struct FlushOutcome {
    /// The job's counts at the end.
    pub job: JobView,
    /// Records received when the flush started.
    pub target: u64,
    /// Every record received when the flush started has an outcome.
    pub settled: bool,
    /// The tracked queues' last export errors (exporter/signal, reason), on timeout.
    pub last_errors: Vec<(String, String)>,
}

impl FlushOutcome {
    /// Everything received was delivered (nothing rejected, dropped or still queued).
    pub fn all_delivered(&self) -> bool {
        self.settled && self.job.counts.delivered >= self.job.counts.received
    }

    /// The JSON the API answers.
    pub fn to_json(&self) -> Value {
        let errors: Vec<Value> = self
            .last_errors
            .iter()
            .map(|(q, e)| json!({"queue": q, "error": e}))
            .collect();
        json!({
            "job": self.job.to_json(),
            "flushed": self.settled,
            "all_delivered": self.all_delivered(),
            "received_at_start": self.target,
            "still_queued": self.job.counts.queued(),
            "last_errors": errors,
        })
    }
}

impl JobLedger {
    /// Waits up to `timeout` until every record of `id` received so far has an outcome.
    /// `None` at once for an unknown job.
    pub async fn flush(&self, id: &str, timeout: Duration) -> Option<FlushOutcome> {
        let deadline = tokio::time::Instant::now() + timeout;
        let (start, notify) = self.watch(id)?;
        let target = start.received;
        let settled = loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let Some((counts, _)) = self.watch(id) else {
                break false;
            };
            if counts.done() >= target {
                break true;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => break false,
            }
        };
        let job = self.job(id)?;
        let last_errors = if settled {
            Vec::new()
        } else {
            self.last_errors()
        };
        Some(FlushOutcome {
            job,
            target,
            settled,
            last_errors,
        })
    }
}
