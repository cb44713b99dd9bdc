//! Exporter configs: `otlp` (gRPC), `otlphttp` and `debug`.
//!
//! otelcol's `logging` exporter is refused with a message saying it was renamed `debug`.
//! Unsupported otelcol keys (`balancer_name`, `keepalive`, `auth`, `write_buffer_size`,
//! `tls.cert_file`, `tls.key_file`, `sending_queue.sizer`/`batch`) are errors naming the key.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::exporter_helper::{
    Compression, CompressionParams, RetryConfig, SendingQueueConfig, TlsClientConfig, string_map,
};
use crate::duration;

/// A configured exporter, by component type.
#[derive(Debug, Clone, PartialEq)]
pub enum ExporterConfig {
    /// `otlp`: OTLP/gRPC.
    Otlp(OtlpExporterConfig),
    /// `otlphttp`: OTLP/HTTP (protobuf).
    OtlpHttp(OtlpHttpExporterConfig),
    /// `debug`: writes to the console.
    Debug(DebugExporterConfig),
}

impl ExporterConfig {
    /// The exporter's queue settings.
    pub fn sending_queue(&self) -> &SendingQueueConfig {
        match self {
            ExporterConfig::Otlp(c) => &c.sending_queue,
            ExporterConfig::OtlpHttp(c) => &c.sending_queue,
            ExporterConfig::Debug(c) => &c.sending_queue,
        }
    }

    /// The exporter's retry settings.
    pub fn retry_on_failure(&self) -> &RetryConfig {
        match self {
            ExporterConfig::Otlp(c) => &c.retry_on_failure,
            ExporterConfig::OtlpHttp(c) => &c.retry_on_failure,
            ExporterConfig::Debug(c) => &c.retry_on_failure,
        }
    }
}

/// `exporters.otlp`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpExporterConfig {
    /// `host:port`, optionally with an `http://` or `https://` scheme. Required.
    pub endpoint: String,
    /// Extra gRPC metadata sent with every request.
    #[serde(default, deserialize_with = "string_map")]
    pub headers: BTreeMap<String, String>,
    /// Request compression (default gzip).
    #[serde(default)]
    pub compression: Compression,
    /// The compression's level (otelcol's `compression_params`).
    #[serde(default)]
    pub compression_params: CompressionParams,
    /// Per-request deadline.
    #[serde(default = "default_otlp_timeout", with = "duration::required")]
    pub timeout: Duration,
    /// TLS settings.
    #[serde(default)]
    pub tls: TlsClientConfig,
    /// Queue settings.
    #[serde(default)]
    pub sending_queue: SendingQueueConfig,
    /// Retry settings.
    #[serde(default)]
    pub retry_on_failure: RetryConfig,
}

/// `exporters.otlphttp`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpHttpExporterConfig {
    /// Base URL; `/v1/logs` etc. are appended. Required unless every needed per-signal
    /// endpoint is set.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Full URL for logs (overrides `endpoint`).
    #[serde(default)]
    pub logs_endpoint: Option<String>,
    /// Full URL for traces (overrides `endpoint`).
    #[serde(default)]
    pub traces_endpoint: Option<String>,
    /// Full URL for metrics (overrides `endpoint`).
    #[serde(default)]
    pub metrics_endpoint: Option<String>,
    /// Extra HTTP headers sent with every request.
    #[serde(default, deserialize_with = "string_map")]
    pub headers: BTreeMap<String, String>,
    /// Request compression (default gzip).
    #[serde(default)]
    pub compression: Compression,
    /// The compression's level (otelcol's `compression_params`).
    #[serde(default)]
    pub compression_params: CompressionParams,
    /// Per-request timeout (otlphttp's default: 30s).
    #[serde(default = "default_otlphttp_timeout", with = "duration::required")]
    pub timeout: Duration,
    /// TLS settings.
    #[serde(default)]
    pub tls: TlsClientConfig,
    /// Queue settings.
    #[serde(default)]
    pub sending_queue: SendingQueueConfig,
    /// Retry settings.
    #[serde(default)]
    pub retry_on_failure: RetryConfig,
}

/// `exporters.debug`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebugExporterConfig {
    /// How much to print.
    #[serde(default)]
    pub verbosity: Verbosity,
    /// Items printed per second before sampling starts (otelcol default 2).
    #[serde(default = "default_sampling_initial")]
    pub sampling_initial: u64,
    /// After the initial ones, print every Nth item (otelcol default 1).
    #[serde(default = "default_sampling_thereafter")]
    pub sampling_thereafter: u64,
    /// Queue settings.
    #[serde(default)]
    pub sending_queue: SendingQueueConfig,
    /// Retry settings.
    #[serde(default)]
    pub retry_on_failure: RetryConfig,
}

impl Default for DebugExporterConfig {
    fn default() -> Self {
        DebugExporterConfig {
            verbosity: Verbosity::Basic,
            sampling_initial: default_sampling_initial(),
            sampling_thereafter: default_sampling_thereafter(),
            sending_queue: SendingQueueConfig::default(),
            retry_on_failure: RetryConfig::default(),
        }
    }
}

/// Debug exporter verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// One summary line per batch.
    #[default]
    Basic,
    /// One line per record.
    Normal,
    /// Every field.
    Detailed,
}

impl Verbosity {
    /// The names it takes.
    pub const NAMES: &'static [&'static str] = &["basic", "normal", "detailed"];
}

impl<'de> Deserialize<'de> for Verbosity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "basic" => Ok(Verbosity::Basic),
            "normal" => Ok(Verbosity::Normal),
            "detailed" => Ok(Verbosity::Detailed),
            _ => Err(serde::de::Error::unknown_variant(&s, Self::NAMES)),
        }
    }
}

/// otelcol's default `otlp` exporter timeout: 5s.
pub fn default_otlp_timeout() -> Duration {
    Duration::from_secs(5)
}

/// otelcol's default `otlphttp` exporter timeout: 30s.
pub fn default_otlphttp_timeout() -> Duration {
    Duration::from_secs(30)
}

/// otelcol's default `sampling_initial`: 2.
pub fn default_sampling_initial() -> u64 {
    2
}

/// otelcol's default `sampling_thereafter`: 1.
pub fn default_sampling_thereafter() -> u64 {
    1
}
