//! `compression` and `compression_params.level` of the OTLP exporters, as otelcol spells them.

use otelspool_config::load_str;
use otelspool_config::model::{Compression, CompressionParams, ExporterConfig};

/// A config whose `kind` exporter (otlp or otlphttp) has `body` (indented under it).
fn exporter(kind: &str, body: &str) -> String {
    format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\nexporters:\n  {kind}:\n{body}\
         service:\n  pipelines:\n    logs:\n      receivers: [otlp]\n      exporters: [{kind}]\n"
    )
}

fn loaded(kind: &str, body: &str) -> (Compression, CompressionParams) {
    let text = exporter(kind, body);
    let loaded = load_str(&text, "t.yaml", &|_| None).unwrap_or_else(|e| panic!("{e}\n{text}"));
    match loaded.config.exporters.values().next() {
        Some(ExporterConfig::Otlp(c)) => (c.compression, c.compression_params),
        Some(ExporterConfig::OtlpHttp(c)) => (c.compression, c.compression_params),
        other => panic!("unexpected exporter {other:?}"),
    }
}

/// Scenario: gzip and zstd with and without a level, on both OTLP exporters.
/// Guarantees: each loads with the compression and level written; no level means 0 (the
/// compression's default), as in otelcol.
#[test]
fn levels_load_on_both_exporters() {
    for (kind, endpoint) in [("otlp", "b:4317"), ("otlphttp", "http://b:4318")] {
        for (body, want) in [
            ("", (Compression::Gzip, 0)),
            (
                "    compression: gzip\n    compression_params:\n      level: 1\n",
                (Compression::Gzip, 1),
            ),
            (
                "    compression: gzip\n    compression_params:\n      level: -1\n",
                (Compression::Gzip, -1),
            ),
            ("    compression: zstd\n", (Compression::Zstd, 0)),
            (
                "    compression: zstd\n    compression_params:\n      level: 19\n",
                (Compression::Zstd, 19),
            ),
            ("    compression: none\n", (Compression::None, 0)),
        ] {
            let (c, p) = loaded(kind, &format!("    endpoint: {endpoint}\n{body}"));
            assert_eq!((c, p.level), want, "{kind}: {body}");
        }
    }
}

/// Scenario: levels that otelcol refuses or that otelspool cannot honour.
/// Guarantees: one error at `exporters.<id>.compression_params.level`, with the line of the
/// level and a message saying what is allowed.
#[test]
fn bad_levels_are_errors_at_their_line() {
    for (body, expect) in [
        (
            "    compression: gzip\n    compression_params:\n      level: 10\n",
            "gzip level 10 is out of range",
        ),
        (
            "    compression: gzip\n    compression_params:\n      level: -2\n",
            "Huffman only",
        ),
        (
            "    compression: none\n    compression_params:\n      level: 3\n",
            "compression is none",
        ),
    ] {
        let text = exporter("otlp", &format!("    endpoint: b:4317\n{body}"));
        let errors = load_str(&text, "t.yaml", &|_| None).expect_err(body);
        assert_eq!(errors.0.len(), 1, "{errors}");
        let e = &errors.0[0];
        assert_eq!(
            e.path, "exporters.otlp.compression_params.level",
            "{errors}"
        );
        assert!(e.message.contains(expect), "{body}: {}", e.message);
        let level_line = text
            .lines()
            .position(|l| l.contains("level:"))
            .map(|i| i + 1);
        assert_eq!(e.line, level_line, "{errors}");
    }
}

/// Scenario: an unknown key under `compression_params`.
/// Guarantees: the key is named as unknown, as every other unknown key is.
#[test]
fn unknown_compression_params_key_is_named() {
    let text = exporter(
        "otlp",
        "    endpoint: b:4317\n    compression_params:\n      levle: 1\n",
    );
    let errors = load_str(&text, "t.yaml", &|_| None).expect_err("unknown key");
    assert!(
        errors
            .0
            .iter()
            .any(|e| e.path.ends_with("compression_params.levle") || e.message.contains("levle")),
        "{errors}"
    );
}
