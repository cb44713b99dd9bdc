//! Extension configs: `file_storage` (where persistent queues live) and `health_check`;
//! `bearertokenauth` is in `bearertokenauth.rs`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::health_check::DeliveryChecksConfig;
use crate::duration;

/// A configured extension, by component type.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtensionConfig {
    /// `file_storage`: a directory for persistent queues.
    FileStorage(FileStorageConfig),
    /// `health_check`: an HTTP liveness endpoint.
    HealthCheck(HealthCheckConfig),
    /// `bearertokenauth`: tokens a receiver accepts.
    BearerTokenAuth(super::BearerTokenAuthConfig),
    /// `job_ledger`: per-job delivery counts.
    JobLedger(super::JobLedgerConfig),
}

/// `extensions.file_storage`.
///
/// `compaction` (bbolt-specific in otelcol) is accepted and ignored with a warning: otelspool's
/// queue deletes whole segment files once acknowledged, so there is nothing to compact.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStorageConfig {
    /// Directory holding the queue files.
    #[serde(default = "default_directory")]
    pub directory: PathBuf,
    /// fsync after every write batch. Defaults to `true`, unlike otelcol's `false`: without it,
    /// a machine crash can lose the backlog the queue exists to keep.
    #[serde(default = "default_fsync")]
    pub fsync: bool,
    /// How long to wait for the storage lock when opening.
    #[serde(default = "default_storage_timeout", with = "duration::required")]
    pub timeout: Duration,
    /// Create `directory` if it does not exist.
    #[serde(default = "default_create_directory")]
    pub create_directory: bool,
}

impl Default for FileStorageConfig {
    fn default() -> Self {
        FileStorageConfig {
            directory: default_directory(),
            fsync: default_fsync(),
            timeout: default_storage_timeout(),
            create_directory: default_create_directory(),
        }
    }
}

/// otelcol's default storage directory.
pub fn default_directory() -> PathBuf {
    PathBuf::from("/var/lib/otelcol/file_storage")
}

/// otelspool's default: fsync on (otelcol: off).
pub fn default_fsync() -> bool {
    true
}

/// otelcol's default lock timeout: 1s.
pub fn default_storage_timeout() -> Duration {
    Duration::from_secs(1)
}

/// Create the directory by default.
pub fn default_create_directory() -> bool {
    true
}

/// `extensions.health_check`.
///
/// `check_collector_pipeline` is accepted and ignored with a warning (deprecated in otelcol);
/// `check_delivery` is otelspool's working replacement.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// Listen address, `host:port`.
    #[serde(default = "default_health_endpoint")]
    pub endpoint: String,
    /// URL path answered.
    #[serde(default = "default_health_path")]
    pub path: String,
    /// Opt-in readiness checks on delivery (otelspool extension).
    #[serde(default)]
    pub check_delivery: Option<DeliveryChecksConfig>,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            endpoint: default_health_endpoint(),
            path: default_health_path(),
            check_delivery: None,
        }
    }
}

/// otelcol's default health endpoint.
pub fn default_health_endpoint() -> String {
    "localhost:13133".to_string()
}

/// otelcol's default health path.
pub fn default_health_path() -> String {
    "/".to_string()
}
