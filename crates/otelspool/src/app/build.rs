//! Turns a validated config into running parts: one `match` per component kind, no registry.
//!
//! Each exporter gets one durable queue per signal it serves, in
//! `<file_storage.directory>/<exporter id>/<signal>/`, drained by `num_consumers` tasks.

use std::collections::BTreeMap;
use std::sync::Arc;

use otelspool_config as cfg;
use tokio_util::sync::CancellationToken;

use super::error::BuildError;
use super::exporters::{build_exporter, consumer_settings};
use super::ledger::build_ledger;
use super::processors::build_processors;
use super::queues::open_queue;
use super::security::{GRPC_ALPN, HTTP_ALPN, protocol_security};
use crate::delivery::{ConsumerContext, DeliveryStatus};
use crate::extensions::health_check::HealthSettings;
use crate::extensions::health_check::verdict::DeliveryChecks;
use crate::ledger::JobLedger;
use crate::pipeline::{ExporterQueue, Pipeline, Router, Signal};
use crate::processors::ProcessorChain;
use crate::receivers::otlp::{
    BodyPolicy, GrpcSettings, HttpSettings, InFlightBudget, ReceiverContext,
};
use crate::telemetry::{Metrics, PipelineView, Watch, WatchedQueue};

/// Most memory the requests in flight at one receiver may hold.
const MAX_IN_FLIGHT_BYTES: u64 = 256 * 1024 * 1024;

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
    /// The health endpoint's settings, when the extension is enabled.
    pub health: Option<HealthSettings>,
    /// What health, status and metrics watch: every queue with its delivery status.
    pub watch: Arc<Watch>,
    /// Metrics endpoint.
    pub metrics_address: Option<String>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// The job ledger, when `job_ledger` is listed in `service.extensions`.
    pub ledger: Option<Arc<JobLedger>>,
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
    let processors = build_processors(config, &metrics);
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
    let mut feeding: BTreeMap<(cfg::ComponentId, Signal), Vec<String>> = BTreeMap::new();
    for (pid, p) in &config.service.pipelines {
        for eid in &p.exporters {
            let key = (eid.clone(), signal_of(pid.signal));
            feeding
                .entry(key.clone())
                .or_default()
                .push(pid.to_string());
            wanted.entry(key).or_insert(p);
        }
    }
    // The job ledger reads its snapshot and the queue folders it follows before they open.
    let ledger = build_ledger(config).await?;
    if let Some(l) = &ledger {
        l.set_metrics(metrics.clone());
    }
    let ledger_ref = &ledger;
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
        let tracked = ledger_ref
            .as_ref()
            .and_then(|l| Some((l.clone(), l.tracked_index(&format!("{eid}/{signal}"))?)));
        let observer = tracked.as_ref().map(|(l, q)| l.observer(*q));
        let (queue, dead_letter, dir) =
            open_queue(config, eid, e.sending_queue(), *signal, observer).await?;
        let status = Arc::new(DeliveryStatus::default());
        if let Some((l, q)) = &tracked {
            l.attach(*q, queue.clone(), status.clone());
        }
        metrics_ref.init_exporter_queue(&eid.to_string(), *signal);
        let eq = ExporterQueue {
            exporter: eid.to_string(),
            signal: *signal,
            queue: queue.clone(),
            ledger: tracked.clone(),
        };
        let consumer = ConsumerContext {
            exporter_id: eid.to_string(),
            signal: *signal,
            exporter,
            queue,
            dead_letter,
            settings: consumer_settings(config, p, e),
            metrics: metrics_ref.clone(),
            status: status.clone(),
            shutdown: retry_ref.clone(),
            ledger: tracked,
        };
        let watched = WatchedQueue::new(
            eid.to_string(),
            *signal,
            eq.queue.clone(),
            status,
            dir,
            Vec::new(),
        );
        Ok::<_, BuildError>(((eid.clone(), *signal), (eq, consumer, watched)))
    }))
    .await;
    let mut queues: BTreeMap<(cfg::ComponentId, Signal), (ExporterQueue, ConsumerContext)> =
        BTreeMap::new();
    let mut watched = Vec::new();
    for result in opened {
        let (key, (eq, consumer, mut w)) = result?;
        w.pipelines = feeding.remove(&key).unwrap_or_default();
        watched.push(w);
        queues.insert(key, (eq, consumer));
    }
    let pipelines = config
        .service
        .pipelines
        .iter()
        .map(|(pid, p)| PipelineView {
            id: pid.to_string(),
            signal: signal_of(pid.signal),
            receivers: p.receivers.iter().map(ToString::to_string).collect(),
            exporters: p.exporters.iter().map(ToString::to_string).collect(),
        })
        .collect();
    let watch = Arc::new(Watch::new(watched, pipelines));

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
    for (rid, mut router) in routers {
        if let Some(l) = &ledger {
            router.set_ledger(l.clone());
        }
        let Some(cfg::ReceiverConfig::Otlp(r)) = config.receivers.get(&rid) else {
            return Err(BuildError::Invalid(format!("unknown receiver {rid}")));
        };
        // Requests in flight may hold half the memory limiter's soft limit, 256 MiB at most.
        let budget = router
            .memory_soft_limit()
            .map_or(MAX_IN_FLIGHT_BYTES, |soft| {
                (soft / 2).min(MAX_IN_FLIGHT_BYTES)
            });
        // The transport labels the receivers use.
        let transports = [
            r.protocols.grpc.as_ref().map(|_| "grpc"),
            r.protocols.http.as_ref().map(|_| "http"),
        ];
        for (transport, signal) in transports.into_iter().flatten().flat_map(|t| {
            Signal::ALL
                .into_iter()
                .filter(|s| router.accepts(*s))
                .map(move |s| (t, s))
        }) {
            metrics.init_receiver(&rid.to_string(), transport, signal);
        }
        let ctx = Arc::new(ReceiverContext {
            id: rid.to_string(),
            router,
            metrics: metrics.clone(),
            in_flight: InFlightBudget::new(budget),
        });
        let grpc = match &r.protocols.grpc {
            None => None,
            Some(g) => {
                let (tls, auth) = protocol_security(
                    config,
                    &rid,
                    "grpc",
                    g.tls.as_ref(),
                    g.auth.as_ref(),
                    GRPC_ALPN,
                )
                .await?;
                let settings = GrpcSettings {
                    max_recv_msg_size: (g.max_recv_msg_size_mib << 20) as usize,
                    body: BodyPolicy::default(),
                    tls,
                    auth,
                };
                Some((g.endpoint.clone(), settings))
            }
        };
        let http = match &r.protocols.http {
            None => None,
            Some(h) => {
                let (tls, auth) = protocol_security(
                    config,
                    &rid,
                    "http",
                    h.tls.as_ref(),
                    h.auth.as_ref(),
                    HTTP_ALPN,
                )
                .await?;
                let settings = HttpSettings {
                    max_request_body_size: h.max_request_body_size as usize,
                    body: BodyPolicy::default(),
                    tls,
                    auth,
                };
                Some((h.endpoint.clone(), settings))
            }
        };
        receivers.push(ReceiverParts { ctx, grpc, http });
    }

    let health = config
        .service
        .extensions
        .iter()
        .find_map(|id| match config.extensions.get(id) {
            Some(cfg::ExtensionConfig::HealthCheck(h)) => Some(HealthSettings {
                endpoint: h.endpoint.clone(),
                path: h.path.clone(),
                checks: h
                    .check_delivery
                    .as_ref()
                    .filter(|c| c.enabled)
                    .map(|c| DeliveryChecks {
                        max_time_since_success: c.max_time_since_success,
                        max_oldest_record_age: c.max_oldest_record_age,
                        max_queue_fill_ratio: c.max_queue_fill_ratio,
                        min_free_disk_bytes: c.min_free_disk_mib.map(|m| m.saturating_mul(1 << 20)),
                    }),
            }),
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
        watch,
        metrics_address,
        metrics,
        ledger,
    })
}
