//! The `service:` section's rewrites before decoding: invalid pipeline ids are reported and
//! dropped, and otelcol's `telemetry.metrics.readers` Prometheus pull form becomes `address`.

use serde_json::Value;

use crate::error::Diagnostics;
use crate::model::PipelineId;

/// Rewrites otelcol's `telemetry.metrics.readers` pull form to `address`, and drops pipeline
/// keys that are not valid pipeline ids (reporting them).
pub(super) fn prepare_service(service: &mut Value, diags: &mut Diagnostics<'_>) {
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
