//! Semantic checks on a decoded [`Config`]: pure (no I/O), every problem collected.
//!
//! Covers what serde cannot see: pipelines referencing defined components of the right kind,
//! queue storage pointing at an enabled `file_storage` extension, endpoint syntax, and the
//! numeric rules of `memory_limiter`, `batch`, the queue and retries. Components that are
//! defined but unused produce warnings, not errors.

use std::collections::{BTreeSet, HashSet};

use crate::decode::Decoded;
use crate::error::Diagnostics;
use crate::model::{
    ActionKind, AttributeAction, ComponentId, Config, ExporterConfig, ExtensionConfig,
    MemoryLimiterConfig, ProcessorConfig, ReceiverConfig, RetryConfig, SendingQueueConfig,
    SignalKind,
};

/// Runs every semantic check, recording errors and warnings in `diags`.
pub(crate) fn validate(decoded: &Decoded, diags: &mut Diagnostics<'_>) {
    let cfg = &decoded.config;
    check_receivers(cfg, diags);
    check_processors(cfg, diags);
    check_exporters(decoded, diags);
    check_extensions(cfg, diags);
    check_service(decoded, diags);
}

/// Checks a `host:port` listen or dial address; an empty host means all interfaces.
pub(crate) fn check_host_port(endpoint: &str) -> Result<(), String> {
    let bad = |why: &str| format!("invalid endpoint {endpoint:?}: {why} (expected host:port)");
    let (host, port) = if let Some(rest) = endpoint.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        let port = after.strip_prefix(':').ok_or_else(|| bad("missing port"))?;
        (h, port)
    } else {
        endpoint
            .rsplit_once(':')
            .ok_or_else(|| bad("missing port"))?
    };
    if host.contains(':') && !endpoint.starts_with('[') {
        return Err(bad(
            "IPv6 addresses must be written in brackets, e.g. [::1]:4317",
        ));
    }
    if host.contains(['/', ' ']) {
        return Err(bad("the host contains '/' or a space"));
    }
    port.parse::<u16>()
        .map_err(|_| bad(&format!("{port:?} is not a port number (0-65535)")))?;
    Ok(())
}

fn check_endpoint(path: &str, endpoint: &str, diags: &mut Diagnostics<'_>) {
    if let Err(e) = check_host_port(endpoint) {
        diags.error(path, e);
    }
}

fn check_url(path: &str, url: &str, diags: &mut Diagnostics<'_>) {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        diags.error(
            path,
            format!("invalid URL {url:?}: it must start with http:// or https://"),
        );
        return;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        diags.error(path, format!("invalid URL {url:?}: missing host"));
    } else if authority.contains(':') && !authority.ends_with(']') {
        check_endpoint(path, authority, diags);
    }
}

fn check_receivers(cfg: &Config, diags: &mut Diagnostics<'_>) {
    for (id, r) in &cfg.receivers {
        let base = format!("receivers.{id}");
        match r {
            ReceiverConfig::Otlp(c) => {
                let p = &c.protocols;
                if p.grpc.is_none() && p.http.is_none() {
                    diags.error(
                        &format!("{base}.protocols"),
                        "at least one protocol is required (write \"grpc:\" and/or \"http:\")",
                    );
                }
                if let Some(g) = &p.grpc {
                    check_endpoint(
                        &format!("{base}.protocols.grpc.endpoint"),
                        &g.endpoint,
                        diags,
                    );
                    if g.max_recv_msg_size_mib == 0 {
                        diags.error(
                            &format!("{base}.protocols.grpc.max_recv_msg_size_mib"),
                            "must be greater than 0",
                        );
                    }
                }
                if let Some(h) = &p.http {
                    check_endpoint(
                        &format!("{base}.protocols.http.endpoint"),
                        &h.endpoint,
                        diags,
                    );
                    if h.max_request_body_size == 0 {
                        diags.error(
                            &format!("{base}.protocols.http.max_request_body_size"),
                            "must be greater than 0",
                        );
                    }
                }
            }
        }
    }
}

fn check_processors(cfg: &Config, diags: &mut Diagnostics<'_>) {
    for (id, p) in &cfg.processors {
        let base = format!("processors.{id}");
        match p {
            ProcessorConfig::Batch(b) => {
                if b.send_batch_max_size != 0 && b.send_batch_max_size < b.send_batch_size {
                    diags.error(
                        &format!("{base}.send_batch_max_size"),
                        format!(
                            "must be 0 (no limit) or >= send_batch_size ({})",
                            b.send_batch_size
                        ),
                    );
                }
            }
            ProcessorConfig::MemoryLimiter(m) => check_memory_limiter(&base, m, diags),
            ProcessorConfig::Resource(r) => {
                check_actions(&format!("{base}.attributes"), &r.attributes, diags);
            }
            ProcessorConfig::Attributes(a) => {
                check_actions(&format!("{base}.actions"), &a.actions, diags);
            }
        }
    }
}

