//! A value that came from `${env:...}` may be a secret: no error or warning prints it, wholly or
//! in part. Messages that would show the value name the variable instead, and a required value
//! that an unset variable left empty says which variable is not set.

use otelspool_config::load_str;

const RECEIVER: &str = "receivers:\n  otlp:\n    protocols:\n      grpc:\n";
const PIPELINE: &str =
    "service:\n  pipelines:\n    logs:\n      receivers: [otlp]\n      exporters: [debug]\n";

/// `exporters:` with a debug exporter whose keys are `body` (indented under it).
fn debug_exporter(body: &str) -> String {
    format!("{RECEIVER}exporters:\n  debug:\n{body}{PIPELINE}")
}

/// A config whose otlp exporter has `body` (indented under it), used by the pipeline.
fn otlp_exporter(body: &str) -> String {
    format!(
        "{RECEIVER}exporters:\n  otlp:\n{body}{}",
        PIPELINE.replace("[debug]", "[otlp]")
    )
}

/// Loads `text` with `NAME=value` set and expects an error at `path` that names `${env:NAME}`
/// and no error that contains `value` (or, for a number, its digits).
fn assert_hidden(text: &str, name: &str, value: &str, path: &str) {
    let env = |n: &str| (n == name).then(|| value.to_string());
    let errors = match load_str(text, "t.yaml", &env) {
        Ok(_) => panic!("should not load:\n{text}"),
        Err(e) => e,
    };
    let all = errors.to_string();
    let secret = value.trim_start_matches('-');
    assert!(!all.contains(secret), "{name}'s value is printed:\n{all}");
    let reference = format!("${{env:{name}}}");
    let e = errors
        .0
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("no error at {path}:\n{all}"));
    assert!(
        e.message.contains(&reference),
        "{path} does not name {reference}: {e}"
    );
}

/// Scenario: each kind of decoding error that quotes a value (wrong type, out of range, not
/// one of a set, otelcol-only, bad duration, bare number, bad component id), the value from a
/// variable.
/// Guarantees: the value is in no error; the error at the key names the variable.
#[test]
fn decoding_errors_name_the_variable() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "    sending_queue:\n      queue_size: ${env:SIZE}\n",
            "SIZE",
            "s3cret-token-AAA",
            "exporters.debug.sending_queue.queue_size",
        ),
        (
            "    sending_queue:\n      num_consumers: ${env:N}\n",
            "N",
            "-987654321",
            "exporters.debug.sending_queue.num_consumers",
        ),
        (
            "    sending_queue:\n      when_full: ${env:WHEN}\n",
            "WHEN",
            "s3cret-block",
            "exporters.debug.sending_queue.when_full",
        ),
        (
            "    verbosity: \"${env:VERB}\"\n",
            "VERB",
            "s3cret-verbose",
            "exporters.debug.verbosity",
        ),
        (
            "    retry_on_failure:\n      initial_interval: ${env:DUR}\n",
            "DUR",
            "5 s3cretsecs",
            "exporters.debug.retry_on_failure.initial_interval",
        ),
        (
            "    retry_on_failure:\n      max_interval: ${env:BARE}\n",
            "BARE",
            "987654",
            "exporters.debug.retry_on_failure.max_interval",
        ),
        (
            "    sending_queue:\n      storage: ${env:ID}\n",
            "ID",
            "s3cret id",
            "exporters.debug.sending_queue.storage",
        ),
    ];
    for (body, name, value, path) in cases {
        assert_hidden(&debug_exporter(body), name, value, path);
    }
    // A value copied by an alias keeps the variable it came from.
    let alias = "    sending_queue:\n      queue_size: &q ${env:SIZE}\n      num_consumers: *q\n";
    assert_hidden(
        &debug_exporter(alias),
        "SIZE",
        "s3cret-token-AAA",
        "exporters.debug.sending_queue.num_consumers",
    );
    for (body, name, value, path) in [
        (
            "    endpoint: b:4317\n    compression: ${env:COMP}\n",
            "COMP",
            "s3cret-gzip",
            "exporters.otlp.compression",
        ),
        (
            "    endpoint: b:4317\n    compression: ${env:COMP}\n",
            "COMP",
            "lz4",
            "exporters.otlp.compression",
        ),
        (
            "    endpoint: b:4317\n    timeout: ${env:T}\n",
            "T",
            "s3cret",
            "exporters.otlp.timeout",
        ),
    ] {
        assert_hidden(&otlp_exporter(body), name, value, path);
    }
    let action = format!(
        "{RECEIVER}processors:\n  attributes:\n    actions:\n      - key: k\n        action: ${{env:ACT}}\n        value: 1\nexporters:\n  debug:\n{}",
        PIPELINE.replace(
            "exporters: [debug]",
            "processors: [attributes]\n      exporters: [debug]"
        )
    );
    assert_hidden(
        &action,
        "ACT",
        "s3cret-hash",
        "processors.attributes.actions[0].action",
    );
}

