//! `health_check.check_delivery`: the opt-in readiness thresholds load with their meaning, and
//! thresholds that could never pass or never fail, or a path that shadows a fixed endpoint,
//! are errors naming the key.

use std::time::Duration;

use otelspool_config::{ComponentId, ConfigError, ExtensionConfig, HealthCheckConfig, load_str};

const BASE: &str = "receivers:
  otlp:
    protocols:
      grpc:
exporters:
  debug:
service:
  extensions: [health_check]
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [debug]
extensions:
  health_check:
";

fn health_check(text: &str) -> (HealthCheckConfig, Vec<String>) {
    let loaded =
        load_str(text, "t.yaml", &|_| None).unwrap_or_else(|e| panic!("should load:\n{e}\n{text}"));
    match loaded
        .config
        .extensions
        .get(&ComponentId::new("health_check"))
    {
        Some(ExtensionConfig::HealthCheck(h)) => (h.clone(), loaded.warnings),
        other => panic!("no health_check: {other:?}"),
    }
}

fn errors_of(text: &str) -> Vec<ConfigError> {
    match load_str(text, "t.yaml", &|_| None) {
        Ok(_) => panic!("should not load:\n{text}"),
        Err(e) => e.0,
    }
}

fn has_error(errors: &[ConfigError], path: &str, text: &str) -> bool {
    errors
        .iter()
        .any(|e| e.path == path && e.message.contains(text))
}

/// Scenario: a `check_delivery` block with every threshold, in otelcol's duration syntax.
/// Guarantees: each key loads with its value; `enabled` defaults to true; without the block
/// there are no checks.
#[test]
fn every_threshold_loads() {
    let text = format!(
        "{BASE}    check_delivery:
      max_time_since_success: 5m
      max_oldest_record_age: 10m
      max_queue_fill_ratio: 0.8
      min_free_disk_mib: 1024
"
    );
    let (h, warnings) = health_check(&text);
    let c = h.check_delivery.expect("check_delivery");
    assert!(c.enabled);
    assert_eq!(c.max_time_since_success, Some(Duration::from_secs(300)));
    assert_eq!(c.max_oldest_record_age, Some(Duration::from_secs(600)));
    assert_eq!(c.max_queue_fill_ratio, Some(0.8));
    assert_eq!(c.min_free_disk_mib, Some(1024));
    assert!(warnings.is_empty(), "{warnings:?}");

    let (h, _) = health_check(BASE);
    assert_eq!(h.check_delivery, None);
}

/// Scenario: only one threshold is set.
/// Guarantees: the others stay unset (they do not apply), rather than taking defaults.
#[test]
fn only_configured_thresholds_are_set() {
    let text = format!("{BASE}    check_delivery:\n      max_queue_fill_ratio: 0.5\n");
    let c = health_check(&text).0.check_delivery.expect("block");
    assert_eq!(c.max_queue_fill_ratio, Some(0.5));
    assert_eq!(
        (
            c.max_time_since_success,
            c.max_oldest_record_age,
            c.min_free_disk_mib
        ),
        (None, None, None)
    );
}

/// Scenario: thresholds that can never pass or never fail, an unknown key in the block.
/// Guarantees: each is an error at its key path.
#[test]
fn impossible_thresholds_are_errors() {
    let text = format!(
        "{BASE}    check_delivery:
      max_time_since_success: 0s
      max_oldest_record_age: 0
      max_queue_fill_ratio: 1.5
      min_free_disk_mib: 0
      max_backlog: 3
"
    );
    let errors = errors_of(&text);
    let base = "extensions.health_check.check_delivery";
    for (key, text) in [
        ("max_time_since_success", "greater than 0"),
        ("max_oldest_record_age", "greater than 0"),
        ("max_queue_fill_ratio", "at most 1"),
        ("min_free_disk_mib", "greater than 0"),
    ] {
        assert!(
            has_error(&errors, &format!("{base}.{key}"), text),
            "{key}: {errors:?}"
        );
    }
    assert!(
        errors
            .iter()
            .any(|e| e.path.ends_with("max_backlog") && e.message.contains("unknown key")),
        "{errors:?}"
    );
}

/// Scenario: the block is present but sets no threshold.
/// Guarantees: a warning says it checks nothing; the config still loads.
#[test]
fn a_block_without_thresholds_warns() {
    let text = format!("{BASE}    check_delivery:\n      enabled: true\n");
    let (_, warnings) = health_check(&text);
    assert!(
        warnings.iter().any(|w| w.contains("checks nothing")),
        "{warnings:?}"
    );
}

/// Scenario: `path` set to one of the endpoints otelspool serves itself.
/// Guarantees: an error at `path` for `/livez`, `/status` and `/status.json`; `/readyz` loads.
#[test]
fn path_may_not_shadow_fixed_endpoints() {
    for path in ["/livez", "/status", "/status.json"] {
        let errors = errors_of(&format!("{BASE}    path: {path}\n"));
        assert!(
            has_error(
                &errors,
                "extensions.health_check.path",
                "served by otelspool"
            ),
            "{path}: {errors:?}"
        );
    }
    assert_eq!(
        health_check(&format!("{BASE}    path: /readyz\n")).0.path,
        "/readyz"
    );
}

/// Scenario: otelcol's deprecated `check_collector_pipeline` next to `check_delivery`.
/// Guarantees: still accepted with a warning; `check_delivery` unaffected.
#[test]
fn check_collector_pipeline_is_still_ignored_with_a_warning() {
    let text = format!(
        "{BASE}    check_collector_pipeline:\n      enabled: true\n    check_delivery:\n      max_oldest_record_age: 1m\n"
    );
    let (h, warnings) = health_check(&text);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("check_collector_pipeline"))
    );
    assert!(h.check_delivery.is_some());
}
