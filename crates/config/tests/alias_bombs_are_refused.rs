//! YAML aliases that would expand a small file into a huge tree ("billion laughs") are refused
//! with the line of the alias where the expansion budget ran out, before the memory is spent.

use otelspool_config::{ConfigError, load_str};

fn errors_of(text: &str) -> Vec<ConfigError> {
    match load_str(text, "bomb.yaml", &|_| None) {
        Ok(_) => panic!("should not load:\n{text}"),
        Err(e) => e.0,
    }
}

/// Scenario: the classic bomb: nine levels of nine aliases to the level above, 9^9 (387
/// million) strings from a 700-byte file; unbounded, it takes gigabytes.
/// Guarantees: one error, on line 5 (the first alias that takes the copies past 10000 nodes:
/// levels b, c and d copy 90 + 819 + 7380), naming the limit.
#[test]
fn billion_laughs_is_refused_at_the_alias_that_crosses_the_limit() {
    let mut text = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        let items = vec![format!("*{prev}"); 9].join(", ");
        text.push_str(&format!("{name}: &{name} [{items}]\n"));
    }
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].line, Some(5), "{}", errors[0]);
    assert!(
        errors[0].message.contains("alias") && errors[0].message.contains("10000 nodes"),
        "{}",
        errors[0]
    );
}

/// Scenario: few nodes but a long string: a 16 KiB anchored string aliased 100 times (1.6 MB
/// of copies from a 17 KB file).
/// Guarantees: refused on the line of the alias that takes the copied text past 1 MiB,
/// naming that limit.
#[test]
fn a_long_string_aliased_many_times_is_refused() {
    let mut text = format!("a: &a \"{}\"\nb:\n", "x".repeat(16 * 1024));
    for _ in 0..100 {
        text.push_str("  - *a\n");
    }
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    // 64 copies are exactly 1 MiB; the 65th, on line 2 + 65, is one too many.
    assert_eq!(errors[0].line, Some(67), "{}", errors[0]);
    assert!(errors[0].message.contains("1048576 bytes"), "{}", errors[0]);
}

/// Scenario: anchors used as otelcol users do: the first exporter's settings merged into 49
/// others.
/// Guarantees: well within the budget, the file loads and every exporter has the settings.
#[test]
fn ordinary_anchors_still_load() {
    let mut text = String::from(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\nexporters:\n  otlp/0: &common\n    \
         endpoint: b0:4317\n    timeout: 10s\n    retry_on_failure:\n      initial_interval: 1s\n\
         \x20     max_interval: 5s\n    sending_queue:\n      num_consumers: 2\n",
    );
    let mut names = vec!["otlp/0".to_string()];
    for i in 1..50 {
        text.push_str(&format!(
            "  otlp/{i}:\n    <<: *common\n    endpoint: b{i}:4317\n"
        ));
        names.push(format!("otlp/{i}"));
    }
    text.push_str(&format!(
        "service:\n  pipelines:\n    logs:\n      receivers: [otlp]\n      exporters: [{}]\n",
        names.join(", ")
    ));
    let loaded = load_str(&text, "ok.yaml", &|_| None).expect("loads");
    assert_eq!(loaded.config.exporters.len(), 50);
    for e in loaded.config.exporters.values() {
        assert_eq!(e.sending_queue().num_consumers, 2);
        assert_eq!(e.retry_on_failure().max_interval.as_secs(), 5);
    }
}
