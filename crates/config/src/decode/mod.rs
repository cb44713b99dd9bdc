//! From the YAML tree (as `serde_json::Value`) to the typed [`Config`], collecting every error.
//!
//! Components are dispatched by the type in their id (`otlp/dash0` → `otlp`), so an unknown
//! type is reported with the list of supported ones. Before serde runs, a small table of otelcol
//! keys that otelspool knows but does not implement is applied ([`rules`]): some are accepted
//! and ignored with a warning, the rest are errors with a specific message. Then each component
//! is decoded by [`retry::decode_value`], which reports every bad key in one pass. An empty
//! nested key (`tls:` with no value) takes its defaults, as in otelcol.
//!
//! The submodules: [`rules`] (the unsupported-key table), [`service`] (the `service:` section's
//! rewrites before decoding), [`retry`] (decode, record, remove, retry), [`de`] and [`error`]
//! (a serde deserializer whose errors are typed) and [`tree`] (path operations on the
//! `serde_json::Value` tree).

mod de;
mod error;
mod retry;
mod rules;
mod service;
mod tree;

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::Diagnostics;
use crate::model::{
    ComponentId, Config, ExporterConfig, ExtensionConfig, ProcessorConfig, ReceiverConfig,
    ServiceConfig,
};
use crate::yaml::Seg;
use retry::decode_value;
use rules::{
    BEARERTOKENAUTH_RULES, EXPORTER_COMMON_RULES, FILE_STORAGE_RULES, HEALTH_CHECK_RULES,
    OTLP_EXPORTER_RULES, OTLP_RECEIVER_RULES, Rule, apply_rules,
};
use service::prepare_service;
use tree::kind;

const TOP_LEVEL_KEYS: &[&str] = &[
    "receivers",
    "processors",
    "exporters",
    "extensions",
    "service",
];
const RECEIVER_TYPES: &[&str] = &["otlp"];
const PROCESSOR_TYPES: &[&str] = &["batch", "memory_limiter", "resource", "attributes"];
const EXPORTER_TYPES: &[&str] = &["otlp", "otlphttp", "debug"];
const EXTENSION_TYPES: &[&str] = &[
    "file_storage",
    "health_check",
    "bearertokenauth",
    "job_ledger",
];