fn check_memory_limiter(base: &str, m: &MemoryLimiterConfig, diags: &mut Diagnostics<'_>) {
    if m.check_interval.is_zero() {
        diags.error(
            &format!("{base}.check_interval"),
            "must be greater than 0 (e.g. \"1s\")",
        );
    }
    let limit_mib = m.limit_mib.filter(|l| *l > 0);
    let limit_pct = m.limit_percentage.filter(|l| *l > 0);
    match (limit_mib, limit_pct) {
        (None, None) => diags.error(base, "one of limit_mib or limit_percentage is required"),
        (Some(_), Some(_)) => diags.warn(
            &format!("{base}.limit_percentage"),
            "is ignored because limit_mib is set",
        ),
        _ => {}
    }
    if let (Some(limit), Some(spike)) = (limit_mib, m.spike_limit_mib)
        && spike >= limit
    {
        diags.error(
            &format!("{base}.spike_limit_mib"),
            format!("must be less than limit_mib ({limit})"),
        );
    }
    for (key, value) in [
        ("limit_percentage", m.limit_percentage),
        ("spike_limit_percentage", m.spike_limit_percentage),
    ] {
        if let Some(v) = value
            && !(1..=100).contains(&v)
        {
            diags.error(
                &format!("{base}.{key}"),
                format!("must be between 1 and 100, got {v}"),
            );
        }
    }
    if let (Some(limit), Some(spike)) = (limit_pct, m.spike_limit_percentage)
        && spike >= limit
        && limit_mib.is_none()
    {
        diags.error(
            &format!("{base}.spike_limit_percentage"),
            format!("must be less than limit_percentage ({limit})"),
        );
    }
}

fn check_actions(base: &str, actions: &[AttributeAction], diags: &mut Diagnostics<'_>) {
    for (i, a) in actions.iter().enumerate() {
        let path = format!("{base}[{i}]");
        if a.key.is_empty() {
            diags.error(&format!("{path}.key"), "must not be empty");
        }
        let sources = usize::from(a.value.is_some()) + usize::from(a.from_attribute.is_some());
        match a.action {
            ActionKind::Delete if sources != 0 => diags.error(
                &path,
                "action \"delete\" takes neither \"value\" nor \"from_attribute\"",
            ),
            ActionKind::Insert | ActionKind::Update | ActionKind::Upsert if sources != 1 => diags
                .error(
                    &path,
                    format!(
                        "action \"{}\" needs exactly one of \"value\" or \"from_attribute\"",
                        a.action
                    ),
                ),
            _ => {}
        }
    }
}

fn check_exporters(decoded: &Decoded, diags: &mut Diagnostics<'_>) {
    let cfg = &decoded.config;
    for (id, e) in &cfg.exporters {
        let base = format!("exporters.{id}");
        match e {
            ExporterConfig::Otlp(c) => {
                let path = format!("{base}.endpoint");
                let rest = c
                    .endpoint
                    .strip_prefix("https://")
                    .or_else(|| c.endpoint.strip_prefix("http://"));
                match rest {
                    _ if c.endpoint.is_empty() => diags.error(&path, "must not be empty"),
                    Some(r) if r.contains('/') => diags.error(
                        &path,
                        format!(
                            "invalid endpoint {:?}: a gRPC endpoint has no path",
                            c.endpoint
                        ),
                    ),
                    Some(r) if r.contains(':') && !r.ends_with(']') => {
                        check_endpoint(&path, r, diags)
                    }
                    Some(_) => {}
                    None => check_endpoint(&path, &c.endpoint, diags),
                }
            }
            ExporterConfig::OtlpHttp(c) => {
                for (key, url) in [
                    ("endpoint", &c.endpoint),
                    ("logs_endpoint", &c.logs_endpoint),
                    ("traces_endpoint", &c.traces_endpoint),
                    ("metrics_endpoint", &c.metrics_endpoint),
                ] {
                    if let Some(url) = url {
                        check_url(&format!("{base}.{key}"), url, diags);
                    }
                }
            }
            ExporterConfig::Debug(_) => {}
        }
        check_queue(
            decoded,
            &format!("{base}.sending_queue"),
            e.sending_queue(),
            diags,
        );
        check_retry(
            &format!("{base}.retry_on_failure"),
            e.retry_on_failure(),
            diags,
        );
    }
}

