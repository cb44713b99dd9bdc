//! Unknown keys are reported by what they are, whatever characters they hold, and decoding goes
//! on past them so that every other problem in the component is reported too.

use otelspool_config::{ConfigError, load_str};

fn errors_of(text: &str) -> Vec<ConfigError> {
    match load_str(text, "t.yaml", &|_| None) {
        Ok(_) => panic!("should not load:\n{text}"),
        Err(e) => e.0,
    }
}

const BASE: &str = "receivers:
  otlp:
    protocols:
      grpc:
service:
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [debug]
exporters:
  debug:
";

/// Scenario: an unknown key whose name holds a backtick (the quote serde puts around names in
/// its messages), followed by a second unknown key and a bad value in the same component.
/// Guarantees: the first key is reported with its whole name at its line and the valid keys
/// listed, and the two later problems are still reported: three errors, none garbled.
#[test]
fn a_key_with_a_backtick_is_named_whole_and_decoding_goes_on() {
    let text = format!(
        "{BASE}    sending_queue:
      queue`size: 1
      queue_sise: 2
      num_consumers: many
"
    );
    let errors = errors_of(&text);
    let at = |path: &str| {
        errors
            .iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("no error at {path}: {errors:#?}"))
    };
    let e = at("exporters.debug.sending_queue.queue`size");
    assert_eq!(e.line, Some(13));
    assert!(
        e.message
            .starts_with("unknown key \"queue`size\" (valid keys: enabled, num_consumers,"),
        "{}",
        e.message
    );
    assert_eq!(
        at("exporters.debug.sending_queue.queue_sise").line,
        Some(14)
    );
    let e = at("exporters.debug.sending_queue.num_consumers");
    assert_eq!(e.line, Some(15));
    assert!(e.message.contains("\"many\""), "{}", e.message);
    assert_eq!(errors.len(), 3, "{errors:#?}");
}

/// Scenario: a misspelled key in a pipeline.
/// Guarantees: the whole message: the key quoted and the pipeline's three valid keys listed.
#[test]
fn unknown_pipeline_key_lists_valid_keys() {
    let text = BASE.replace(
        "      exporters: [debug]\n",
        "      exporters: [debug]\n      exporter: [debug]\n",
    );
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].path, "service.pipelines.logs.exporter");
    assert_eq!(
        errors[0].message,
        "unknown key \"exporter\" (valid keys: receivers, processors, exporters)"
    );
}
