//! The three OTLP signals and the names, paths and labels each one goes by.

use std::fmt;

/// One OTLP signal type. Every payload in the pipeline is an encoded
/// `Export{Logs,Trace,Metrics}ServiceRequest` of exactly one signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// `opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest`.
    Logs,
    /// `opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest`.
    Traces,
    /// `opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest`.
    Metrics,
}

impl Signal {
    /// All signals, in a fixed order: `ALL[s.index()] == s`.
    pub const ALL: [Signal; 3] = [Signal::Logs, Signal::Traces, Signal::Metrics];

    /// The number of signals, the length of a per-signal array.
    pub const COUNT: usize = Signal::ALL.len();

    /// This signal's position in [`Signal::ALL`], for per-signal arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The pipeline type name as otelcol spells it (`logs`, `traces`, `metrics`).
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
        }
    }

    /// The gRPC method path of the OTLP `Export` call for this signal.
    pub fn grpc_path(self) -> &'static str {
        match self {
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        }
    }

    /// The OTLP/HTTP path for this signal (`/v1/logs`, ...).
    pub fn http_path(self) -> &'static str {
        match self {
            Signal::Logs => "/v1/logs",
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
        }
    }

    /// The item noun otelcol uses in metric names (`log_records`, `spans`, `metric_points`).
    pub fn item_noun(self) -> &'static str {
        match self {
            Signal::Logs => "log_records",
            Signal::Traces => "spans",
            Signal::Metrics => "metric_points",
        }
    }

    /// Parses a pipeline type name (`logs`, `traces`, `metrics`).
    pub fn parse(name: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: every signal's index is used to address per-signal arrays.
    /// Guarantees: the index is the signal's position in `ALL`, so arrays built by iterating
    /// `ALL` line up with lookups by `index()`.
    #[test]
    fn index_is_the_position_in_all() {
        for (i, s) in Signal::ALL.into_iter().enumerate() {
            assert_eq!(s.index(), i, "{s}");
        }
        assert_eq!(Signal::COUNT, 3);
    }
}
