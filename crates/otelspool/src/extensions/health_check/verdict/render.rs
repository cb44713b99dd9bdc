//! How a [`Failure`] is shown: its check name (the config key for delivery checks), one line
//! for people, and the JSON object in health bodies and `/status.json`.

use std::time::Duration;

use serde_json::{Value, json};

use super::Failure;
use crate::pipeline::Signal;

/// Seconds with millisecond precision, rounded **up**: a failure fires when a measure is
/// strictly over its threshold, so its shown value must never round down to the threshold
/// (1.0004 s over a 1 s limit shows as 1.001, not 1.0).
fn secs(d: Duration) -> f64 {
    d.as_micros().div_ceil(1000) as f64 / 1000.0
}

impl Failure {
    /// The check's name: the config key for delivery checks.
    pub fn check(&self) -> &'static str {
        match self {
            Failure::Starting => "starting",
            Failure::ShuttingDown => "shutting_down",
            Failure::QueueWritesFailing { .. } => "queue_writes",
            Failure::NoRecentSuccess { .. } => "max_time_since_success",
            Failure::OldestRecordTooOld { .. } => "max_oldest_record_age",
            Failure::QueueTooFull { .. } => "max_queue_fill_ratio",
            Failure::LowFreeDisk { .. } => "min_free_disk_mib",
        }
    }

    /// The exporter and signal it concerns, if any.
    pub fn queue(&self) -> Option<(&str, Signal)> {
        match self {
            Failure::Starting | Failure::ShuttingDown => None,
            Failure::QueueWritesFailing {
                exporter, signal, ..
            }
            | Failure::NoRecentSuccess {
                exporter, signal, ..
            }
            | Failure::OldestRecordTooOld {
                exporter, signal, ..
            }
            | Failure::QueueTooFull {
                exporter, signal, ..
            }
            | Failure::LowFreeDisk {
                exporter, signal, ..
            } => Some((exporter, *signal)),
        }
    }

    /// One line for people: what fails, its figures and the threshold.
    pub fn message(&self) -> String {
        let q = self
            .queue()
            .map(|(e, s)| format!("exporter {e} ({s}): "))
            .unwrap_or_default();
        let what = match self {
            Failure::Starting => "pipelines are not running yet".to_owned(),
            Failure::ShuttingDown => "shutting down".to_owned(),
            Failure::QueueWritesFailing { error, .. } => {
                format!("queue writes failing, clients are refused: {error}")
            }
            Failure::NoRecentSuccess {
                stalled,
                threshold,
                queued_records,
                ..
            } => format!(
                "no successful send for {:.1}s while {queued_records} records are queued (max_time_since_success {:?})",
                stalled.as_secs_f64(),
                threshold
            ),
            Failure::OldestRecordTooOld { age, threshold, .. } => format!(
                "oldest queued record is {:.1}s old (max_oldest_record_age {:?})",
                age.as_secs_f64(),
                threshold
            ),
            Failure::QueueTooFull {
                ratio, threshold, ..
            } => format!(
                "queue is {:.1} % full (max_queue_fill_ratio {threshold})",
                ratio * 100.0
            ),
            Failure::LowFreeDisk {
                free_bytes,
                threshold,
                ..
            } => format!(
                "{:.1} MiB free on the queue's filesystem (min_free_disk_mib {})",
                *free_bytes as f64 / 1048576.0,
                threshold >> 20
            ),
        };
        format!("{q}{what}")
    }

    /// The JSON object in health bodies and `/status.json`: `check`, `message`, and where they
    /// apply `exporter`, `signal`, `value`, `threshold`, `unit` (or `error`).
    pub fn to_json(&self) -> Value {
        let mut v = json!({ "check": self.check(), "message": self.message() });
        if let Some((exporter, signal)) = self.queue() {
            v["exporter"] = exporter.into();
            v["signal"] = signal.as_str().into();
        }
        let figures = match self {
            Failure::Starting | Failure::ShuttingDown => None,
            Failure::QueueWritesFailing { error, .. } => {
                v["error"] = error.as_str().into();
                None
            }
            Failure::NoRecentSuccess {
                stalled,
                threshold,
                queued_records,
                ..
            } => {
                v["queued_records"] = (*queued_records).into();
                Some((json!(secs(*stalled)), json!(secs(*threshold)), "seconds"))
            }
            Failure::OldestRecordTooOld { age, threshold, .. } => {
                Some((json!(secs(*age)), json!(secs(*threshold)), "seconds"))
            }
            Failure::QueueTooFull {
                ratio, threshold, ..
            } => Some((json!(ratio), json!(threshold), "ratio")),
            Failure::LowFreeDisk {
                free_bytes,
                threshold,
                ..
            } => Some((json!(free_bytes), json!(threshold), "bytes")),
        };
        if let Some((value, threshold, unit)) = figures {
            v["value"] = value;
            v["threshold"] = threshold;
            v["unit"] = unit.into();
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: durations just over a whole second and exact ones.
    /// Guarantees: values over a threshold never show as equal to it; exact values stay exact.
    #[test]
    fn seconds_round_up_to_the_millisecond() {
        assert_eq!(secs(Duration::from_micros(1_000_400)), 1.001);
        assert_eq!(secs(Duration::from_secs(1)), 1.0);
        assert_eq!(secs(Duration::from_millis(100)), 0.1);
    }
}
