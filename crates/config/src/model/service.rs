//! `service:`: enabled extensions, pipelines and the collector's own telemetry.
//!
//! Pipeline ids are `logs`, `traces`, `metrics`, optionally with `/name`; other signals
//! (`profiles`) are refused. otelcol's `telemetry.metrics.readers` form with a Prometheus pull
//! exporter is rewritten to `address` before decoding (see `decode/service.rs`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use super::ComponentId;

/// `service:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Extensions to start, in order.
    #[serde(default)]
    pub extensions: Vec<ComponentId>,
    /// Pipelines by id; at least one is required.
    #[serde(default)]
    pub pipelines: BTreeMap<PipelineId, PipelineConfig>,
    /// Self-telemetry.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// The signal a pipeline carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignalKind {
    /// `logs`.
    Logs,
    /// `traces`.
    Traces,
    /// `metrics`.
    Metrics,
}

impl fmt::Display for SignalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignalKind::Logs => "logs",
            SignalKind::Traces => "traces",
            SignalKind::Metrics => "metrics",
        })
    }
}

/// A pipeline id: `logs`, `traces`, `metrics`, optionally `/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PipelineId {
    /// The signal.
    pub signal: SignalKind,
    /// The optional name after `/`.
    pub name: Option<String>,
}

impl fmt::Display for PipelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{}", self.signal, n),
            None => write!(f, "{}", self.signal),
        }
    }
}

impl FromStr for PipelineId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (sig, name) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let signal = match sig {
            "logs" => SignalKind::Logs,
            "traces" => SignalKind::Traces,
            "metrics" => SignalKind::Metrics,
            _ => {
                return Err(format!(
                    "unsupported pipeline signal {sig:?} in {s:?} (supported: logs, traces, metrics)"
                ));
            }
        };
        if let Some(n) = name
            && (n.is_empty() || n.chars().any(|c| c.is_whitespace() || c == '/'))
        {
            return Err(format!(
                "invalid pipeline id {s:?}: the name after '/' must be non-empty, without spaces or '/'"
            ));
        }
        Ok(PipelineId {
            signal,
            name: name.map(str::to_string),
        })
    }
}

impl<'de> Deserialize<'de> for PipelineId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|_| {
            serde::de::Error::invalid_value(
                serde::de::Unexpected::Str(&s),
                &"a pipeline id: logs, traces or metrics, optionally followed by /name",
            )
        })
    }
}

/// One pipeline: receivers → processors (in order) → exporters.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Receivers feeding the pipeline (at least one).
    #[serde(default)]
    pub receivers: Vec<ComponentId>,
    /// Processors, applied in order.
    #[serde(default)]
    pub processors: Vec<ComponentId>,
    /// Exporters fed by the pipeline (at least one).
    #[serde(default)]
    pub exporters: Vec<ComponentId>,
}

/// `service.telemetry`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Self-metrics.
    #[serde(default)]
    pub metrics: TelemetryMetricsConfig,
    /// Own logs.
    #[serde(default)]
    pub logs: TelemetryLogsConfig,
}

/// `service.telemetry.metrics`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryMetricsConfig {
    /// `basic`, `normal`, `detailed` or `none`.
    #[serde(default = "default_metrics_level")]
    pub level: String,
    /// Prometheus endpoint `host:port` (from `address`, or otelcol's `readers` pull form).
    #[serde(default = "default_metrics_address")]
    pub address: String,
}

impl Default for TelemetryMetricsConfig {
    fn default() -> Self {
        TelemetryMetricsConfig {
            level: default_metrics_level(),
            address: default_metrics_address(),
        }
    }
}

/// `service.telemetry.logs`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryLogsConfig {
    /// `debug`, `info`, `warn` or `error`; also zap's upper-case forms and `dpanic`, `panic`,
    /// `fatal` (which otelcol takes, and which mean `error` here).
    #[serde(default = "default_logs_level")]
    pub level: String,
    /// `console` or `json`.
    #[serde(default = "default_logs_encoding")]
    pub encoding: String,
}

impl TelemetryLogsConfig {
    /// The levels otelcol (zap) takes, as written.
    pub const LEVELS: &'static [&'static str] = &[
        "debug", "DEBUG", "info", "INFO", "warn", "WARN", "error", "ERROR", "dpanic", "DPANIC",
        "panic", "PANIC", "fatal", "FATAL",
    ];

    /// The `tracing` level `level` stands for: `debug`, `info`, `warn` or `error`.
    pub fn tracing_level(&self) -> &'static str {
        match self.level.as_str() {
            "debug" | "DEBUG" => "debug",
            "info" | "INFO" => "info",
            "warn" | "WARN" => "warn",
            _ => "error",
        }
    }
}

impl Default for TelemetryLogsConfig {
    fn default() -> Self {
        TelemetryLogsConfig {
            level: default_logs_level(),
            encoding: default_logs_encoding(),
        }
    }
}

/// otelcol's default metrics level.
pub fn default_metrics_level() -> String {
    "normal".to_string()
}

/// otelcol's default self-metrics address.
pub fn default_metrics_address() -> String {
    "localhost:8888".to_string()
}

/// otelcol's default log level.
pub fn default_logs_level() -> String {
    "info".to_string()
}

/// otelcol's default log encoding.
pub fn default_logs_encoding() -> String {
    "console".to_string()
}