/// The decoded config plus the ids of components that were defined but failed to decode
/// (so that references to them are not reported a second time as undefined).
pub(crate) struct Decoded {
    /// Everything that decoded.
    pub(crate) config: Config,
    /// `(section, id)` of components present in the file that did not decode.
    pub(crate) broken: BTreeSet<(&'static str, ComponentId)>,
}

/// Decodes the whole document, recording problems in `diags`.
pub(crate) fn decode(root: Value, diags: &mut Diagnostics<'_>) -> Decoded {
    let mut out = Decoded {
        config: Config {
            receivers: Default::default(),
            processors: Default::default(),
            exporters: Default::default(),
            extensions: Default::default(),
            service: ServiceConfig::default(),
        },
        broken: BTreeSet::new(),
    };
    let mut top = match root {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => {
            diags.error(
                "",
                format!(
                    "the configuration must be a mapping, found {}",
                    kind(&other)
                ),
            );
            return out;
        }
    };
    for key in top.keys() {
        if key == "connectors" {
            diags.error(key, "connectors are not supported by otelspool");
        } else if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
            diags.error(key, unknown_key_message(key, TOP_LEVEL_KEYS));
        }
    }
    for (id, v) in section(&mut top, "receivers", RECEIVER_TYPES, diags) {
        let path = format!("receivers.{id}");
        let decoded = match id.kind.as_str() {
            "otlp" => {
                decode_component(v, &path, OTLP_RECEIVER_RULES, diags).map(ReceiverConfig::Otlp)
            }
            _ => continue,
        };
        match decoded {
            Some(c) => {
                out.config.receivers.insert(id, c);
            }
            None => {
                out.broken.insert(("receivers", id));
            }
        }
    }
    for (id, v) in section(&mut top, "processors", PROCESSOR_TYPES, diags) {
        let path = format!("processors.{id}");
        let decoded = match id.kind.as_str() {
            "batch" => decode_component(v, &path, &[], diags).map(ProcessorConfig::Batch),
            "memory_limiter" => {
                decode_component(v, &path, &[], diags).map(ProcessorConfig::MemoryLimiter)
            }
            "resource" => decode_component(v, &path, &[], diags).map(ProcessorConfig::Resource),
            "attributes" => decode_component(v, &path, &[], diags).map(ProcessorConfig::Attributes),
            _ => continue,
        };
        match decoded {
            Some(c) => {
                out.config.processors.insert(id, c);
            }
            None => {
                out.broken.insert(("processors", id));
            }
        }
    }
    for (id, v) in section(&mut top, "exporters", EXPORTER_TYPES, diags) {
        let path = format!("exporters.{id}");
        let mut value = v;
        apply_rules(&mut value, &path, EXPORTER_COMMON_RULES, diags);
        let decoded = match id.kind.as_str() {
            "otlp" => {
                decode_component(value, &path, OTLP_EXPORTER_RULES, diags).map(ExporterConfig::Otlp)
            }
            "otlphttp" => decode_component(value, &path, &[], diags).map(ExporterConfig::OtlpHttp),
            "debug" => decode_component(value, &path, &[], diags).map(ExporterConfig::Debug),
            _ => continue,
        };
        match decoded {
            Some(c) => {
                out.config.exporters.insert(id, c);
            }
            None => {
                out.broken.insert(("exporters", id));
            }
        }
    }
    for (id, v) in section(&mut top, "extensions", EXTENSION_TYPES, diags) {
        let path = format!("extensions.{id}");
        let decoded = match id.kind.as_str() {
            "file_storage" => decode_component(v, &path, FILE_STORAGE_RULES, diags)
                .map(ExtensionConfig::FileStorage),
            "health_check" => decode_component(v, &path, HEALTH_CHECK_RULES, diags)
                .map(ExtensionConfig::HealthCheck),
            "bearertokenauth" => decode_component(v, &path, BEARERTOKENAUTH_RULES, diags)
                .map(ExtensionConfig::BearerTokenAuth),
            "job_ledger" => decode_component(v, &path, &[], diags).map(ExtensionConfig::JobLedger),
            _ => continue,
        };
        match decoded {
            Some(c) => {
                out.config.extensions.insert(id, c);
            }
            None => {
                out.broken.insert(("extensions", id));
            }
        }
    }
    let mut service = match top.remove("service") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v) => v,
    };
    prepare_service(&mut service, diags);
    if let Some(s) = decode_value::<ServiceConfig>(service, &[Seg::Key("service".into())], diags) {
        out.config.service = s;
    }
    out
}

/// Takes one component section out of the document, checking ids and types.
fn section(
    top: &mut Map<String, Value>,
    name: &'static str,
    supported: &[&str],
    diags: &mut Diagnostics<'_>,
) -> Vec<(ComponentId, Value)> {
    let entries = match top.remove(name) {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Object(m)) => m,
        Some(other) => {
            diags.error(
                name,
                format!("expected a mapping of components, found {}", kind(&other)),
            );
            return Vec::new();
        }
    };
    let singular = name.trim_end_matches('s');
    let mut out = Vec::new();
    for (key, value) in entries {
        let path = format!("{name}.{key}");
        let id: ComponentId = match key.parse() {
            Ok(id) => id,
            Err(e) => {
                diags.error(&path, e);
                continue;
            }
        };
        if name == "exporters" && id.kind == "logging" {
            diags.error(
                &path,
                "the \"logging\" exporter was renamed \"debug\" in otelcol; use \"debug\"",
            );
            continue;
        }
        if !supported.contains(&id.kind.as_str()) {
            diags.error(
                &path,
                format!(
                    "unknown {singular} type {:?} (supported: {})",
                    id.kind,
                    supported.join(", ")
                ),
            );
            continue;
        }
        let value = match value {
            Value::Null => Value::Object(Map::new()),
            v => v,
        };
        out.push((id, value));
    }
    out
}

/// Applies the key rules, then decodes one component.
fn decode_component<T: DeserializeOwned>(
    mut value: Value,
    path: &str,
    rules: &[Rule],
    diags: &mut Diagnostics<'_>,
) -> Option<T> {
    apply_rules(&mut value, path, rules, diags);
    let (section, id) = path.split_once('.').unwrap_or((path, ""));
    decode_value(
        value,
        &[Seg::Key(section.into()), Seg::Key(id.into())],
        diags,
    )
}

fn unknown_key_message(key: &str, valid: &[&str]) -> String {
    format!("unknown key {key:?} (valid keys: {})", valid.join(", "))
}