/// Scenario: each kind of validation error that quotes a value: endpoints (no port, a bad
/// port, a gRPC path, a URL without scheme, a URL with a bad port), levels, encodings,
/// percentages, references to components, and limits quoted in another key's message.
/// Guarantees: the value is in no error; the error at the key names the variable.
#[test]
fn validation_errors_name_the_variable() {
    let grpc = |v: &str| {
        format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: {v}\nexporters:\n  debug:\n{PIPELINE}"
        )
    };
    let p = "receivers.otlp.protocols.grpc.endpoint";
    assert_hidden(&grpc("${env:EP}"), "EP", "s3cret-host", p);
    assert_hidden(&grpc("${env:EP}"), "EP", "host:s3cretport", p);
    assert_hidden(&grpc("\"h:${env:PORT}\""), "PORT", "s3cretport", p);

    let otlp = |v: &str| otlp_exporter(&format!("    endpoint: {v}\n"));
    let p = "exporters.otlp.endpoint";
    assert_hidden(&otlp("${env:EP}"), "EP", "https://s3cret.example/path", p);
    assert_hidden(&otlp("${env:EP}"), "EP", "https://b:s3cretport", p);
    assert_hidden(
        &otlp("\"https://${env:HOST}:bad\""),
        "HOST",
        "s3cret.example",
        p,
    );

    let http = |key: &str, v: &str| {
        format!(
            "{RECEIVER}exporters:\n  otlphttp:\n    {key}: {v}\n{}",
            PIPELINE.replace("[debug]", "[otlphttp]")
        )
    };
    let p = "exporters.otlphttp.endpoint";
    assert_hidden(
        &http("endpoint", "${env:URL}"),
        "URL",
        "ftp://s3cret.example",
        p,
    );
    assert_hidden(
        &http("endpoint", "${env:URL}"),
        "URL",
        "https://h:s3cretport/x",
        p,
    );
    assert_hidden(&http("endpoint", "${env:URL}"), "URL", "https:///s3cret", p);
    let p = "exporters.otlphttp.logs_endpoint";
    assert_hidden(
        &http("logs_endpoint", "${env:URL}"),
        "URL",
        "s3cret.example",
        p,
    );

    let telemetry =
        |body: &str| format!("{RECEIVER}exporters:\n  debug:\n{PIPELINE}  telemetry:\n{body}");
    for (body, path) in [
        (
            "    metrics:\n      level: ${env:V}\n",
            "service.telemetry.metrics.level",
        ),
        (
            "    metrics:\n      address: ${env:V}\n",
            "service.telemetry.metrics.address",
        ),
        (
            "    logs:\n      level: ${env:V}\n",
            "service.telemetry.logs.level",
        ),
        (
            "    logs:\n      encoding: ${env:V}\n",
            "service.telemetry.logs.encoding",
        ),
    ] {
        assert_hidden(&telemetry(body), "V", "s3cret-value", path);
    }

    let limiter = |body: &str| {
        format!(
            "{RECEIVER}processors:\n  memory_limiter:\n    check_interval: 1s\n{body}exporters:\n  debug:\n{}",
            PIPELINE.replace(
                "exporters: [debug]",
                "processors: [memory_limiter]\n      exporters: [debug]"
            )
        )
    };
    assert_hidden(
        &limiter("    limit_percentage: ${env:PCT}\n"),
        "PCT",
        "987654",
        "processors.memory_limiter.limit_percentage",
    );
    // The error is at spike_limit_mib; its message quotes limit_mib, which came from LIMIT.
    assert_hidden(
        &limiter("    limit_mib: ${env:LIMIT}\n    spike_limit_mib: 9876543\n"),
        "LIMIT",
        "987654",
        "processors.memory_limiter.spike_limit_mib",
    );
    let batch = format!(
        "{RECEIVER}processors:\n  batch:\n    send_batch_size: ${{env:SIZE}}\n    send_batch_max_size: 10\nexporters:\n  debug:\n{}",
        PIPELINE.replace(
            "exporters: [debug]",
            "processors: [batch]\n      exporters: [debug]"
        )
    );
    assert_hidden(
        &batch,
        "SIZE",
        "987654",
        "processors.batch.send_batch_max_size",
    );

    let storage = debug_exporter("    sending_queue:\n      storage: ${env:ST}\n");
    let p = "exporters.debug.sending_queue.storage";
    assert_hidden(&storage, "ST", "otlp/s3cret", p);
    assert_hidden(&storage, "ST", "file_storage/s3cret", p);
    let extensions =
        format!("{RECEIVER}exporters:\n  debug:\n{PIPELINE}  extensions: [${{env:EXT}}]\n");
    assert_hidden(
        &extensions,
        "EXT",
        "health_check/s3cret",
        "service.extensions[0]",
    );
    let reference = debug_exporter("").replace("exporters: [debug]", "exporters: [${env:EXP}]");
    assert_hidden(
        &reference,
        "EXP",
        "otlp/s3cret",
        "service.pipelines.logs.exporters[0]",
    );
    let health = format!(
        "{RECEIVER}exporters:\n  debug:\nextensions:\n  health_check:\n    endpoint: ${{env:H}}\n{PIPELINE}  extensions: [health_check]\n"
    );
    assert_hidden(
        &health,
        "H",
        "s3cret-health",
        "extensions.health_check.endpoint",
    );
}

