//! Settings shared by every exporter, named after otelcol's exporterhelper: compression, TLS,
//! `sending_queue` and `retry_on_failure`.
//!
//! Differences from otelcol, all on the side of not losing data: `sending_queue` has two
//! otelspool extensions (`max_size_mib`, `when_full`), and `retry_on_failure.max_elapsed_time`
//! keeps "not set" apart from any value so that the runtime can retry a persistent queue
//! forever by default instead of deleting data after otelcol's 300s.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::ComponentId;
use crate::duration;

/// Payload compression for exporters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// `gzip` (otelcol's default).
    #[default]
    Gzip,
    /// `zstd`.
    Zstd,
    /// `none` or `""`.
    None,
}

impl Compression {
    /// The names otelspool takes (`""` is also `none`).
    pub const NAMES: &'static [&'static str] = &["gzip", "zstd", "none"];
    /// otelcol's other compressions, which otelspool does not implement.
    pub const OTELCOL_ONLY: &'static [&'static str] =
        &["snappy", "x-snappy-framed", "zlib", "deflate", "lz4"];
}

/// `compression_params:` as otelcol's `configcompression.CompressionParams`: the level of the
/// chosen compression. `level: 0` or no key means otelspool's default for it (gzip 1, zstd
/// 1; otelcol's gzip default is 6, which `-1` selects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionParams {
    /// gzip: -1 (zlib's default, 6), 0 (otelspool's default, 1) or 1 (fastest) to 9 (smallest);
    /// zstd: any level, clamped to what the library supports (1 fastest ... 22; negative
    /// levels are zstd's faster-than-1 modes).
    #[serde(default)]
    pub level: i32,
}

impl CompressionParams {
    /// Why `self` does not fit `compression`, or `None` when it does. The rules are
    /// otelcol's `ValidateParams`, except gzip's `-2` (Huffman only), which otelspool's gzip
    /// library has no mode for.
    pub fn invalid_for(&self, compression: Compression) -> Option<String> {
        match (compression, self.level) {
            (Compression::Gzip, -1..=9) | (Compression::Zstd, _) | (_, 0) => None,
            (Compression::Gzip, -2) => Some(
                "gzip level -2 (Huffman only) is not supported by otelspool; use 1 (fastest) to 9"
                    .to_string(),
            ),
            (Compression::Gzip, level) => Some(format!(
                "gzip level {level} is out of range: use -1 (default), 0 (none) or 1 to 9"
            )),
            (Compression::None, level) => Some(format!(
                "level {level} needs a compression (gzip or zstd); compression is none"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Compression {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        match s.as_str() {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            "none" | "" => Ok(Compression::None),
            _ => Err(serde::de::Error::unknown_variant(&s, Self::NAMES)),
        }
    }
}

/// `tls:` for a client (exporter) connection.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsClientConfig {
    /// Use plaintext instead of TLS.
    #[serde(default)]
    pub insecure: bool,
    /// PEM file with the CA certificates to trust (default: system roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Do not verify the server certificate (testing only).
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Name to verify the server certificate against instead of the endpoint host.
    #[serde(default)]
    pub server_name_override: Option<String>,
}

/// What a full queue does with new data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Push back on the receivers (refuse with a retryable status). Lossless.
    #[default]
    Block,
    /// Drop the oldest queued data to make room; counted in metrics.
    DropOldest,
}

impl WhenFull {
    /// The names it takes.
    pub const NAMES: &'static [&'static str] = &["block", "drop_oldest"];
}

impl<'de> Deserialize<'de> for WhenFull {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "block" => Ok(WhenFull::Block),
            "drop_oldest" => Ok(WhenFull::DropOldest),
            _ => Err(serde::de::Error::unknown_variant(&s, Self::NAMES)),
        }
    }
}

