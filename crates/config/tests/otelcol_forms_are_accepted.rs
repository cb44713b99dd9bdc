//! Forms otelcol users write load with otelcol's meaning (and warnings where otelspool ignores).

use std::time::Duration;

use otelspool_config::{
    ComponentId, Compression, ExporterConfig, ReceiverConfig, WhenFull, load_str,
};

const PIPELINE: &str = "
service:
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [debug]
";

fn load(body: &str) -> otelspool_config::Loaded {
    let text = format!("{body}{PIPELINE}");
    load_str(&text, "t.yaml", &|_| None).unwrap_or_else(|e| panic!("should load:\n{e}\n{text}"))
}

/// Scenario: `protocols:` with empty `grpc:` and `http:` entries.
/// Guarantees: both are enabled with otelcol's defaults; an absent protocol stays disabled.
#[test]
fn empty_protocols_mean_enabled_with_defaults() {
    let cfg = load(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n      http:\nexporters:\n  debug:\n",
    )
    .config;
    let ReceiverConfig::Otlp(otlp) = &cfg.receivers[&ComponentId::new("otlp")];
    let grpc = otlp.protocols.grpc.as_ref().expect("grpc enabled");
    assert_eq!(
        (grpc.endpoint.as_str(), grpc.max_recv_msg_size_mib),
        ("localhost:4317", 4)
    );
    let http = otlp.protocols.http.as_ref().expect("http enabled");
    assert_eq!(
        (http.endpoint.as_str(), http.max_request_body_size),
        ("localhost:4318", 20 << 20)
    );

    let cfg =
        load("receivers:\n  otlp:\n    protocols:\n      http:\nexporters:\n  debug:\n").config;
    let ReceiverConfig::Otlp(otlp) = &cfg.receivers[&ComponentId::new("otlp")];
    assert!(otlp.protocols.grpc.is_none());
}

/// Scenario: exporter defaults when only the required keys are given.
/// Guarantees: otelcol's defaults, and `max_elapsed_time` left unset (None), not 300s.
#[test]
fn exporter_defaults() {
    let body = "receivers:\n  otlp:\n    protocols:\n      grpc:\nexporters:\n  debug:\n  otlp:\n    endpoint: https://backend:4317\n    compression: \"\"\n  otlphttp:\n    endpoint: https://backend\n";
    let loaded = load(body);
    let Some(ExporterConfig::Otlp(otlp)) = loaded.config.exporters.get(&ComponentId::new("otlp"))
    else {
        panic!("otlp missing");
    };
    assert_eq!(otlp.compression, Compression::None);
    assert_eq!(otlp.timeout, Duration::from_secs(5));
    let r = &otlp.retry_on_failure;
    assert!(r.enabled);
    assert_eq!(
        (r.initial_interval, r.max_interval),
        (Duration::from_secs(5), Duration::from_secs(30))
    );
    assert_eq!((r.multiplier, r.randomization_factor), (1.5, 0.5));
    assert_eq!(r.max_elapsed_time, None);
    let q = &otlp.sending_queue;
    assert_eq!((q.enabled, q.num_consumers, q.queue_size), (true, 10, None));
    assert_eq!((q.storage.as_ref(), q.when_full), (None, WhenFull::Block));
    let Some(ExporterConfig::OtlpHttp(http)) =
        loaded.config.exporters.get(&ComponentId::new("otlphttp"))
    else {
        panic!("otlphttp missing");
    };
    assert_eq!(http.timeout, Duration::from_secs(30));
    assert_eq!(http.compression, Compression::Gzip);
    // otlp and otlphttp are not used by the pipeline: warned, not refused.
    let unused: Vec<_> = loaded
        .warnings
        .iter()
        .filter(|w| w.contains("not used"))
        .collect();
    assert_eq!(unused.len(), 2, "{:?}", loaded.warnings);
    assert!(
        unused
            .iter()
            .any(|w| w.starts_with("t.yaml:7: exporters.otlp:")),
        "{unused:?}"
    );
}

/// Scenario: otelcol keys that otelspool accepts and ignores.
/// Guarantees: the config loads and each ignored key is named in a warning with its line.
#[test]
fn ignored_keys_warn() {
    let body = "receivers:
  otlp:
    protocols:
      grpc:
        include_metadata: true
      http:
        cors:
          allowed_origins: ['*']
exporters:
  debug:
    sending_queue:
      blocking: true
      storage: file_storage
extensions:
  file_storage:
    compaction:
      on_start: true
  health_check:
    check_collector_pipeline:
      enabled: false
service:
  extensions: [file_storage, health_check]
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [debug]
";
    let loaded = load_str(body, "t.yaml", &|_| None).expect("valid");
    let expect = [
        (
            "t.yaml:5: receivers.otlp.protocols.grpc.include_metadata:",
            "ignored",
        ),
        ("t.yaml:7: receivers.otlp.protocols.http.cors:", "ignored"),
        (
            "t.yaml:12: exporters.debug.sending_queue.blocking:",
            "always blocks",
        ),
        ("t.yaml:16: extensions.file_storage.compaction:", "ignored"),
        (
            "t.yaml:19: extensions.health_check.check_collector_pipeline:",
            "ignored",
        ),
    ];
    for (prefix, text) in expect {
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.starts_with(prefix) && w.contains(text)),
            "{prefix}: {:?}",
            loaded.warnings
        );
    }
    assert_eq!(loaded.warnings.len(), expect.len(), "{:?}", loaded.warnings);
}

