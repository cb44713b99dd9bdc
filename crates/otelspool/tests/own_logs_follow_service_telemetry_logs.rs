//! otelspool's own log lines follow `service.telemetry.logs` as otelcol spells it (`level`,
//! `encoding: console | json`), and `RUST_LOG`, when set, overrides the level. Runs the real
//! binary and reads its stderr.
#![allow(clippy::unwrap_used, missing_docs)]

mod binary;

use std::net::SocketAddr;
use std::time::Duration;

use binary::{Running, free_port};

/// Runs otelspool with `logs` under `service.telemetry` (and an unused exporter, which it warns
/// about at start) until it is healthy, then stops it; its stderr.
async fn stderr_of(logs: &str, env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let health = free_port();
    let config = format!(
        "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
exporters:
  debug:
  debug/unused:
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
    logs:
{logs}  pipelines:
    logs:
      receivers: [otlp]
      exporters: [debug]
",
        grpc = free_port(),
    );
    let file = dir.path().join("otelspool.yaml");
    std::fs::write(&file, config).unwrap();
    let mut otelspool = Running::start(&file, env);
    let addr = SocketAddr::from(([127, 0, 0, 1], health));
    otelspool.wait_healthy(addr, Duration::from_secs(20)).await;
    otelspool.stop().1
}

/// Scenario: `level: WARN` (zap's upper case) and `encoding: json`.
/// Guarantees: every line on stderr is one JSON object at level WARN or ERROR; the start-up
/// warning about the unused exporter is there; the INFO lines are not.
#[tokio::test]
async fn json_at_warn_writes_only_warnings_as_json_objects() {
    let stderr = stderr_of("      level: WARN\n      encoding: json\n", &[]).await;
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log line at all");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        let level = v["level"].as_str().unwrap_or_default();
        assert!(matches!(level, "WARN" | "ERROR"), "{line}");
    }
    assert!(
        stderr.contains("debug/unused") && stderr.contains("not used in any pipeline"),
        "{stderr}"
    );
    assert!(!stderr.contains("otelspool is running"), "{stderr}");
}

/// Scenario: `level: warn` with `RUST_LOG=info` set, default (console) encoding.
/// Guarantees: `RUST_LOG` wins: the INFO lines are written, as text, not JSON.
#[tokio::test]
async fn rust_log_overrides_the_configured_level() {
    let stderr = stderr_of("      level: warn\n", &[("RUST_LOG", "info")]).await;
    let running = stderr
        .lines()
        .find(|l| l.contains("otelspool is running"))
        .unwrap_or_else(|| panic!("RUST_LOG=info did not win:\n{stderr}"));
    assert!(running.contains("INFO"), "{running}");
    assert!(
        serde_json::from_str::<serde_json::Value>(running).is_err(),
        "{running}"
    );
}
