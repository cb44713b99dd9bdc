//! `extensions.job_ledger`: `{}` loads with the defaults, every key loads with its meaning,
//! and unknown keys or impossible values are errors naming the key and the line.

use std::time::Duration;

use otelspool_config::{ComponentId, ConfigError, ExtensionConfig, JobLedgerConfig, load_str};

const BASE: &str = "receivers:
  otlp:
    protocols:
      grpc:
exporters:
  debug:
service:
  extensions: [job_ledger]
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [debug]
extensions:
";

fn ledger(text: &str) -> JobLedgerConfig {
    let loaded =
        load_str(text, "t.yaml", &|_| None).unwrap_or_else(|e| panic!("should load:\n{e}\n{text}"));
    match loaded
        .config
        .extensions
        .get(&ComponentId::new("job_ledger"))
    {
        Some(ExtensionConfig::JobLedger(l)) => l.clone(),
        other => panic!("no job_ledger: {other:?}"),
    }
}

fn errors_of(text: &str) -> Vec<ConfigError> {
    match load_str(text, "t.yaml", &|_| None) {
        Ok(_) => panic!("should not load:\n{text}"),
        Err(e) => e.0,
    }
}

/// Scenario: `job_ledger: {}` as the issue writes it.
/// Guarantees: the defaults: key `emerge.job_id`, 10,000 jobs, 24 h retention, complete after
/// 30 s idle, a snapshot each second.
#[test]
fn empty_block_takes_the_defaults() {
    let l = ledger(&format!("{BASE}  job_ledger: {{}}\n"));
    assert_eq!(l, JobLedgerConfig::default());
    assert_eq!(l.keys, vec!["emerge.job_id".to_string()]);
    assert_eq!(l.max_jobs, 10_000);
    assert_eq!(l.retention, Duration::from_secs(86_400));
    assert_eq!(l.complete_after, Duration::from_secs(30));
    assert_eq!(l.snapshot_interval, Duration::from_secs(1));
}

/// Scenario: every key set, two job keys, otelcol duration syntax.
/// Guarantees: each loads with its value.
#[test]
fn every_key_loads() {
    let l = ledger(&format!(
        "{BASE}  job_ledger:
    keys: [emerge.job_id, emerge.workflow_id]
    max_jobs: 50
    retention: 1h
    complete_after: 5s
    snapshot_interval: 200ms
    directory: /tmp/ledger
"
    ));
    assert_eq!(l.keys, vec!["emerge.job_id", "emerge.workflow_id"]);
    assert_eq!(l.max_jobs, 50);
    assert_eq!(l.retention, Duration::from_secs(3600));
    assert_eq!(l.complete_after, Duration::from_secs(5));
    assert_eq!(l.snapshot_interval, Duration::from_millis(200));
    assert_eq!(
        l.directory.as_deref(),
        Some(std::path::Path::new("/tmp/ledger"))
    );
}

/// Scenario: a misspelt key and a zero job limit.
/// Guarantees: both are errors with the key path; the unknown key names its line.
#[test]
fn unknown_keys_and_zero_limits_are_errors() {
    let errors = errors_of(&format!("{BASE}  job_ledger:\n    key: [x]\n"));
    assert!(
        errors
            .iter()
            .any(|e| e.path == "extensions.job_ledger.key" && e.line == Some(15)),
        "{errors:?}"
    );
    let errors = errors_of(&format!("{BASE}  job_ledger:\n    max_jobs: 0\n"));
    assert!(
        errors
            .iter()
            .any(|e| e.path == "extensions.job_ledger.max_jobs"),
        "{errors:?}"
    );
}