/// Scenario: otelcol's `telemetry.metrics.readers` form with a Prometheus pull exporter.
/// Guarantees: it becomes `address` = host:port; giving both forms is an error.
#[test]
fn telemetry_readers_form() {
    let text = "receivers:\n  otlp:\n    protocols:\n      grpc:\nexporters:\n  debug:\nservice:
  telemetry:
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: 0.0.0.0
                port: 8888
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [debug]
";
    let cfg = load_str(text, "t.yaml", &|_| None).expect("valid").config;
    assert_eq!(cfg.service.telemetry.metrics.address, "0.0.0.0:8888");
    assert_eq!(cfg.service.telemetry.metrics.level, "detailed");

    let both = text.replace("      level: detailed", "      address: localhost:9999");
    let err = load_str(&both, "t.yaml", &|_| None).expect_err("both forms");
    assert_eq!(err.0.len(), 1, "{err}");
    assert_eq!(err.0[0].path, "service.telemetry.metrics.readers");
    assert_eq!(err.0[0].line, Some(11));
}

/// Scenario: header values that YAML reads as numbers or booleans.
/// Guarantees: they are sent as text; a quoted reference keeps the value byte for byte.
#[test]
fn numeric_header_values_stay_text() {
    let body = "receivers:\n  otlp:\n    protocols:\n      grpc:\nexporters:\n  debug:\n  otlp:\n    endpoint: backend:4317\n    headers:\n      X-Tenant: ${env:TENANT}\n      X-Quoted: \"${env:TENANT}\"\n      X-Flag: true\n";
    let text = format!("{body}{}", PIPELINE.replace("[debug]", "[debug, otlp]"));
    let env = |n: &str| (n == "TENANT").then(|| "0042".to_string());
    let cfg = load_str(&text, "t.yaml", &env).expect("valid").config;
    let Some(ExporterConfig::Otlp(otlp)) = cfg.exporters.get(&ComponentId::new("otlp")) else {
        panic!("otlp missing");
    };
    assert_eq!(
        otlp.headers["X-Tenant"], "42",
        "unquoted, YAML reads 0042 as a number"
    );
    assert_eq!(otlp.headers["X-Quoted"], "0042");
    assert_eq!(otlp.headers["X-Flag"], "true");
}

/// Scenario: nested settings written as empty keys (`tls:`, `sending_queue:`, `actions:`).
/// Guarantees: they take their defaults, as in otelcol, without errors or warnings.
#[test]
fn empty_nested_keys_take_defaults() {
    let body = "receivers:\n  otlp:\n    protocols:\n      grpc:\nprocessors:\n  attributes:\n    actions:\nexporters:\n  debug:\n    sending_queue:\n    retry_on_failure:\n";
    let text = format!(
        "{body}{}",
        PIPELINE.replace(
            "exporters: [debug]",
            "processors: [attributes]\n      exporters: [debug]"
        )
    );
    let loaded = load_str(&text, "t.yaml", &|_| None).expect("valid");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let Some(ExporterConfig::Debug(debug)) =
        loaded.config.exporters.get(&ComponentId::new("debug"))
    else {
        panic!("debug missing");
    };
    assert_eq!(debug.sending_queue.queue_size, None);
    assert!(debug.retry_on_failure.enabled);
}

/// Scenario: `service.telemetry.logs.level` written as otelcol's zap takes it: upper case
/// (`DEBUG`, `WARN`), and the levels above error (`dpanic`, `fatal`); `encoding: json`.
/// Guarantees: each loads, and stands for the `tracing` level of the same name, or `error`.
#[test]
fn log_levels_are_taken_as_otelcol_writes_them() {
    let base = "receivers:\n  otlp:\n    protocols:\n      grpc:\nexporters:\n  debug:\n";
    for (level, tracing_level) in [
        ("DEBUG", "debug"),
        ("info", "info"),
        ("WARN", "warn"),
        ("error", "error"),
        ("dpanic", "error"),
        ("FATAL", "error"),
    ] {
        let text = format!(
            "{base}{PIPELINE}  telemetry:\n    logs:\n      level: {level}\n      encoding: json\n"
        );
        let loaded = load_str(&text, "t.yaml", &|_| None)
            .unwrap_or_else(|e| panic!("level {level} should load:\n{e}"));
        let logs = &loaded.config.service.telemetry.logs;
        assert_eq!(logs.tracing_level(), tracing_level, "{level}");
        assert_eq!(logs.encoding, "json");
    }
}
