//! `extensions.health_check.check_delivery`: otelspool's opt-in readiness checks that say
//! whether data is reaching the backend, in the spirit of otelcol's (deprecated)
//! `check_collector_pipeline`.
//!
//! Each threshold is optional and applies only when set; the block applies only when present
//! and `enabled` (default `true`: writing the block opts in). Byte sizes are in MiB, as every
//! size in otelcol's config is (`limit_mib`, `max_size_mib`).

use std::time::Duration;

use serde::Deserialize;

use crate::duration;

/// `health_check.check_delivery`: when an exporter queue makes the process not ready.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryChecksConfig {
    /// Apply the checks (default `true`; `false` keeps the thresholds written but unused).
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Not ready when an exporter has had no successful send for longer than this while its
    /// queue holds data (an idle exporter with an empty queue is ready).
    #[serde(default, with = "duration::optional")]
    pub max_time_since_success: Option<Duration>,
    /// Not ready when the oldest record in an exporter's queue is older than this.
    #[serde(default, with = "duration::optional")]
    pub max_oldest_record_age: Option<Duration>,
    /// Not ready when a queue is fuller than this fraction (0 to 1) of its entry or byte limit.
    #[serde(default)]
    pub max_queue_fill_ratio: Option<f64>,
    /// Not ready when the filesystem of a persistent queue has less free space than this, in
    /// MiB (space available to unprivileged users, as `df` shows it).
    #[serde(default)]
    pub min_free_disk_mib: Option<u64>,
}

impl Default for DeliveryChecksConfig {
    fn default() -> Self {
        DeliveryChecksConfig {
            enabled: default_enabled(),
            max_time_since_success: None,
            max_oldest_record_age: None,
            max_queue_fill_ratio: None,
            min_free_disk_mib: None,
        }
    }
}

/// Writing the block opts in.
pub fn default_enabled() -> bool {
    true
}
