//! Settings otelspool does not implement, and invalid values, are errors naming them.

use otelspool_config::{ConfigError, load_str};

fn errors_of(text: &str) -> Vec<ConfigError> {
    match load_str(text, "t.yaml", &|_| None) {
        Ok(_) => panic!("should not load:\n{text}"),
        Err(e) => e.0,
    }
}

fn assert_error(errors: &[ConfigError], path: &str, line: usize, text: &str) {
    assert!(
        errors
            .iter()
            .any(|e| e.path == path && e.line == Some(line) && e.message.contains(text)),
        "expected {path} at line {line} containing {text:?} in:\n{}",
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

const BASE: &str = "receivers:
  otlp:
    protocols:
      grpc:
service:
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [otlp]
";

/// Scenario: otlp exporter keys for features otelspool lacks.
/// Guarantees: each is an error naming the key at its line.
#[test]
fn unsupported_exporter_keys() {
    let text = format!(
        "{BASE}exporters:
  otlp:
    endpoint: backend:4317
    keepalive:
      time: 10s
    tls:
      cert_file: /c.pem
      key_file: /k.pem
    sending_queue:
      sizer: bytes
"
    );
    let errors = errors_of(&text);
    assert_error(&errors, "exporters.otlp.keepalive", 13, "not supported");
    assert_error(
        &errors,
        "exporters.otlp.tls.cert_file",
        16,
        "client certificates",
    );
    assert_error(
        &errors,
        "exporters.otlp.tls.key_file",
        17,
        "client certificates",
    );
    assert_error(
        &errors,
        "exporters.otlp.sending_queue.sizer",
        19,
        "not supported",
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
}

/// Scenario: a receiver key otelspool does not implement (not in the warn list).
/// Guarantees: an error listing the valid keys, never silently ignored.
#[test]
fn unknown_receiver_key() {
    let text = BASE.replace(
        "      grpc:\n",
        "      grpc:\n        keepalive:\n          server_parameters: {}\n",
    ) + "exporters:\n  otlp:\n    endpoint: b:1\n";
    let errors = errors_of(&text);
    assert_error(
        &errors,
        "receivers.otlp.protocols.grpc.keepalive",
        5,
        "valid keys: endpoint",
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
}

/// Scenario: memory_limiter and attribute rules.
/// Guarantees: spike >= limit, bad percentages and malformed actions are errors at their keys.
#[test]
fn processor_rules() {
    let text = "receivers:
  otlp:
    protocols:
      grpc:
processors:
  memory_limiter:
    check_interval: 0s
    limit_mib: 100
    spike_limit_mib: 100
  memory_limiter/pct:
    check_interval: 1s
    limit_percentage: 101
  attributes:
    actions:
      - key: a
        action: insert
      - key: b
        action: delete
        value: 1
      - key: c
        action: upsert
        value: 1
        from_attribute: d
exporters:
  debug:
service:
  pipelines:
    logs:
      receivers: [otlp]
      processors: [memory_limiter, memory_limiter/pct, attributes]
      exporters: [debug]
";
    let errors = errors_of(text);
    assert_error(
        &errors,
        "processors.memory_limiter.check_interval",
        7,
        "greater than 0",
    );
    assert_error(
        &errors,
        "processors.memory_limiter.spike_limit_mib",
        9,
        "less than limit_mib",
    );
    assert_error(
        &errors,
        "processors.memory_limiter/pct.limit_percentage",
        12,
        "1 and 100",
    );
    assert_error(
        &errors,
        "processors.attributes.actions[0]",
        15,
        "exactly one",
    );
    assert_error(&errors, "processors.attributes.actions[1]", 17, "neither");
    assert_error(
        &errors,
        "processors.attributes.actions[2]",
        20,
        "exactly one",
    );
    assert_eq!(errors.len(), 6, "{errors:#?}");
}

/// Scenario: service-level mistakes.
/// Guarantees: no pipelines, an empty pipeline and a wrong-kind reference are all reported.
#[test]
fn service_rules() {
    let errors = errors_of("receivers:\n  otlp:\n    protocols:\n      grpc:\n");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].path, "service.pipelines");
    assert!(
        errors[0].message.contains("at least one pipeline"),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].line.is_none(),
        "there is no service key to point at"
    );

    let text = "receivers:
  otlp:
    protocols:
      grpc:
processors:
  batch:
exporters:
  debug:
service:
  pipelines:
    logs:
      receivers: [batch]
      exporters: [debug]
    traces/empty:
      receivers: [otlp]
";
    let errors = errors_of(text);
    assert_error(
        &errors,
        "service.pipelines.logs.receivers[0]",
        12,
        "defined in processors",
    );
    assert_error(
        &errors,
        "service.pipelines.traces/empty",
        14,
        "at least one exporter",
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
}

/// Scenario: otlphttp used by a traces pipeline with only a logs endpoint.
/// Guarantees: the missing endpoint is reported, naming the pipeline.
#[test]
fn otlphttp_needs_an_endpoint_per_used_signal() {
    let text = format!(
        "{}exporters:\n  otlphttp:\n    logs_endpoint: https://b/v1/logs\n",
        BASE.replace("logs:", "traces:").replace(
            "[otlp]\n      exporters: [otlp]",
            "[otlp]\n      exporters: [otlphttp]"
        )
    );
    let errors = errors_of(&text);
    assert_error(&errors, "exporters.otlphttp", 11, "traces_endpoint");
    assert_eq!(errors.len(), 1, "{errors:#?}");
}

/// Scenario: env references that cannot be expanded, and unknown top-level keys.
/// Guarantees: errors with the line and key path of the reference.
#[test]
fn env_and_top_level_errors() {
    let text = format!(
        "{BASE}exporters:\n  otlp:\n    endpoint: ${{env:BAD-NAME}}\n    headers:\n      a: ${{env:MULTI}}\nconnectors:\n  forward:\nextras: 1\n"
    );
    let env = |n: &str| (n == "MULTI").then(|| "x\ny".to_string());
    let errors = load_str(&text, "t.yaml", &env).expect_err("invalid").0;
    let show = errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert_error(&errors, "exporters.otlp.endpoint", 12, "BAD-NAME");
    assert_error(&errors, "exporters.otlp.headers.a", 14, "line break");
    assert!(!show.contains("x\ny"), "never print values: {show}");
    assert_error(&errors, "connectors", 15, "not supported");
    assert_error(&errors, "extras", 17, "valid keys: receivers");
}

/// Scenario: two malformed items in one list (the first is dropped to keep decoding).
/// Guarantees: the second is still reported at its own index and line.
#[test]
fn errors_in_later_list_items_keep_their_index() {
    let text = "receivers:
  otlp:
    protocols:
      grpc:
processors:
  attributes:
    actions:
      - action: insert
        value: 1
      - key: ok
        action: delete
      - key: c
        action: extract
exporters:
  debug:
service:
  pipelines:
    logs:
      receivers: [otlp]
      processors: [attributes]
      exporters: [debug]
";
    let errors = errors_of(text);
    assert_error(
        &errors,
        "processors.attributes.actions[0]",
        8,
        "missing required key \"key\"",
    );
    assert_error(
        &errors,
        "processors.attributes.actions[2].action",
        13,
        "\"extract\" is not",
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
}
