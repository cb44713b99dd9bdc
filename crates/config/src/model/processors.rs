//! Processor configs: `batch`, `memory_limiter`, `resource` and `attributes`.
//!
//! Only the attribute actions otelspool implements are accepted (`insert`, `update`, `upsert`,
//! `delete`); otelcol's `hash`, `extract` and `convert` are errors naming the action.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::duration;

/// A configured processor, by component type.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessorConfig {
    /// `batch`.
    Batch(BatchConfig),
    /// `memory_limiter`.
    MemoryLimiter(MemoryLimiterConfig),
    /// `resource`.
    Resource(ResourceConfig),
    /// `attributes`.
    Attributes(AttributesConfig),
}

/// `processors.batch`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Items that trigger sending a batch.
    #[serde(default = "default_send_batch_size")]
    pub send_batch_size: u32,
    /// Upper bound on a batch; 0 = no limit. Must be >= `send_batch_size` when set.
    #[serde(default)]
    pub send_batch_max_size: u32,
    /// Time after which a batch is sent regardless of size.
    #[serde(default = "default_batch_timeout", with = "duration::required")]
    pub timeout: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            send_batch_size: default_send_batch_size(),
            send_batch_max_size: 0,
            timeout: default_batch_timeout(),
        }
    }
}

/// otelcol's default batch size: 8192.
pub fn default_send_batch_size() -> u32 {
    8192
}

/// otelcol's default batch timeout: 200ms.
pub fn default_batch_timeout() -> Duration {
    Duration::from_millis(200)
}

/// `processors.memory_limiter`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryLimiterConfig {
    /// How often memory is measured; required and > 0.
    #[serde(with = "duration::required")]
    pub check_interval: Duration,
    /// Hard limit in MiB (this or `limit_percentage` is required).
    #[serde(default)]
    pub limit_mib: Option<u64>,
    /// Headroom below the limit in MiB (default: 20% of the limit); must be < the limit.
    #[serde(default)]
    pub spike_limit_mib: Option<u64>,
    /// Hard limit as a percentage of total memory, 1..=100.
    #[serde(default)]
    pub limit_percentage: Option<u32>,
    /// Headroom as a percentage, 1..=100, below `limit_percentage`.
    #[serde(default)]
    pub spike_limit_percentage: Option<u32>,
}

/// `processors.resource`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// Actions on resource attributes, applied in order.
    #[serde(default)]
    pub attributes: Vec<AttributeAction>,
}

/// `processors.attributes`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributesConfig {
    /// Actions on record attributes, applied in order.
    #[serde(default)]
    pub actions: Vec<AttributeAction>,
}

/// One attribute action.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeAction {
    /// Attribute key acted on.
    pub key: String,
    /// Literal value (for insert/update/upsert).
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    /// Copy the value of this attribute instead of a literal.
    #[serde(default)]
    pub from_attribute: Option<String>,
    /// What to do.
    pub action: ActionKind,
}

/// The attribute actions otelspool implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// Add the attribute only if absent.
    Insert,
    /// Change the attribute only if present.
    Update,
    /// Insert or update.
    Upsert,
    /// Remove the attribute.
    Delete,
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActionKind::Insert => "insert",
            ActionKind::Update => "update",
            ActionKind::Upsert => "upsert",
            ActionKind::Delete => "delete",
        })
    }
}

impl ActionKind {
    /// The names otelspool takes.
    pub const NAMES: &'static [&'static str] = &["insert", "update", "upsert", "delete"];
    /// otelcol's other actions, which otelspool does not implement.
    pub const OTELCOL_ONLY: &'static [&'static str] = &["hash", "extract", "convert"];
}

impl<'de> Deserialize<'de> for ActionKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "insert" => Ok(ActionKind::Insert),
            "update" => Ok(ActionKind::Update),
            "upsert" => Ok(ActionKind::Upsert),
            "delete" => Ok(ActionKind::Delete),
            _ => Err(serde::de::Error::unknown_variant(&s, Self::NAMES)),
        }
    }
}