/// Scenario: a variable whose value is not valid YAML where it is written unquoted.
/// Guarantees: the syntax error names the variable and quotes no character of the value.
#[test]
fn a_value_that_breaks_the_yaml_names_the_variable() {
    let text = otlp_exporter("    endpoint: ${env:EP}\n");
    let env = |n: &str| (n == "EP").then(|| "`s3cret".to_string());
    let errors = load_str(&text, "t.yaml", &env)
        .expect_err("invalid")
        .to_string();
    assert!(
        !errors.contains("s3cret") && !errors.contains('`'),
        "{errors}"
    );
    assert!(errors.contains("${env:EP}"), "{errors}");
}

/// Scenario: a required endpoint written as an unset variable, unquoted (null) and quoted
/// (empty text), next to a bad value written in the file.
/// Guarantees: the error at the endpoint says `is empty: ${env:DASH0_ENDPOINT} is not set`;
/// the other error shows its value and does not mention the variable.
#[test]
fn an_unset_variable_that_empties_a_required_key_is_named() {
    for v in ["${env:DASH0_ENDPOINT}", "\"${env:DASH0_ENDPOINT}\""] {
        let text = otlp_exporter(&format!("    endpoint: {v}\n    compression: lz4\n"));
        let errors = load_str(&text, "t.yaml", &|_| None).expect_err("empty endpoint");
        let e = errors
            .0
            .iter()
            .find(|e| e.path == "exporters.otlp.endpoint")
            .unwrap_or_else(|| panic!("no endpoint error: {errors}"));
        assert!(
            e.message
                .starts_with("is empty: ${env:DASH0_ENDPOINT} is not set"),
            "{v}: {e}"
        );
        let other = errors
            .0
            .iter()
            .find(|e| e.path == "exporters.otlp.compression")
            .unwrap_or_else(|| panic!("no compression error: {errors}"));
        assert_eq!(
            other.message,
            "compression \"lz4\" is not supported by otelspool (supported: gzip, zstd, none)"
        );
        assert_eq!(errors.0.len(), 2, "{errors}");
    }
}

/// Scenario: a valid config with a token in a header and an unused exporter (a warning).
/// Guarantees: it loads; no warning contains the token; the redactor of the loaded config
/// hides the token in text made later (a start-up error quoting it).
#[test]
fn warnings_and_later_messages_do_not_show_values() {
    let text = format!(
        "{RECEIVER}exporters:\n  debug:\n  otlp:\n    endpoint: b:4317\n    headers:\n      Authorization: \"Bearer ${{env:TOKEN}}\"\n{PIPELINE}"
    );
    let env = |n: &str| (n == "TOKEN").then(|| "s3cret-token".to_string());
    let loaded = load_str(&text, "t.yaml", &env).expect("valid");
    assert!(!loaded.warnings.is_empty(), "the unused exporter warns");
    assert!(
        loaded.warnings.iter().all(|w| !w.contains("s3cret")),
        "{:?}",
        loaded.warnings
    );
    let later = loaded
        .redactor
        .redact("invalid header value \"Bearer s3cret-token\"");
    assert_eq!(
        later,
        "invalid header value \"Bearer (the value of ${env:TOKEN})\""
    );
}
