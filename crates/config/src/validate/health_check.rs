//! The `health_check` extension: its path must not shadow the fixed endpoints it also serves,
//! and each `check_delivery` threshold must be one that can both pass and fail.

use crate::error::Diagnostics;
use crate::model::HealthCheckConfig;

/// Paths the health endpoint always serves besides `path` (`/readyz` may be `path`: it
/// answers the same).
const RESERVED_PATHS: &[&str] = &["/livez", "/status", "/status.json"];

/// Checks `path` and the `check_delivery` block of the extension at `base`.
pub(super) fn check_health_check(base: &str, h: &HealthCheckConfig, diags: &mut Diagnostics<'_>) {
    if RESERVED_PATHS.contains(&h.path.as_str()) {
        diags.error(
            &format!("{base}.path"),
            format!(
                "{:?} is served by otelspool itself ({}); choose another path, or \"/readyz\"",
                h.path,
                RESERVED_PATHS.join(", ")
            ),
        );
    }
    let Some(c) = &h.check_delivery else { return };
    let base = format!("{base}.check_delivery");
    for (key, value) in [
        ("max_time_since_success", c.max_time_since_success),
        ("max_oldest_record_age", c.max_oldest_record_age),
    ] {
        if value.is_some_and(|d| d.is_zero()) {
            diags.error(&format!("{base}.{key}"), "must be greater than 0");
        }
    }
    if let Some(r) = c.max_queue_fill_ratio
        && !(r.is_finite() && r > 0.0 && r <= 1.0)
    {
        diags.error(
            &format!("{base}.max_queue_fill_ratio"),
            "must be a fraction greater than 0 and at most 1 (0.8 for 80 %)",
        );
    }
    if c.min_free_disk_mib == Some(0) {
        diags.error(
            &format!("{base}.min_free_disk_mib"),
            "must be greater than 0",
        );
    }
    let any = c.max_time_since_success.is_some()
        || c.max_oldest_record_age.is_some()
        || c.max_queue_fill_ratio.is_some()
        || c.min_free_disk_mib.is_some();
    if c.enabled && !any {
        diags.warn(
            &base,
            "sets no threshold (max_time_since_success, max_oldest_record_age, \
             max_queue_fill_ratio, min_free_disk_mib), so it checks nothing",
        );
    }
}
