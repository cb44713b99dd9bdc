//! otelcol keys that otelspool knows but does not implement, applied before serde runs.
//!
//! Each rule names a key path relative to a component; if the key is present it is removed from
//! the tree and either warned about (accepted and ignored) or reported as an error with a
//! specific reason, so that serde never sees it as an unknown key.

use serde_json::Value;

use super::tree::remove_at;
use crate::error::Diagnostics;
use crate::yaml::Seg;

/// What to do with an otelcol key that otelspool does not implement.
pub(super) enum Rule {
    /// Accept, ignore, and warn with this reason.
    Warn(&'static str, &'static str),
    /// Refuse with this reason.
    Error(&'static str, &'static str),
}

const UNSUPPORTED: &str = "is not supported by otelspool";
const CLIENT_CERTS: &str = "client certificates (mTLS) are not supported by otelspool yet";
const BLOCKING: &str =
    "is ignored: otelspool always blocks when the queue is full unless when_full: drop_oldest";

pub(super) const OTLP_RECEIVER_RULES: &[Rule] = &[
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
pub(super) const EXPORTER_COMMON_RULES: &[Rule] = &[
    Rule::Error("tls.cert_file", CLIENT_CERTS),
    Rule::Error("tls.key_file", CLIENT_CERTS),
    Rule::Error("tls.cert_pem", CLIENT_CERTS),
    Rule::Error("tls.key_pem", CLIENT_CERTS),
    Rule::Error("sending_queue.sizer", UNSUPPORTED),
    Rule::Error("sending_queue.batch", UNSUPPORTED),
    Rule::Warn("sending_queue.blocking", BLOCKING),
    Rule::Error("auth", UNSUPPORTED),
];
pub(super) const OTLP_EXPORTER_RULES: &[Rule] = &[
    Rule::Error("balancer_name", UNSUPPORTED),
    Rule::Error("keepalive", UNSUPPORTED),
    Rule::Error("write_buffer_size", UNSUPPORTED),
];
pub(super) const FILE_STORAGE_RULES: &[Rule] = &[Rule::Warn(
    "compaction",
    "is accepted but ignored: otelspool's queue deletes whole segment files, nothing to compact",
)];
pub(super) const BEARERTOKENAUTH_RULES: &[Rule] = &[Rule::Error(
    "filename",
    "is not supported by otelspool; set \"token\" from the environment instead \
     (token: ${env:OTLP_TOKEN})",
)];
pub(super) const HEALTH_CHECK_RULES: &[Rule] = &[Rule::Warn(
    "check_collector_pipeline",
    "is accepted but ignored (deprecated in otelcol)",
)];

/// Removes every key named by `rules` from `value`, warning or erroring for each one found.
pub(super) fn apply_rules(
    value: &mut Value,
    base: &str,
    rules: &[Rule],
    diags: &mut Diagnostics<'_>,
) {
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
