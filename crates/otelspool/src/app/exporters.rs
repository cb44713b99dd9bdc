//! Exporters and their consumers' settings from config: one `match` per exporter type, and
//! the batch shape, retry and consumer count each exporter queue is drained with.

use std::collections::BTreeMap;
use std::time::Duration;

use otelspool_config as cfg;
use otelspool_queue::BatchLimits;

use crate::delivery::{BackoffSettings, ConsumerSettings};
use crate::exporters::{
    Compression, DebugExporter, Exporter, OtlpExporterSettings, OtlpGrpcExporter,
    OtlpHttpEndpoints, OtlpHttpExporter, OtlpHttpExporterSettings, TlsSettings, Verbosity,
};
use crate::pipeline::Signal;

/// Largest merged export request in bytes (`send_batch_max_size` limits items; this limits
/// bytes): well under the 4 MiB gRPC message limit most OTLP servers (otelcol's among them)
/// enforce, and small enough that consumers draining a backlog hold little memory (a batch
/// is read, merged and compressed: about three copies). A single larger request is still
/// sent, alone.
const DEFAULT_MAX_BATCH_BYTES: u64 = 1024 * 1024;

fn tls(t: &cfg::TlsClientConfig) -> TlsSettings {
    TlsSettings {
        insecure: t.insecure,
        ca_file: t.ca_file.clone(),
        insecure_skip_verify: t.insecure_skip_verify,
        server_name_override: t.server_name_override.clone(),
    }
}

fn compression(c: cfg::Compression, params: cfg::CompressionParams) -> Compression {
    match c {
        cfg::Compression::Gzip => Compression::gzip(params.level),
        cfg::Compression::Zstd => Compression::zstd(params.level),
        cfg::Compression::None => Compression::None,
    }
}

fn headers(h: &BTreeMap<String, String>) -> Vec<(String, String)> {
    h.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub(super) fn build_exporter(
    id: &cfg::ComponentId,
    e: &cfg::ExporterConfig,
) -> Result<Exporter, crate::exporters::BuildError> {
    Ok(match e {
        cfg::ExporterConfig::Otlp(o) => {
            Exporter::OtlpGrpc(OtlpGrpcExporter::new(OtlpExporterSettings {
                endpoint: o.endpoint.clone(),
                headers: headers(&o.headers),
                compression: compression(o.compression, o.compression_params),
                timeout: o.timeout,
                tls: tls(&o.tls),
            })?)
        }
        cfg::ExporterConfig::OtlpHttp(o) => {
            let mut endpoints = OtlpHttpEndpoints::from_base(o.endpoint.as_deref().unwrap_or(""));
            for (signal, ep) in [
                (Signal::Logs, &o.logs_endpoint),
                (Signal::Traces, &o.traces_endpoint),
                (Signal::Metrics, &o.metrics_endpoint),
            ] {
                if let Some(ep) = ep {
                    endpoints = endpoints.with_signal_endpoint(signal, ep.clone());
                }
            }
            Exporter::OtlpHttp(OtlpHttpExporter::new(OtlpHttpExporterSettings {
                endpoints,
                headers: headers(&o.headers),
                compression: compression(o.compression, o.compression_params),
                timeout: o.timeout,
                tls: tls(&o.tls),
            })?)
        }
        cfg::ExporterConfig::Debug(d) => Exporter::Debug(DebugExporter::new(
            id.to_string(),
            match d.verbosity {
                cfg::Verbosity::Basic => Verbosity::Basic,
                cfg::Verbosity::Normal => Verbosity::Normal,
                cfg::Verbosity::Detailed => Verbosity::Detailed,
            },
        )),
    })
}

pub(super) fn consumer_settings(
    config: &cfg::Config,
    p: &cfg::PipelineConfig,
    e: &cfg::ExporterConfig,
) -> ConsumerSettings {
    let batch = p
        .processors
        .iter()
        .find_map(|id| match config.processors.get(id) {
            Some(cfg::ProcessorConfig::Batch(b)) => Some(b),
            _ => None,
        });
    let limits = match batch {
        Some(b) => BatchLimits {
            min_items: u64::from(b.send_batch_size),
            linger: b.timeout,
            max_items: u64::from(b.send_batch_max_size),
            max_bytes: DEFAULT_MAX_BATCH_BYTES,
        },
        // No batch processor: one client request per export, as otelcol sends it.
        None => BatchLimits {
            min_items: 1,
            linger: Duration::ZERO,
            max_items: 0,
            max_bytes: 0,
        },
    };
    let r = e.retry_on_failure();
    ConsumerSettings {
        limits,
        backoff: BackoffSettings {
            initial_interval: r.initial_interval,
            max_interval: r.max_interval,
            multiplier: r.multiplier,
            randomization_factor: r.randomization_factor,
        },
        retry: r.enabled,
        max_elapsed: r.max_elapsed_time.filter(|d| !d.is_zero()),
        num_consumers: e.sending_queue().num_consumers,
    }
}
