//! Builds the job ledger when `job_ledger` is listed in `service.extensions`: which queues it
//! follows (the first exporter of the first pipeline of each signal), where its snapshot lives,
//! and its recovery, done before those queues open.

use std::path::PathBuf;
use std::sync::Arc;

use otelspool_config as cfg;

use super::error::BuildError;
use super::queues::queue_dir;
use crate::ledger::{JobLedger, LedgerSettings};
use crate::pipeline::Signal;

fn signal_of(kind: cfg::SignalKind) -> Signal {
    match kind {
        cfg::SignalKind::Logs => Signal::Logs,
        cfg::SignalKind::Traces => Signal::Traces,
        cfg::SignalKind::Metrics => Signal::Metrics,
    }
}

/// The ledger, recovered from its snapshot and the queue folders; `None` when not enabled.
pub(super) async fn build_ledger(
    config: &cfg::Config,
) -> Result<Option<Arc<JobLedger>>, BuildError> {
    let Some(lc) =
        config
            .service
            .extensions
            .iter()
            .find_map(|id| match config.extensions.get(id) {
                Some(cfg::ExtensionConfig::JobLedger(l)) => Some(l),
                _ => None,
            })
    else {
        return Ok(None);
    };
    let mut tracked: Vec<(String, Signal, Option<PathBuf>)> = Vec::new();
    for (pid, p) in &config.service.pipelines {
        let signal = signal_of(pid.signal);
        if tracked.iter().any(|t| t.1 == signal) {
            continue;
        }
        let Some(eid) = p.exporters.first() else {
            continue;
        };
        let Some(e) = config.exporters.get(eid) else {
            continue;
        };
        let dir = queue_dir(config, eid, e.sending_queue(), signal);
        tracked.push((format!("{eid}/{signal}"), signal, dir));
    }
    let storage = config.extensions.values().find_map(|e| match e {
        cfg::ExtensionConfig::FileStorage(fs) => Some(fs.directory.join("job_ledger")),
        _ => None,
    });
    let Some(dir) = lc.directory.clone().or(storage) else {
        return Err(BuildError::Invalid(
            "extensions.job_ledger: no folder for its snapshot; set job_ledger.directory or configure a file_storage extension".into(),
        ));
    };
    let ledger = JobLedger::new(
        LedgerSettings {
            keys: lc.keys.clone(),
            max_jobs: lc.max_jobs,
            retention: lc.retention,
            complete_after: lc.complete_after,
            snapshot_interval: lc.snapshot_interval,
            dir,
        },
        tracked,
    );
    let l = ledger.clone();
    tokio::task::spawn_blocking(move || l.recover())
        .await
        .map_err(|e| BuildError::Invalid(format!("job ledger recovery task failed: {e}")))?
        .map_err(|e| BuildError::Invalid(e.to_string()))?;
    Ok(Some(ledger))
}
