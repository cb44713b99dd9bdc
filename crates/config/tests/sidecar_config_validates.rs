//! The rollout plan's sidecar config loads with the values it spells out.

use std::path::Path;
use std::time::Duration;

use otelspool_config::{
    ComponentId, Compression, ExporterConfig, ExtensionConfig, PipelineId, ProcessorConfig,
    ReceiverConfig, SignalKind, WhenFull, load_file, load_str,
};

const SIDECAR: &str = include_str!("fixtures/sidecar.yaml");

fn fake_env(name: &str) -> Option<String> {
    (name == "DASH0_AUTH_TOKEN").then(|| "auth_t0k3n".to_string())
}

/// Scenario: the sidecar config with a token in the environment and no dataset set.
/// Guarantees: every value in the file reaches the typed config; env is substituted.
#[test]
fn sidecar_values_are_parsed() {
    let loaded = load_str(SIDECAR, "sidecar.yaml", &fake_env).expect("sidecar config is valid");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let cfg = loaded.config;

    let ReceiverConfig::Otlp(otlp) = &cfg.receivers[&ComponentId::new("otlp")];
    let grpc = otlp.protocols.grpc.as_ref().expect("grpc enabled");
    assert_eq!(grpc.endpoint, "0.0.0.0:4317");
    assert_eq!(grpc.max_recv_msg_size_mib, 4);
    let http = otlp.protocols.http.as_ref().expect("http enabled");
    assert_eq!(http.endpoint, "0.0.0.0:4318");

    let Some(ProcessorConfig::MemoryLimiter(ml)) =
        cfg.processors.get(&ComponentId::new("memory_limiter"))
    else {
        panic!("memory_limiter missing: {:?}", cfg.processors);
    };
    assert_eq!(ml.check_interval, Duration::from_secs(1));
    assert_eq!(ml.limit_mib, Some(400));
    assert_eq!(ml.spike_limit_mib, Some(100));
    let Some(ProcessorConfig::Batch(batch)) = cfg.processors.get(&ComponentId::new("batch")) else {
        panic!("batch missing");
    };
    assert_eq!(batch.timeout, Duration::from_secs(1));
    assert_eq!(batch.send_batch_size, 1024);
    assert_eq!(batch.send_batch_max_size, 0);

    let dash0_id = ComponentId::with_name("otlp", "dash0");
    let Some(ExporterConfig::Otlp(dash0)) = cfg.exporters.get(&dash0_id) else {
        panic!("otlp/dash0 missing: {:?}", cfg.exporters);
    };
    assert_eq!(dash0.endpoint, "ingress.eu-west-1.aws.dash0.com:4317");
    assert_eq!(dash0.headers["Authorization"], "Bearer auth_t0k3n");
    assert_eq!(dash0.headers["Dash0-Dataset"], "default");
    assert_eq!(dash0.compression, Compression::Gzip);
    assert_eq!(dash0.timeout, Duration::from_secs(5));
    assert!(dash0.retry_on_failure.enabled);
    assert_eq!(
        dash0.retry_on_failure.initial_interval,
        Duration::from_secs(5)
    );
    assert_eq!(dash0.retry_on_failure.max_interval, Duration::from_secs(30));
    assert_eq!(
        dash0.retry_on_failure.max_elapsed_time,
        Some(Duration::ZERO)
    );
    let queue = &dash0.sending_queue;
    assert!(queue.enabled);
    assert_eq!(
        queue.storage,
        Some(ComponentId::with_name("file_storage", "queue"))
    );
    assert_eq!(queue.queue_size, None);
    assert_eq!(queue.max_size_mib, 512);
    assert_eq!(queue.when_full, WhenFull::Block);

    let Some(ExtensionConfig::FileStorage(fs)) = cfg
        .extensions
        .get(&ComponentId::with_name("file_storage", "queue"))
    else {
        panic!("file_storage/queue missing");
    };
    assert_eq!(fs.directory, Path::new("/var/lib/otelspool/queue"));
    assert!(fs.fsync, "otelspool fsyncs by default");
    let Some(ExtensionConfig::HealthCheck(hc)) =
        cfg.extensions.get(&ComponentId::new("health_check"))
    else {
        panic!("health_check missing");
    };
    assert_eq!(hc.endpoint, "0.0.0.0:13133");
    assert_eq!(hc.path, "/");

    assert_eq!(
        cfg.service.extensions,
        vec![
            ComponentId::with_name("file_storage", "queue"),
            ComponentId::new("health_check")
        ]
    );
    assert_eq!(cfg.service.pipelines.len(), 3);
    for signal in [SignalKind::Logs, SignalKind::Traces, SignalKind::Metrics] {
        let p = &cfg.service.pipelines[&PipelineId { signal, name: None }];
        assert_eq!(p.receivers, vec![ComponentId::new("otlp")]);
        assert_eq!(
            p.processors,
            vec![
                ComponentId::new("memory_limiter"),
                ComponentId::new("batch")
            ]
        );
        assert_eq!(p.exporters, vec![dash0_id.clone()]);
    }
}

/// Scenario: the token is not set in the environment.
/// Guarantees: the config still loads, with a warning naming the variable and its line.
#[test]
fn unset_token_warns_with_line() {
    let loaded = load_str(SIDECAR, "sidecar.yaml", &|_| None).expect("still valid");
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    let w = &loaded.warnings[0];
    assert!(w.starts_with("sidecar.yaml:23: "), "{w}");
    assert!(w.contains("DASH0_AUTH_TOKEN"), "{w}");
    assert!(
        w.contains("exporters.otlp/dash0.headers.Authorization"),
        "{w}"
    );
}

/// Scenario: the same file loaded from disk.
/// Guarantees: `load_file` reads, substitutes and validates it, naming the file in warnings.
#[test]
fn load_file_reads_the_fixture() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sidecar.yaml");
    let loaded = load_file(&path).expect("valid");
    assert!(
        loaded
            .config
            .exporters
            .contains_key(&ComponentId::with_name("otlp", "dash0"))
    );
    let missing = load_file(Path::new("/nonexistent/otelspool.yaml")).expect_err("no file");
    assert!(
        missing.to_string().contains("/nonexistent/otelspool.yaml"),
        "{missing}"
    );
}