/// `sending_queue:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendingQueueConfig {
    /// Queue before sending (otherwise send inline).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Concurrent senders draining the queue.
    #[serde(default = "default_num_consumers")]
    pub num_consumers: usize,
    /// Maximum queued requests. `None` = not set: the runtime uses otelcol's 1000 for an
    /// in-memory queue and [`default_persistent_queue_size`] for a persistent one, whose
    /// entries are client requests before batching and whose real bound is `max_size_mib`.
    #[serde(default)]
    pub queue_size: Option<u64>,
    /// A `file_storage` extension making the queue persistent; `None` = in memory.
    #[serde(default)]
    pub storage: Option<ComponentId>,
    /// otelspool extension: cap on the queue's disk use, in MiB.
    #[serde(default = "default_max_size_mib")]
    pub max_size_mib: u64,
    /// otelspool extension: what happens when the queue is full.
    #[serde(default)]
    pub when_full: WhenFull,
}

impl Default for SendingQueueConfig {
    fn default() -> Self {
        SendingQueueConfig {
            enabled: true,
            num_consumers: default_num_consumers(),
            queue_size: None,
            storage: None,
            max_size_mib: default_max_size_mib(),
            when_full: WhenFull::Block,
        }
    }
}

/// `retry_on_failure:`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Retry retryable failures.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// First backoff.
    #[serde(default = "default_initial_interval", with = "duration::required")]
    pub initial_interval: Duration,
    /// Largest backoff.
    #[serde(default = "default_max_interval", with = "duration::required")]
    pub max_interval: Duration,
    /// Backoff growth factor.
    #[serde(default = "default_multiplier")]
    pub multiplier: f64,
    /// Jitter, 0..=1.
    #[serde(default = "default_randomization_factor")]
    pub randomization_factor: f64,
    /// Give up after this long. `None` = not set by the user (the runtime never gives up, unlike
    /// otelcol's 300s default); `Some(ZERO)` = never give up.
    #[serde(default, with = "duration::optional")]
    pub max_elapsed_time: Option<Duration>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            enabled: true,
            initial_interval: default_initial_interval(),
            max_interval: default_max_interval(),
            multiplier: default_multiplier(),
            randomization_factor: default_randomization_factor(),
            max_elapsed_time: None,
        }
    }
}

fn default_true() -> bool {
    true
}

/// otelcol's default number of queue consumers: 10.
pub fn default_num_consumers() -> usize {
    10
}

/// otelcol's default queue size: 1000 requests.
pub fn default_queue_size() -> u64 {
    1000
}

/// Default entry limit of a persistent queue: 1,000,000 requests (about 48 MiB of index at
/// the limit); the byte cap `max_size_mib` is what bounds it in practice.
pub fn default_persistent_queue_size() -> u64 {
    1_000_000
}

/// Default disk cap for a persistent queue: 512 MiB.
pub fn default_max_size_mib() -> u64 {
    512
}

/// otelcol's default first backoff: 5s.
pub fn default_initial_interval() -> Duration {
    Duration::from_secs(5)
}

/// otelcol's default largest backoff: 30s.
pub fn default_max_interval() -> Duration {
    Duration::from_secs(30)
}

/// otelcol's default backoff multiplier: 1.5.
pub fn default_multiplier() -> f64 {
    1.5
}

/// otelcol's default jitter: 0.5.
pub fn default_randomization_factor() -> f64 {
    0.5
}

/// Deserializes `headers:`: scalar values become strings (`X-Tenant: 42` or an env value such
/// as `${env:TENANT}` that happens to be a number is sent as `"42"`), nested values are errors.
pub(crate) fn string_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, String>, D::Error> {
    let raw = Option::<std::collections::BTreeMap<String, serde_json::Value>>::deserialize(d)?;
    raw.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let s = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                serde_json::Value::Bool(_) | serde_json::Value::Number(_) => v.to_string(),
                _ => {
                    return Err(serde::de::Error::custom(format!(
                        "header {k:?} must have a text value, not a list or mapping"
                    )));
                }
            };
            Ok((k, s))
        })
        .collect()
}
