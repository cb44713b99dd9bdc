//! Broken configs fail with every problem named, with its key path and line.

use otelspool_config::{ConfigError, load_str};

fn errors_of(name: &str, text: &str) -> Vec<ConfigError> {
    match load_str(text, name, &|_| None) {
        Ok(loaded) => panic!("{name} should not load: {:?}", loaded.config),
        Err(e) => e.0,
    }
}

fn find<'a>(errors: &'a [ConfigError], path: &str) -> &'a ConfigError {
    errors
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("no error at {path}: {errors:#?}"))
}

/// Scenario: a misspelled key inside an exporter's queue.
/// Guarantees: the message names the key, lists valid keys, and points at line 9.
#[test]
fn unknown_key_names_key_and_line() {
    let errors = errors_of(
        "unknown_key.yaml",
        include_str!("fixtures/unknown_key.yaml"),
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = find(&errors, "exporters.debug.sending_queue.queue_sise");
    assert_eq!(e.line, Some(9));
    assert!(e.message.contains("\"queue_sise\""), "{}", e.message);
    assert!(
        e.message
            .contains("valid keys: enabled, num_consumers, queue_size,"),
        "lists valid keys: {}",
        e.message
    );
    assert_eq!(
        e.to_string(),
        format!(
            "unknown_key.yaml:9: exporters.debug.sending_queue.queue_sise: {}",
            e.message
        )
    );
}

/// Scenario: an exporter type otelspool does not implement.
/// Guarantees: the type is named with the supported list; no second "undefined" error.
#[test]
fn unknown_exporter_type() {
    let errors = errors_of(
        "unknown_exporter_type.yaml",
        include_str!("fixtures/unknown_exporter_type.yaml"),
    );
    let e = find(&errors, "exporters.kafka");
    assert_eq!(e.line, Some(6));
    assert!(e.message.contains("\"kafka\""), "{}", e.message);
    assert!(e.message.contains("otlp, otlphttp, debug"), "{}", e.message);
    // The pipeline reference is also reported (the exporter does not exist).
    let r = find(&errors, "service.pipelines.logs.exporters[0]");
    assert_eq!(r.line, Some(12));
}

/// Scenario: a pipeline names an exporter that is not defined.
/// Guarantees: the error points at the list item and names the id.
#[test]
fn pipeline_references_undefined_exporter() {
    let errors = errors_of(
        "undefined_exporter.yaml",
        include_str!("fixtures/undefined_exporter.yaml"),
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = find(&errors, "service.pipelines.traces.exporters[1]");
    assert_eq!(e.line, Some(11));
    assert!(e.message.contains("\"otlp/missing\""), "{}", e.message);
}

/// Scenario: a queue's storage names an extension that is not defined.
/// Guarantees: the error is at `sending_queue.storage` and names the extension.
#[test]
fn storage_names_missing_extension() {
    let errors = errors_of(
        "missing_storage.yaml",
        include_str!("fixtures/missing_storage.yaml"),
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = find(&errors, "exporters.otlp.sending_queue.storage");
    assert_eq!(e.line, Some(9));
    assert!(e.message.contains("file_storage/nope"), "{}", e.message);
}

/// Scenario: a duration written in English.
/// Guarantees: the error is at the key's line and shows Go's syntax.
#[test]
fn bad_duration() {
    let errors = errors_of(
        "bad_duration.yaml",
        include_str!("fixtures/bad_duration.yaml"),
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = find(&errors, "processors.batch.timeout");
    assert_eq!(e.line, Some(7));
    assert!(
        e.message.contains("5 seconds") && e.message.contains("\"5s\""),
        "{}",
        e.message
    );
}

/// Scenario: a file with thirteen independent problems.
/// Guarantees: all of them are reported, each at its own line, sorted by line, none twice.
#[test]
fn several_errors_all_reported() {
    let errors = errors_of(
        "many_errors.yaml",
        include_str!("fixtures/many_errors.yaml"),
    );
    let expected: &[(&str, usize, &str)] = &[
        ("receivers.otlp.protocols.grpc.endpoint", 5, "host:port"),
        (
            "receivers.otlp.protocols.grpc.max_recv_msg_size",
            6,
            "unknown key",
        ),
        (
            "processors.memory_limiter",
            8,
            "limit_mib or limit_percentage",
        ),
        (
            "processors.batch.send_batch_max_size",
            12,
            "send_batch_size",
        ),
        ("processors.batch.timeout", 13, "\"5s\""),
        (
            "processors.attributes.actions[0].action",
            17,
            "action \"hash\" is not supported",
        ),
        (
            "exporters.otlp.compression",
            21,
            "supported: gzip, zstd, none",
        ),
        ("exporters.otlp.balancer_name", 22, "not supported"),
        (
            "exporters.otlp.sending_queue.storage",
            24,
            "service.extensions",
        ),
        ("exporters.logging", 25, "renamed \"debug\""),
        ("service.extensions[0]", 29, "health_check"),
        ("service.pipelines.logs.processors[1]", 33, "twice"),
        ("service.pipelines.profiles", 35, "profiles"),
    ];
    for (path, line, text) in expected {
        let e = find(&errors, path);
        assert_eq!(e.line, Some(*line), "{e}");
        assert!(e.message.contains(text), "{e}");
    }
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    let lines: Vec<usize> = errors.iter().filter_map(|e| e.line).collect();
    assert!(
        lines.windows(2).all(|w| w[0] <= w[1]),
        "sorted by line: {lines:?}"
    );
}

/// Scenario: broken YAML syntax.
/// Guarantees: one error with the line of the problem.
#[test]
fn yaml_syntax_error_has_line() {
    let errors = errors_of(
        "syntax.yaml",
        "receivers:\n  otlp:\n    protocols: [grpc\nservice:\n",
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].message.contains("YAML syntax error"),
        "{}",
        errors[0]
    );
    assert!(matches!(errors[0].line, Some(3..=4)), "{}", errors[0]);
}

/// Scenario: a line indented with a tab, after a plain value, a nested key and a block scalar
/// (yaml-rust2 points at the value before the tab in each case).
/// Guarantees: the error names the line that holds the tab, and says a tab is the problem.
#[test]
fn tab_error_names_the_line_with_the_tab() {
    for (text, tab_line) in [
        ("receivers:\n  otlp:\n\tprotocols:\n", 3),
        ("receivers:\n  otlp:\n    protocols: 1\n\tgrpc:\n", 4),
        ("a:\n  b:\n    c: 1\n\n\t\td: 2\n", 5),
        ("a:\n  b: |\n\t x\n", 3),
    ] {
        let errors = errors_of("tab.yaml", text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].line, Some(tab_line), "{text:?}: {}", errors[0]);
        assert!(errors[0].message.contains("tab"), "{}", errors[0]);
    }
}
