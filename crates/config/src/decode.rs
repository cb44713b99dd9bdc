//! From the YAML tree (as `serde_json::Value`) to the typed [`Config`], collecting every error.
//!
//! Components are dispatched by the type in their id (`otlp/dash0` → `otlp`), so an unknown
//! type is reported with the list of supported ones. Before serde runs, a small table of otelcol
//! keys that otelspool knows but does not implement is applied: some are accepted and ignored
//! with a warning, the rest are errors with a specific message. Then serde decodes with
//! `serde_path_to_error`; on each failure the error is recorded with its key path, the offending
//! key is removed from the tree and decoding is retried (at most [`MAX_ATTEMPTS`] times), so one
//! pass reports every unknown key and bad value instead of only the first. An empty nested key
//! (`tls:` with no value) takes its defaults, as in otelcol.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::Diagnostics;
use crate::model::{
    ComponentId, Config, ExporterConfig, ExtensionConfig, PipelineId, ProcessorConfig,
    ReceiverConfig, ServiceConfig,
};
use crate::yaml::{Seg, path_string};

/// Upper bound on decode retries for one component (each retry removes one bad key).
const MAX_ATTEMPTS: usize = 64;

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
const EXTENSION_TYPES: &[&str] = &["file_storage", "health_check"];

/// What to do with an otelcol key that otelspool does not implement.
enum Rule {
    /// Accept, ignore, and warn with this reason.
    Warn(&'static str, &'static str),
    /// Refuse with this reason.
    Error(&'static str, &'static str),
}

const UNSUPPORTED: &str = "is not supported by otelspool";
const CLIENT_CERTS: &str = "client certificates (mTLS) are not supported by otelspool yet";
const BLOCKING: &str =
    "is ignored: otelspool always blocks when the queue is full unless when_full: drop_oldest";

const OTLP_RECEIVER_RULES: &[Rule] = &[
    Rule::Warn(
        "protocols.grpc.include_metadata",
        "is accepted but ignored by otelspool",
    ),
    Rule::Warn(
        "protocols.http.include_metadata",
        "is accepted but ignored by otelspool",
    ),
    Rule::Warn(
        "protocols.http.cors",
        "is accepted but ignored by otelspool",
    ),
];
const EXPORTER_COMMON_RULES: &[Rule] = &[
    Rule::Error("tls.cert_file", CLIENT_CERTS),
    Rule::Error("tls.key_file", CLIENT_CERTS),
    Rule::Error("tls.cert_pem", CLIENT_CERTS),
    Rule::Error("tls.key_pem", CLIENT_CERTS),
    Rule::Error("sending_queue.sizer", UNSUPPORTED),
    Rule::Error("sending_queue.batch", UNSUPPORTED),
    Rule::Warn("sending_queue.blocking", BLOCKING),
    Rule::Error("auth", UNSUPPORTED),
];
const OTLP_EXPORTER_RULES: &[Rule] = &[
    Rule::Error("balancer_name", UNSUPPORTED),
    Rule::Error("keepalive", UNSUPPORTED),
    Rule::Error("write_buffer_size", UNSUPPORTED),
];
const FILE_STORAGE_RULES: &[Rule] = &[Rule::Warn(
    "compaction",
    "is accepted but ignored: otelspool's queue deletes whole segment files, nothing to compact",
)];
const HEALTH_CHECK_RULES: &[Rule] = &[Rule::Warn(
    "check_collector_pipeline",
    "is accepted but ignored (deprecated in otelcol)",
)];

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

fn apply_rules(value: &mut Value, base: &str, rules: &[Rule], diags: &mut Diagnostics<'_>) {
    for rule in rules {
        let (rel, reason, is_error) = match rule {
            Rule::Warn(p, r) => (*p, *r, false),
            Rule::Error(p, r) => (*p, *r, true),
        };
        let segs: Vec<Seg> = rel.split('.').map(|k| Seg::Key(k.to_string())).collect();
        if remove_at(value, &segs) {
            let path = format!("{base}.{rel}");
            let key = rel.rsplit('.').next().unwrap_or(rel);
            let message = format!("{key:?} {reason}");
            if is_error {
                diags.error(&path, message);
            } else {
                diags.warn(&path, message);
            }
        }
    }
}

