//! Turns a validated config into running parts: one `match` per component kind, no registry.
//!
//! Each exporter gets one durable queue per signal it serves, in
//! `<file_storage.directory>/<exporter id>/<signal>/`, drained by `num_consumers` tasks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use otelspool_config as cfg;
use otelspool_queue::{BatchLimits, Queue, QueueOptions, WhenFull};
use tokio_util::sync::CancellationToken;

use crate::exporters::{
    BackoffSettings, Compression, ConsumerContext, ConsumerSettings, DeadLetter, DebugExporter,
    Exporter, OtlpExporterSettings, OtlpGrpcExporter, OtlpHttpEndpoints, OtlpHttpExporter,
    OtlpHttpExporterSettings, ProbeGate, TlsSettings, Verbosity,
};
use crate::pipeline::{ExporterQueue, Pipeline, Router, Signal};
use crate::processors::{
    ActionKind, AttributeAction, MemoryLimiter, MemoryLimits, Processor, ProcessorChain,
    ValueSource, any_value_from_json,
};
use crate::receivers::otlp::{GrpcSettings, HttpSettings, InFlightBudget, ReceiverContext};
use crate::telemetry::Metrics;
use crate::telemetry::process::total_memory_bytes;

/// Largest merged export request in bytes (`send_batch_max_size` limits items; this limits
/// bytes): well under the 4 MiB gRPC message limit most OTLP servers (otelcol's among them)
/// enforce, and small enough that consumers draining a backlog hold little memory (a batch
/// is read, merged and compressed: about three copies). A single larger request is still
/// sent, alone.
const DEFAULT_MAX_BATCH_BYTES: u64 = 1024 * 1024;
/// Most memory the requests in flight at one receiver may hold.
const MAX_IN_FLIGHT_BYTES: u64 = 256 * 1024 * 1024;
/// Payload bytes each persistent queue keeps in memory so fresh data is not read back.
const QUEUE_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// Why the config could not be turned into running parts.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An exporter could not be created.
    #[error("exporter {id}: {source}")]
    Exporter {
        /// Exporter id.
        id: String,
        /// The cause.
        source: crate::exporters::BuildError,
    },
    /// A queue could not be opened. The cause is the source, printed after this by a chain
    /// printer (`{:#}`), so it is not repeated here.
    #[error("exporter {id}: sending queue for {signal}")]
    Queue {
        /// Exporter id.
        id: String,
        /// Signal.
        signal: Signal,
        /// The cause.
        source: otelspool_queue::OpenError,
    },
    /// A referenced component is missing (validation should have caught it).
    #[error("{0}")]
    Invalid(String),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// One receiver's servers.
#[derive(Debug)]
pub struct ReceiverParts {
    /// Shared context.
    pub ctx: Arc<ReceiverContext>,
    /// gRPC endpoint and settings.
    pub grpc: Option<(String, GrpcSettings)>,
    /// HTTP endpoint and settings.
    pub http: Option<(String, HttpSettings)>,
}

/// Everything `run` starts.
#[derive(Debug)]
pub struct Parts {
    /// Receivers.
    pub receivers: Vec<ReceiverParts>,
    /// Every exporter queue.
    pub queues: Vec<ExporterQueue>,
    /// Queue consumers to spawn.
    pub consumers: Vec<ConsumerContext>,
    /// Health endpoint and path.
    pub health: Option<(String, String)>,
    /// Metrics endpoint.
    pub metrics_address: Option<String>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
}

fn signal_of(kind: cfg::SignalKind) -> Signal {
    match kind {
        cfg::SignalKind::Logs => Signal::Logs,
        cfg::SignalKind::Traces => Signal::Traces,
        cfg::SignalKind::Metrics => Signal::Metrics,
    }
}

