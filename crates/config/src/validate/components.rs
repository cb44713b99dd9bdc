//! Checks of each component's settings: receivers' endpoints and limits, processors' rules
//! (`batch`, `memory_limiter`, attribute actions), exporters' endpoints, queues and retries,
//! and extensions.

use super::defined_in;
use super::endpoint::{check_endpoint, check_grpc_endpoint, check_url};
use crate::decode::Decoded;
use crate::error::Diagnostics;
use crate::model::{
    ActionKind, AttributeAction, Config, ExporterConfig, ExtensionConfig, MemoryLimiterConfig,
    ProcessorConfig, ReceiverConfig, RetryConfig, SendingQueueConfig,
};

/// Checks every receiver.
pub(super) fn check_receivers(cfg: &Config, diags: &mut Diagnostics<'_>) {
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

/// Checks every processor.
pub(super) fn check_processors(cfg: &Config, diags: &mut Diagnostics<'_>) {
    for (id, p) in &cfg.processors {
        let base = format!("processors.{id}");
        match p {
            ProcessorConfig::Batch(b) => {
                if b.send_batch_max_size != 0 && b.send_batch_max_size < b.send_batch_size {
                    let size = diags.show(&format!("{base}.send_batch_size"), &b.send_batch_size);
                    diags.error(
                        &format!("{base}.send_batch_max_size"),
                        format!("must be 0 (no limit) or >= send_batch_size ({size})"),
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
        let limit = diags.show(&format!("{base}.limit_mib"), &limit);
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
            let path = format!("{base}.{key}");
            let v = diags.show(&path, &v);
            diags.error(&path, format!("must be between 1 and 100, got {v}"));
        }
    }
    if let (Some(limit), Some(spike)) = (limit_pct, m.spike_limit_percentage)
        && spike >= limit
        && limit_mib.is_none()
    {
        let limit = diags.show(&format!("{base}.limit_percentage"), &limit);
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
        let action = diags.show(&format!("{path}.action"), &a.action.to_string());
        match a.action {
            ActionKind::Delete if sources != 0 => diags.error(
                &path,
                format!("action {action} takes neither \"value\" nor \"from_attribute\""),
            ),
            ActionKind::Insert | ActionKind::Update | ActionKind::Upsert if sources != 1 => diags
                .error(
                    &path,
                    format!("action {action} needs exactly one of \"value\" or \"from_attribute\""),
                ),
            _ => {}
        }
    }
}

/// Checks every exporter, its queue and its retry settings.
pub(super) fn check_exporters(decoded: &Decoded, diags: &mut Diagnostics<'_>) {
    let cfg = &decoded.config;
    for (id, e) in &cfg.exporters {
        let base = format!("exporters.{id}");
        match e {
            ExporterConfig::Otlp(c) => {
                check_grpc_endpoint(&format!("{base}.endpoint"), &c.endpoint, diags);
                if let Some(why) = c.compression_params.invalid_for(c.compression) {
                    diags.error(&format!("{base}.compression_params.level"), why);
                }
            }
            ExporterConfig::OtlpHttp(c) => {
                if let Some(why) = c.compression_params.invalid_for(c.compression) {
                    diags.error(&format!("{base}.compression_params.level"), why);
                }
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
    let shown = diags.show(&path, &storage.to_string());
    if storage.kind != "file_storage" {
        diags.error(
            &path,
            format!("{shown} is not a file_storage extension (write e.g. \"file_storage/queue\")"),
        );
        return;
    }
    if !defined_in(decoded, "extensions", storage) {
        diags.error(
            &path,
            format!("extension {shown} is not defined in extensions"),
        );
    } else if !decoded.config.service.extensions.contains(storage) {
        diags.error(
            &path,
            format!("extension {shown} must be listed in service.extensions"),
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

/// Checks every extension.
pub(super) fn check_extensions(cfg: &Config, diags: &mut Diagnostics<'_>) {
    for (id, e) in &cfg.extensions {
        let base = format!("extensions.{id}");
        match e {
            ExtensionConfig::FileStorage(f) => {
                if f.directory.as_os_str().is_empty() {
                    diags.empty(&format!("{base}.directory"), None);
                }
            }
            ExtensionConfig::HealthCheck(h) => {
                check_endpoint(&format!("{base}.endpoint"), &h.endpoint, diags);
                if !h.path.starts_with('/') {
                    diags.error(&format!("{base}.path"), "must start with '/'");
                }
                super::health_check::check_health_check(&base, h, diags);
            }
            // Checked with the receivers that use it (`security`).
            ExtensionConfig::BearerTokenAuth(_) => {}
            ExtensionConfig::JobLedger(l) => {
                if l.keys.is_empty() {
                    diags.empty(&format!("{base}.keys"), None);
                }
                if l.keys.iter().any(String::is_empty) {
                    diags.error(&format!("{base}.keys"), "keys must not be empty strings");
                }
                if l.max_jobs == 0 {
                    diags.error(&format!("{base}.max_jobs"), "must be at least 1");
                }
                if l.snapshot_interval.is_zero() {
                    diags.error(&format!("{base}.snapshot_interval"), "must be above zero");
                }
            }
        }
    }
}