fn check_queue(decoded: &Decoded, base: &str, q: &SendingQueueConfig, diags: &mut Diagnostics<'_>) {
    if q.enabled {
        for (key, v) in [
            ("num_consumers", q.num_consumers as u64),
            ("queue_size", q.queue_size.unwrap_or(1)),
            ("max_size_mib", q.max_size_mib),
        ] {
            if v == 0 {
                diags.error(&format!("{base}.{key}"), "must be greater than 0");
            }
        }
    }
    let Some(storage) = &q.storage else { return };
    let path = format!("{base}.storage");
    if storage.kind != "file_storage" {
        diags.error(
            &path,
            format!(
                "{storage:?} is not a file_storage extension (write e.g. \"file_storage/queue\")"
            ),
        );
        return;
    }
    if !defined_in(decoded, "extensions", storage) {
        diags.error(
            &path,
            format!("extension \"{storage}\" is not defined in extensions"),
        );
    } else if !decoded.config.service.extensions.contains(storage) {
        diags.error(
            &path,
            format!("extension \"{storage}\" must be listed in service.extensions"),
        );
    }
}

fn check_retry(base: &str, r: &RetryConfig, diags: &mut Diagnostics<'_>) {
    if !r.enabled {
        return;
    }
    if r.initial_interval.is_zero() {
        diags.error(
            &format!("{base}.initial_interval"),
            "must be greater than 0",
        );
    }
    if r.max_interval < r.initial_interval {
        diags.error(
            &format!("{base}.max_interval"),
            "must be >= initial_interval",
        );
    }
    if !(r.multiplier.is_finite() && r.multiplier >= 1.0) {
        diags.error(&format!("{base}.multiplier"), "must be at least 1");
    }
    if !(0.0..=1.0).contains(&r.randomization_factor) {
        diags.error(
            &format!("{base}.randomization_factor"),
            "must be between 0 and 1",
        );
    }
}

fn check_extensions(cfg: &Config, diags: &mut Diagnostics<'_>) {
    for (id, e) in &cfg.extensions {
        let base = format!("extensions.{id}");
        match e {
            ExtensionConfig::FileStorage(f) => {
                if f.directory.as_os_str().is_empty() {
                    diags.error(&format!("{base}.directory"), "must not be empty");
                }
            }
            ExtensionConfig::HealthCheck(h) => {
                check_endpoint(&format!("{base}.endpoint"), &h.endpoint, diags);
                if !h.path.starts_with('/') {
                    diags.error(&format!("{base}.path"), "must start with '/'");
                }
            }
        }
    }
}

/// Where a component id may be defined, for "is a processor, not a receiver" hints.
fn defined_in(decoded: &Decoded, section: &str, id: &ComponentId) -> bool {
    let cfg = &decoded.config;
    let here = match section {
        "receivers" => cfg.receivers.contains_key(id),
        "processors" => cfg.processors.contains_key(id),
        "exporters" => cfg.exporters.contains_key(id),
        _ => cfg.extensions.contains_key(id),
    };
    here || decoded.broken.iter().any(|(s, b)| *s == section && b == id)
}

fn check_service(decoded: &Decoded, diags: &mut Diagnostics<'_>) {
    let cfg = &decoded.config;
    let svc = &cfg.service;
    let mut seen = HashSet::new();
    for (i, id) in svc.extensions.iter().enumerate() {
        let path = format!("service.extensions[{i}]");
        if !seen.insert(id) {
            diags.error(&path, format!("extension \"{id}\" is listed twice"));
        } else if !defined_in(decoded, "extensions", id) {
            diags.error(
                &path,
                format!("extension \"{id}\" is not defined in extensions"),
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
                used.insert((section, id));
                if !seen.insert(id) {
                    diags.error(
                        &path,
                        format!("{singular} \"{id}\" is listed twice in this pipeline"),
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
                    format!("{singular} \"{id}\" is not defined in {section}{hint}"),
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
        diags.error(
            "service.telemetry.metrics.level",
            format!(
                "unknown level {:?} (supported: basic, normal, detailed, none)",
                m.level
            ),
        );
    }
    if m.level != "none" {
        check_endpoint("service.telemetry.metrics.address", &m.address, diags);
    }
    let l = &svc.telemetry.logs;
    if !matches!(l.level.as_str(), "debug" | "info" | "warn" | "error") {
        diags.error(
            "service.telemetry.logs.level",
            format!(
                "unknown level {:?} (supported: debug, info, warn, error)",
                l.level
            ),
        );
    }
    if !matches!(l.encoding.as_str(), "console" | "json") {
        diags.error(
            "service.telemetry.logs.encoding",
            format!(
                "unknown encoding {:?} (supported: console, json)",
                l.encoding
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: endpoints users write, good and bad.
    /// Guarantees: `host:port`, `:port` and bracketed IPv6 pass; missing or bad ports fail.
    #[test]
    fn host_port() {
        for ok in [
            "localhost:4317",
            "0.0.0.0:4317",
            ":4317",
            "[::1]:4317",
            "127.0.0.1:0",
        ] {
            assert_eq!(check_host_port(ok), Ok(()), "{ok}");
        }
        for bad in [
            "localhost",
            "localhost:",
            "host:99999",
            "host:abc",
            "::1:4317",
            "[::1]",
        ] {
            assert!(check_host_port(bad).is_err(), "{bad}");
        }
    }
}
