//! `extensions.job_ledger`: otelspool's per-job delivery ledger. Listed in
//! `service.extensions`, it counts every job's records (received, delivered, rejected, dropped)
//! by the string value of `keys` on each item (record, then scope, then resource) and keeps a
//! snapshot of the counts in the storage directory. Not listed, it costs nothing.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::duration;

/// `extensions.job_ledger`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobLedgerConfig {
    /// Attribute keys whose string values name a job (e.g. `emerge.job_id`,
    /// `emerge.workflow_id`); each value is a ledger entry of its own.
    #[serde(default = "default_keys")]
    pub keys: Vec<String>,
    /// Most jobs kept; past it the oldest complete jobs are evicted (counted).
    #[serde(default = "default_max_jobs")]
    pub max_jobs: usize,
    /// Complete jobs older than this (since last seen) are evicted.
    #[serde(default = "default_retention", with = "duration::required")]
    pub retention: Duration,
    /// A job is complete when idle this long with nothing of it queued.
    #[serde(default = "default_complete_after", with = "duration::required")]
    pub complete_after: Duration,
    /// How often the snapshot is written when the counts changed.
    #[serde(default = "default_snapshot_interval", with = "duration::required")]
    pub snapshot_interval: Duration,
    /// Where the snapshot lives; default: `job_ledger/` in the `file_storage` directory.
    #[serde(default)]
    pub directory: Option<PathBuf>,
}

impl Default for JobLedgerConfig {
    fn default() -> Self {
        JobLedgerConfig {
            keys: default_keys(),
            max_jobs: default_max_jobs(),
            retention: default_retention(),
            complete_after: default_complete_after(),
            snapshot_interval: default_snapshot_interval(),
            directory: None,
        }
    }
}

/// `[emerge.job_id]`.
pub fn default_keys() -> Vec<String> {
    vec!["emerge.job_id".to_string()]
}

/// 10,000 jobs.
pub fn default_max_jobs() -> usize {
    10_000
}

/// 24 hours.
pub fn default_retention() -> Duration {
    Duration::from_secs(24 * 3600)
}

/// 30 seconds.
pub fn default_complete_after() -> Duration {
    Duration::from_secs(30)
}

/// 1 second.
pub fn default_snapshot_interval() -> Duration {
    Duration::from_secs(1)
}
