//! The embedded default config loads, with the documented endpoints and data directory.

use std::path::Path;
use std::time::Duration;

use otelspool_config::{
    ComponentId, DEFAULT_CONFIG_YAML, ExporterConfig, ExtensionConfig, ProcessorConfig,
    ReceiverConfig, load_str,
};

/// Scenario: no environment variables set.
/// Guarantees: localhost-only endpoints, a persistent queue under ./otelspool-data, no warnings.
#[test]
fn default_config_loads() {
    let loaded = load_str(DEFAULT_CONFIG_YAML, "<default>", &|_| None).expect("default is valid");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let cfg = loaded.config;
    let ReceiverConfig::Otlp(otlp) = &cfg.receivers[&ComponentId::new("otlp")];
    assert_eq!(
        otlp.protocols.grpc.as_ref().map(|g| g.endpoint.as_str()),
        Some("127.0.0.1:4317")
    );
    assert_eq!(
        otlp.protocols.http.as_ref().map(|h| h.endpoint.as_str()),
        Some("127.0.0.1:4318")
    );
    let Some(ProcessorConfig::MemoryLimiter(ml)) =
        cfg.processors.get(&ComponentId::new("memory_limiter"))
    else {
        panic!("memory_limiter missing");
    };
    assert_eq!(
        (ml.check_interval, ml.limit_mib),
        (Duration::from_secs(1), Some(256))
    );
    let Some(ProcessorConfig::Batch(b)) = cfg.processors.get(&ComponentId::new("batch")) else {
        panic!("batch missing");
    };
    assert_eq!(
        (b.send_batch_size, b.timeout),
        (8192, Duration::from_millis(200))
    );
    let Some(ExporterConfig::Debug(debug)) = cfg.exporters.get(&ComponentId::new("debug")) else {
        panic!("debug missing");
    };
    assert_eq!(
        debug.sending_queue.storage,
        Some(ComponentId::new("file_storage"))
    );
    let Some(ExtensionConfig::FileStorage(fs)) =
        cfg.extensions.get(&ComponentId::new("file_storage"))
    else {
        panic!("file_storage missing");
    };
    assert_eq!(fs.directory, Path::new("./otelspool-data"));
    let Some(ExtensionConfig::HealthCheck(hc)) =
        cfg.extensions.get(&ComponentId::new("health_check"))
    else {
        panic!("health_check missing");
    };
    assert_eq!(hc.endpoint, "127.0.0.1:13133");
    assert_eq!(cfg.service.telemetry.metrics.address, "127.0.0.1:8888");
    assert_eq!(cfg.service.pipelines.len(), 3);
}

/// Scenario: OTELSPOOL_DATA_DIR is set.
/// Guarantees: the queue directory follows it.
#[test]
fn data_dir_follows_env() {
    let env = |n: &str| (n == "OTELSPOOL_DATA_DIR").then(|| "/data/spool".to_string());
    let cfg = load_str(DEFAULT_CONFIG_YAML, "<default>", &env)
        .expect("valid")
        .config;
    let Some(ExtensionConfig::FileStorage(fs)) =
        cfg.extensions.get(&ComponentId::new("file_storage"))
    else {
        panic!("file_storage missing");
    };
    assert_eq!(fs.directory, Path::new("/data/spool"));
}