/// Builds every part. Opens the queues (recovering what they hold); starts nothing that
/// listens. Must run inside the Tokio runtime.
pub async fn build(
    config: &cfg::Config,
    retry_stop: CancellationToken,
) -> Result<Parts, BuildError> {
    let metrics = Arc::new(Metrics::new()?);
    let processors = build_processors(config);
    let mut exporters = BTreeMap::new();
    for (id, e) in &config.exporters {
        let exporter = build_exporter(id, e).map_err(|source| BuildError::Exporter {
            id: id.to_string(),
            source,
        })?;
        exporters.insert(id.clone(), Arc::new(exporter));
    }

    // Queues: one per (exporter, signal) in use; batch shape from the first pipeline using it.
    // They are opened concurrently: each open scans its backlog from disk.
    let mut wanted: BTreeMap<(cfg::ComponentId, Signal), &cfg::PipelineConfig> = BTreeMap::new();
    for (pid, p) in &config.service.pipelines {
        for eid in &p.exporters {
            wanted
                .entry((eid.clone(), signal_of(pid.signal)))
                .or_insert(p);
        }
    }
    let (exporters, metrics_ref, retry_ref) = (&exporters, &metrics, &retry_stop);
    let opened = futures::future::join_all(wanted.iter().map(|((eid, signal), p)| async move {
        let e = config
            .exporters
            .get(eid)
            .ok_or_else(|| BuildError::Invalid(format!("unknown exporter {eid}")))?;
        let exporter = exporters
            .get(eid)
            .cloned()
            .ok_or_else(|| BuildError::Invalid(format!("unknown exporter {eid}")))?;
        let (queue, dead_letter) = open_queue(config, eid, e.sending_queue(), *signal).await?;
        let eq = ExporterQueue {
            exporter: eid.to_string(),
            signal: *signal,
            queue: queue.clone(),
        };
        let consumer = ConsumerContext {
            exporter_id: eid.to_string(),
            signal: *signal,
            exporter,
            queue,
            dead_letter,
            settings: consumer_settings(config, p, e),
            metrics: metrics_ref.clone(),
            shutdown: retry_ref.clone(),
            gate: Arc::new(ProbeGate::default()),
        };
        Ok::<_, BuildError>(((eid.clone(), *signal), (eq, consumer)))
    }))
    .await;
    let mut queues: BTreeMap<(cfg::ComponentId, Signal), (ExporterQueue, ConsumerContext)> =
        BTreeMap::new();
    for result in opened {
        let (key, value) = result?;
        queues.insert(key, value);
    }

    // Pipelines and the routers of the receivers that feed them.
    let mut routers: BTreeMap<cfg::ComponentId, Router> = BTreeMap::new();
    for (pid, p) in &config.service.pipelines {
        let signal = signal_of(pid.signal);
        let chain = ProcessorChain::new(
            p.processors
                .iter()
                .filter_map(|id| processors.get(id).cloned())
                .collect(),
        );
        let pipeline = Arc::new(Pipeline {
            id: pid.to_string(),
            processors: chain,
            exporters: p
                .exporters
                .iter()
                .filter_map(|eid| queues.get(&(eid.clone(), signal)).map(|q| q.0.clone()))
                .collect(),
            metrics: metrics.clone(),
        });
        for rid in &p.receivers {
            routers
                .entry(rid.clone())
                .or_default()
                .add(signal, pipeline.clone());
        }
    }
    let mut receivers = Vec::new();
    for (rid, router) in routers {
        let Some(cfg::ReceiverConfig::Otlp(r)) = config.receivers.get(&rid) else {
            return Err(BuildError::Invalid(format!("unknown receiver {rid}")));
        };
        // Requests in flight may hold half the memory limiter's soft limit, 256 MiB at most.
        let budget = router
            .memory_soft_limit()
            .map_or(MAX_IN_FLIGHT_BYTES, |soft| {
                (soft / 2).min(MAX_IN_FLIGHT_BYTES)
            });
        let ctx = Arc::new(ReceiverContext {
            id: rid.to_string(),
            router,
            metrics: metrics.clone(),
            in_flight: InFlightBudget::new(budget),
        });
        receivers.push(ReceiverParts {
            ctx,
            grpc: r.protocols.grpc.as_ref().map(|g| {
                (
                    g.endpoint.clone(),
                    GrpcSettings {
                        max_recv_msg_size: (g.max_recv_msg_size_mib << 20) as usize,
                    },
                )
            }),
            http: r.protocols.http.as_ref().map(|h| {
                (
                    h.endpoint.clone(),
                    HttpSettings {
                        max_request_body_size: h.max_request_body_size as usize,
                    },
                )
            }),
        });
    }

    let health = config
        .service
        .extensions
        .iter()
        .find_map(|id| match config.extensions.get(id) {
            Some(cfg::ExtensionConfig::HealthCheck(h)) => {
                Some((h.endpoint.clone(), h.path.clone()))
            }
            _ => None,
        });
    let metrics_address = (config.service.telemetry.metrics.level != "none")
        .then(|| config.service.telemetry.metrics.address.clone());
    let (queues, consumers) = queues.into_values().unzip();
    Ok(Parts {
        receivers,
        queues,
        consumers,
        health,
        metrics_address,
        metrics,
    })
}

fn build_processors(config: &cfg::Config) -> BTreeMap<cfg::ComponentId, Processor> {
    let mut out = BTreeMap::new();
    for (id, p) in &config.processors {
        let processor = match p {
            cfg::ProcessorConfig::Batch(_) => continue, // applied by the queue consumers
            cfg::ProcessorConfig::MemoryLimiter(m) => {
                Processor::MemoryLimiter(MemoryLimiter::start(memory_limits(m)))
            }
            cfg::ProcessorConfig::Resource(r) => {
                Processor::Resource(Arc::new(actions(&r.attributes)))
            }
            cfg::ProcessorConfig::Attributes(a) => {
                Processor::Attributes(Arc::new(actions(&a.actions)))
            }
        };
        out.insert(id.clone(), processor);
    }
    out
}