/// Rewrites otelcol's `telemetry.metrics.readers` pull form to `address`, and drops pipeline
/// keys that are not valid pipeline ids (reporting them).
fn prepare_service(service: &mut Value, diags: &mut Diagnostics<'_>) {
    if let Some(Value::Object(pipelines)) = service.get_mut("pipelines") {
        let bad: Vec<String> = pipelines
            .keys()
            .filter(|k| k.parse::<PipelineId>().is_err())
            .cloned()
            .collect();
        for key in bad {
            if let Err(e) = key.parse::<PipelineId>() {
                diags.error(&format!("service.pipelines.{key}"), e);
            }
            pipelines.remove(&key);
        }
    }
    let Some(Value::Object(metrics)) = service
        .get_mut("telemetry")
        .and_then(|t| t.get_mut("metrics"))
    else {
        return;
    };
    let Some(readers) = metrics.remove("readers") else {
        return;
    };
    let path = "service.telemetry.metrics.readers";
    if metrics.contains_key("address") {
        diags.error(path, "set either \"address\" or \"readers\", not both");
        return;
    }
    match prometheus_address(&readers, path, diags) {
        Ok(address) => {
            metrics.insert("address".into(), Value::String(address));
        }
        Err(message) => diags.error(path, message),
    }
}

fn prometheus_address(
    readers: &Value,
    path: &str,
    diags: &mut Diagnostics<'_>,
) -> Result<String, String> {
    const ONLY: &str = "otelspool supports exactly one reader of the form pull: {exporter: {prometheus: {host, port}}}";
    let [reader] = readers.as_array().map(Vec::as_slice).unwrap_or_default() else {
        return Err(ONLY.into());
    };
    let Some(Value::Object(prom)) = reader.pointer("/pull/exporter/prometheus") else {
        return Err(ONLY.into());
    };
    for key in prom.keys() {
        if !matches!(key.as_str(), "host" | "port") {
            diags.warn(
                &format!("{path}[0].pull.exporter.prometheus.{key}"),
                format!("{key:?} is accepted but ignored by otelspool"),
            );
        }
    }
    let host = match prom.get("host") {
        None | Some(Value::Null) => "localhost".to_string(),
        Some(Value::String(h)) => h.clone(),
        Some(_) => return Err("prometheus host must be a string".into()),
    };
    let port = match prom.get("port") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => return Err("prometheus port is required".into()),
    };
    Ok(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// Decodes `value` as `T`; on each failure records it, removes the offending key, and retries.
pub(crate) fn decode_value<T: DeserializeOwned>(
    mut value: Value,
    base: &[Seg],
    diags: &mut Diagnostics<'_>,
) -> Option<T> {
    let mut removed: Vec<Vec<Seg>> = Vec::new();
    // Sequence items removed so far: (sequence path, index in the document).
    let mut removed_items: Vec<(Vec<Seg>, usize)> = Vec::new();
    for _ in 0..MAX_ATTEMPTS {
        let err = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(t) => return Some(t),
            Err(e) => e,
        };
        let mut segs: Vec<Seg> = Vec::new();
        for seg in err.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => segs.push(Seg::Index(*index)),
                serde_path_to_error::Segment::Map { key } => segs.push(Seg::Key(key.clone())),
                serde_path_to_error::Segment::Enum { .. } => {}
                serde_path_to_error::Segment::Unknown => break,
            }
        }
        let message = err.into_inner().to_string();
        // otelcol reads an empty key (`tls:`) as "defaults": do the same, silently.
        let empty = if message.starts_with("invalid type: null, expected struct") {
            Some(Value::Object(Map::new()))
        } else if message.starts_with("invalid type: null, expected a sequence") {
            Some(Value::Array(Vec::new()))
        } else {
            None
        };
        if let Some(empty) = empty
            && let Some(slot) = get_mut_at(&mut value, &segs)
        {
            *slot = empty;
            continue;
        }
        if let Some(key) = unknown_field(&message)
            && segs.last() != Some(&Seg::Key(key.to_string()))
        {
            segs.push(Seg::Key(key.to_string()));
        }
        // A key removed for a bad value then shows up as missing: already reported.
        let already_reported = missing_field(&message).is_some_and(|key| {
            let mut p = segs.clone();
            p.push(Seg::Key(key.to_string()));
            removed.contains(&p)
        });
        let original = to_original(&segs, &removed_items);
        if !already_reported {
            let full: Vec<Seg> = base
                .iter()
                .cloned()
                .chain(original.iter().cloned())
                .collect();
            diags.error(&path_string(&full), tidy(&message));
        }
        if segs.is_empty() || !remove_at(&mut value, &segs) {
            return None;
        }
        if let (Some(Seg::Index(_)), Some(Seg::Index(orig))) = (segs.last(), original.last()) {
            removed_items.push((segs[..segs.len() - 1].to_vec(), *orig));
        }
        removed.push(segs);
    }
    None
}

