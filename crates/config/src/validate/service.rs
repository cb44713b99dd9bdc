//! Checks of `service:`: enabled extensions, pipelines referencing defined components of the
//! right kind (with a hint when an id is defined in another section), endpoints an `otlphttp`
//! exporter needs for the signals it carries, unused components (warnings), and self-telemetry.

use std::collections::{BTreeSet, HashSet};

use super::defined_in;
use super::endpoint::check_endpoint;
use crate::decode::Decoded;
use crate::error::Diagnostics;
use crate::model::{ComponentId, ExporterConfig, SignalKind, TelemetryLogsConfig};

/// Checks `service:`.
pub(super) fn check_service(decoded: &Decoded, diags: &mut Diagnostics<'_>) {
    let cfg = &decoded.config;
    let svc = &cfg.service;
    let mut seen = HashSet::new();
    for (i, id) in svc.extensions.iter().enumerate() {
        let path = format!("service.extensions[{i}]");
        let shown = diags.show(&path, &id.to_string());
        if !seen.insert(id) {
            diags.error(&path, format!("extension {shown} is listed twice"));
        } else if !defined_in(decoded, "extensions", id) {
            diags.error(
                &path,
                format!("extension {shown} is not defined in extensions"),
            );
        }
    }
    if svc.pipelines.is_empty() {
        diags.error(
            "service.pipelines",
            "at least one pipeline is required (logs, traces or metrics)",
        );
    }
    let mut used: BTreeSet<(&str, &ComponentId)> = BTreeSet::new();
    for (pid, p) in &svc.pipelines {
        let base = format!("service.pipelines.{pid}");
        for (section, singular, list) in [
            ("receivers", "receiver", &p.receivers),
            ("processors", "processor", &p.processors),
            ("exporters", "exporter", &p.exporters),
        ] {
            if list.is_empty() && section != "processors" {
                diags.error(&base, format!("a pipeline needs at least one {singular}"));
            }
            let mut seen = HashSet::new();
            for (i, id) in list.iter().enumerate() {
                let path = format!("{base}.{section}[{i}]");
                let shown = diags.show(&path, &id.to_string());
                used.insert((section, id));
                if !seen.insert(id) {
                    diags.error(
                        &path,
                        format!("{singular} {shown} is listed twice in this pipeline"),
                    );
                    continue;
                }
                if defined_in(decoded, section, id) {
                    continue;
                }
                let elsewhere = ["receivers", "processors", "exporters", "extensions"]
                    .into_iter()
                    .find(|s| *s != section && defined_in(decoded, s, id));
                let hint = match elsewhere {
                    Some(s) => format!(" (it is defined in {s})"),
                    None => String::new(),
                };
                diags.error(
                    &path,
                    format!("{singular} {shown} is not defined in {section}{hint}"),
                );
            }
        }
        for id in &p.exporters {
            if let Some(ExporterConfig::OtlpHttp(c)) = cfg.exporters.get(id) {
                let (key, specific) = match pid.signal {
                    SignalKind::Logs => ("logs_endpoint", &c.logs_endpoint),
                    SignalKind::Traces => ("traces_endpoint", &c.traces_endpoint),
                    SignalKind::Metrics => ("metrics_endpoint", &c.metrics_endpoint),
                };
                if c.endpoint.is_none() && specific.is_none() {
                    diags.error(
                        &format!("exporters.{id}"),
                        format!("\"endpoint\" or \"{key}\" is required (used by pipeline {pid})"),
                    );
                }
            }
        }
    }
    for (section, ids) in [
        ("receivers", cfg.receivers.keys().collect::<Vec<_>>()),
        ("processors", cfg.processors.keys().collect()),
        ("exporters", cfg.exporters.keys().collect()),
    ] {
        for id in ids {
            if !used.contains(&(section, id)) {
                diags.warn(
                    &format!("{section}.{id}"),
                    "is defined but not used in any pipeline",
                );
            }
        }
    }
    for id in cfg.extensions.keys() {
        if !svc.extensions.contains(id) {
            diags.warn(
                &format!("extensions.{id}"),
                "is defined but not listed in service.extensions",
            );
        }
    }
    let m = &svc.telemetry.metrics;
    if !matches!(m.level.as_str(), "basic" | "normal" | "detailed" | "none") {
        let path = "service.telemetry.metrics.level";
        let level = diags.show(path, &m.level);
        diags.error(
            path,
            format!("unknown level {level} (supported: basic, normal, detailed, none)"),
        );
    }
    if m.level != "none" {
        check_endpoint("service.telemetry.metrics.address", &m.address, diags);
    }
    let l = &svc.telemetry.logs;
    if !TelemetryLogsConfig::LEVELS.contains(&l.level.as_str()) {
        let path = "service.telemetry.logs.level";
        let level = diags.show(path, &l.level);
        diags.error(
            path,
            format!("unknown level {level} (supported: debug, info, warn, error)"),
        );
    }
    if !matches!(l.encoding.as_str(), "console" | "json") {
        let path = "service.telemetry.logs.encoding";
        let encoding = diags.show(path, &l.encoding);
        diags.error(
            path,
            format!("unknown encoding {encoding} (supported: console, json)"),
        );
    }
}