/// otelcol's rules: `limit_mib` or `limit_percentage` of total memory; spike defaults to 20%.
fn memory_limits(m: &cfg::MemoryLimiterConfig) -> MemoryLimits {
    let total = total_memory_bytes().unwrap_or(u64::MAX);
    let pct = |p: u32| total / 100 * u64::from(p);
    let limit = m
        .limit_mib
        .map(|mib| mib << 20)
        .or(m.limit_percentage.map(pct))
        .unwrap_or(total);
    let spike = m
        .spike_limit_mib
        .map(|mib| mib << 20)
        .or(m.spike_limit_percentage.map(pct))
        .unwrap_or(limit / 5);
    MemoryLimits {
        limit,
        spike,
        check_interval: m.check_interval,
    }
}

fn actions(list: &[cfg::AttributeAction]) -> Vec<AttributeAction> {
    list.iter()
        .map(|a| AttributeAction {
            key: a.key.clone(),
            kind: match a.action {
                cfg::ActionKind::Insert => ActionKind::Insert,
                cfg::ActionKind::Update => ActionKind::Update,
                cfg::ActionKind::Upsert => ActionKind::Upsert,
                cfg::ActionKind::Delete => ActionKind::Delete,
            },
            value: match (&a.value, &a.from_attribute) {
                (Some(v), _) => {
                    any_value_from_json(v).map_or(ValueSource::None, ValueSource::Literal)
                }
                (None, Some(from)) => ValueSource::FromAttribute(from.clone()),
                (None, None) => ValueSource::None,
            },
        })
        .collect()
}

fn tls(t: &cfg::TlsClientConfig) -> TlsSettings {
    TlsSettings {
        insecure: t.insecure,
        ca_file: t.ca_file.clone(),
        insecure_skip_verify: t.insecure_skip_verify,
        server_name_override: t.server_name_override.clone(),
    }
}

fn compression(c: cfg::Compression) -> Compression {
    match c {
        cfg::Compression::Gzip => Compression::Gzip,
        cfg::Compression::None => Compression::None,
    }
}

fn headers(h: &BTreeMap<String, String>) -> Vec<(String, String)> {
    h.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn build_exporter(
    id: &cfg::ComponentId,
    e: &cfg::ExporterConfig,
) -> Result<Exporter, crate::exporters::BuildError> {
    Ok(match e {
        cfg::ExporterConfig::Otlp(o) => {
            Exporter::OtlpGrpc(OtlpGrpcExporter::new(OtlpExporterSettings {
                endpoint: o.endpoint.clone(),
                headers: headers(&o.headers),
                compression: compression(o.compression),
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
                compression: compression(o.compression),
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

/// A folder name for a component id: `otlp/dash0` -> `otlp-dash0`.
fn folder_name(id: &cfg::ComponentId) -> String {
    id.to_string()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

async fn open_queue(
    config: &cfg::Config,
    eid: &cfg::ComponentId,
    q: &cfg::SendingQueueConfig,
    signal: Signal,
) -> Result<(Queue, DeadLetter), BuildError> {
    let storage = q
        .storage
        .as_ref()
        .and_then(|sid| match config.extensions.get(sid) {
            Some(cfg::ExtensionConfig::FileStorage(fs)) => Some(fs),
            _ => None,
        });
    if !q.enabled {
        tracing::warn!(exporter = %eid, persistent = storage.is_some(), "sending_queue.enabled is false; otelspool still queues (on disk when storage is set, else in memory) so that a slow backend never blocks or drops");
    }
    let dir: Option<PathBuf> =
        storage.map(|fs| fs.directory.join(folder_name(eid)).join(signal.as_str()));
    let mut opts = QueueOptions::new(format!("{eid}/{signal}"), dir.clone());
    opts.max_bytes = q.max_size_mib << 20;
    opts.max_entries = q.queue_size.unwrap_or(if dir.is_some() {
        cfg::model::exporter_helper::default_persistent_queue_size()
    } else {
        cfg::model::exporter_helper::default_queue_size()
    });
    opts.fsync = storage.is_none_or(|fs| fs.fsync);
    opts.cache_bytes = QUEUE_CACHE_BYTES;
    opts.lock_timeout = storage.map_or(Duration::ZERO, |fs| fs.timeout);
    opts.when_full = match q.when_full {
        cfg::WhenFull::Block => WhenFull::Block,
        cfg::WhenFull::DropOldest => WhenFull::DropOldest,
    };
    if let Some(fs) = storage
        && !fs.create_directory
        && !fs.directory.is_dir()
    {
        return Err(BuildError::Invalid(format!(
            "file_storage directory {} does not exist and create_directory is false",
            fs.directory.display()
        )));
    }
    let (queue, report) = tokio::task::spawn_blocking(move || Queue::open(opts))
        .await
        .map_err(|e| BuildError::Invalid(format!("queue open task failed: {e}")))?
        .map_err(|source| BuildError::Queue {
            id: eid.to_string(),
            signal,
            source,
        })?;
    if report.found_damage() {
        tracing::warn!(exporter = %eid, %signal, ?report, "queue had damaged data; it was skipped and everything else will be delivered");
    }
    Ok((
        queue,
        DeadLetter::new(dir.map(|d| d.join("dead-letter.bin"))),
    ))
}

fn consumer_settings(
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