/// Maps a path in the current (partly removed) tree back to the document's indices: removing
/// sequence item `i` shifts later items down, so their errors would point at the wrong line.
fn to_original(segs: &[Seg], removed_items: &[(Vec<Seg>, usize)]) -> Vec<Seg> {
    segs.iter()
        .enumerate()
        .map(|(i, seg)| match seg {
            Seg::Index(current) => {
                let mut gone: Vec<usize> = removed_items
                    .iter()
                    .filter(|(seq, _)| seq.as_slice() == &segs[..i])
                    .map(|(_, orig)| *orig)
                    .collect();
                gone.sort_unstable();
                let mut orig = *current;
                for g in gone {
                    if g <= orig {
                        orig += 1;
                    }
                }
                Seg::Index(orig)
            }
            key => key.clone(),
        })
        .collect()
}

/// The key named by serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(k, _)| k)
}

/// The key named by serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split_once('`').map(|(k, _)| k)
}

/// Rewords serde's messages for config users.
fn tidy(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((key, tail)) = rest.split_once('`')
    {
        let valid = tail
            .trim_start_matches(", expected one of ")
            .trim_start_matches(", expected ")
            .replace('`', "")
            .replace(" or ", ", ");
        let valid = if tail.contains("there are no fields") {
            "none".into()
        } else {
            valid
        };
        return format!("unknown key {key:?} (valid keys: {valid})");
    }
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some((key, _)) = rest.split_once('`')
    {
        return format!("missing required key {key:?}");
    }
    message.to_string()
}

fn unknown_key_message(key: &str, valid: &[&str]) -> String {
    format!("unknown key {key:?} (valid keys: {})", valid.join(", "))
}

/// The value at `segs`, if any.
fn get_mut_at<'v>(value: &'v mut Value, segs: &[Seg]) -> Option<&'v mut Value> {
    let mut cur = value;
    for seg in segs {
        cur = match (seg, cur) {
            (Seg::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Removes the value at `segs` from `value`; false if there is nothing there.
pub(crate) fn remove_at(value: &mut Value, segs: &[Seg]) -> bool {
    let Some((last, parents)) = segs.split_last() else {
        return false;
    };
    let mut cur = value;
    for seg in parents {
        let next = match (seg, cur) {
            (Seg::Key(k), Value::Object(m)) => m.get_mut(k),
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    match (last, cur) {
        (Seg::Key(k), Value::Object(m)) => m.remove(k).is_some(),
        (Seg::Index(i), Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
