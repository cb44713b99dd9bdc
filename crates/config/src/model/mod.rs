//! The typed configuration model: one file per section, plus [`ComponentId`] and [`Config`].
//!
//! Every struct mirrors otelcol's YAML keys one to one, rejects unknown keys
//! (`deny_unknown_fields`) and spells its defaults as named `default_*` functions. Components
//! are closed enums: a type otelspool does not implement is an error, never ignored.

pub mod bearertokenauth;
pub mod exporter_helper;
pub mod exporters;
pub mod extensions;
pub mod health_check;
pub mod job_ledger;
pub mod processors;
pub mod receiver_security;
pub mod receivers;
pub mod service;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

pub use bearertokenauth::{BearerTokenAuthConfig, Secret};
pub use exporter_helper::{
    Compression, CompressionParams, RetryConfig, SendingQueueConfig, TlsClientConfig, WhenFull,
};
pub use exporters::{
    DebugExporterConfig, ExporterConfig, OtlpExporterConfig, OtlpHttpExporterConfig, Verbosity,
};
pub use extensions::{ExtensionConfig, FileStorageConfig, HealthCheckConfig};
pub use health_check::DeliveryChecksConfig;
pub use job_ledger::JobLedgerConfig;
pub use processors::{
    ActionKind, AttributeAction, AttributesConfig, BatchConfig, MemoryLimiterConfig,
    ProcessorConfig, ResourceConfig,
};
pub use receiver_security::{ServerAuthConfig, TlsServerConfig};
pub use receivers::{
    GrpcServerConfig, HttpServerConfig, OtlpProtocols, OtlpReceiverConfig, ReceiverConfig,
};
pub use service::{
    PipelineConfig, PipelineId, ServiceConfig, SignalKind, TelemetryConfig, TelemetryLogsConfig,
    TelemetryMetricsConfig,
};

/// A whole, validated otelspool configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `receivers:` by id.
    pub receivers: BTreeMap<ComponentId, ReceiverConfig>,
    /// `processors:` by id.
    pub processors: BTreeMap<ComponentId, ProcessorConfig>,
    /// `exporters:` by id.
    pub exporters: BTreeMap<ComponentId, ExporterConfig>,
    /// `extensions:` by id.
    pub extensions: BTreeMap<ComponentId, ExtensionConfig>,
    /// `service:` (enabled extensions, pipelines, self-telemetry).
    pub service: ServiceConfig,
}

/// A component id as otelcol writes it: `type` or `type/name` (`otlp/dash0`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComponentId {
    /// The component type (`otlp`, `file_storage`).
    pub kind: String,
    /// The optional instance name after `/` (`dash0`).
    pub name: Option<String>,
}

impl ComponentId {
    /// An id without a name.
    pub fn new(kind: &str) -> Self {
        ComponentId {
            kind: kind.to_string(),
            name: None,
        }
    }

    /// An id with a name.
    pub fn with_name(kind: &str, name: &str) -> Self {
        ComponentId {
            kind: kind.to_string(),
            name: Some(name.to_string()),
        }
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{}/{}", self.kind, name),
            None => f.write_str(&self.kind),
        }
    }
}

fn valid_kind(kind: &str) -> bool {
    let mut chars = kind.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What is wrong with a component id; says so without quoting the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ComponentIdError {
    /// The part before `/` is not a valid type.
    #[error("the type must be letters, digits and '_' (e.g. \"otlp\" or \"otlp/dash0\")")]
    Kind,
    /// The part after `/` is empty or holds spaces or `/`.
    #[error("the name after '/' must be non-empty, without spaces or '/'")]
    Name,
}

impl ComponentId {
    /// Parses `type` or `type/name`.
    ///
    /// # Errors
    /// What is wrong, without the id (which may come from an environment variable).
    pub fn parse_id(s: &str) -> Result<Self, ComponentIdError> {
        let (kind, name) = match s.split_once('/') {
            Some((k, n)) => (k, Some(n)),
            None => (s, None),
        };
        if !valid_kind(kind) {
            return Err(ComponentIdError::Kind);
        }
        if let Some(n) = name
            && (n.is_empty() || n.chars().any(|c| c.is_whitespace() || c == '/'))
        {
            return Err(ComponentIdError::Name);
        }
        Ok(ComponentId {
            kind: kind.to_string(),
            name: name.map(str::to_string),
        })
    }
}

impl FromStr for ComponentId {
    type Err = String;

    /// Like [`ComponentId::parse_id`], with the id quoted in the message.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_id(s).map_err(|e| format!("invalid component id {s:?}: {e}"))
    }
}

/// A component id, as serde's "expected" text (which never quotes the value).
struct ExpectedId(ComponentIdError);

impl serde::de::Expected for ExpectedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a component id: {}", self.0)
    }
}

impl<'de> Deserialize<'de> for ComponentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse_id(&s).map_err(|e| {
            serde::de::Error::invalid_value(serde::de::Unexpected::Str(&s), &ExpectedId(e))
        })
    }
}

/// Deserializes `null` as the type's default (otelcol's `grpc:` with no body means "enabled").
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(Option::<T>::deserialize(d)?.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: ids with and without names, and malformed ids.
    /// Guarantees: parsing and Display round-trip; bad ids are refused with the id named.
    #[test]
    fn component_ids() {
        let id: ComponentId = "otlp/dash0".parse().expect("valid");
        assert_eq!(id, ComponentId::with_name("otlp", "dash0"));
        assert_eq!(id.to_string(), "otlp/dash0");
        let id: ComponentId = "file_storage".parse().expect("valid");
        assert_eq!(id, ComponentId::new("file_storage"));
        assert_eq!(id.to_string(), "file_storage");
        for bad in ["", "otlp/", "/x", "ot lp", "1otlp", "otlp/a b", "otlp/a/b"] {
            let err = bad.parse::<ComponentId>().expect_err(bad);
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        assert!(ComponentId::new("a") < ComponentId::with_name("a", "b"));
    }
}
