//! Opens an exporter's durable queue for one signal from its `sending_queue` and
//! `file_storage` settings: `<directory>/<exporter id>/<signal>/`, plus its dead-letter file.
//! The queue opens without reading its backlog (`Queue::open_background`); what recovery
//! finds is logged when the background scan is done.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use otelspool_config as cfg;
use otelspool_queue::{Queue, QueueObserver, QueueOptions, WhenFull};

use super::error::BuildError;
use crate::delivery::DeadLetter;
use crate::pipeline::Signal;

/// Payload bytes each persistent queue keeps in memory so fresh data is not read back.
const QUEUE_CACHE_BYTES: u64 = 8 * 1024 * 1024;

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

/// An opened queue, its dead-letter file and its folder (`None`: in memory).
pub(super) type Opened = (Queue, DeadLetter, Option<PathBuf>);

/// The `file_storage` a sending queue uses, if any.
fn storage_of<'a>(
    config: &'a cfg::Config,
    q: &cfg::SendingQueueConfig,
) -> Option<&'a cfg::FileStorageConfig> {
    q.storage
        .as_ref()
        .and_then(|sid| match config.extensions.get(sid) {
            Some(cfg::ExtensionConfig::FileStorage(fs)) => Some(fs),
            _ => None,
        })
}

/// The folder of an exporter's queue for `signal` (`None`: in memory).
pub(super) fn queue_dir(
    config: &cfg::Config,
    eid: &cfg::ComponentId,
    q: &cfg::SendingQueueConfig,
    signal: Signal,
) -> Option<PathBuf> {
    storage_of(config, q).map(|fs| fs.directory.join(folder_name(eid)).join(signal.as_str()))
}

pub(super) async fn open_queue(
    config: &cfg::Config,
    eid: &cfg::ComponentId,
    q: &cfg::SendingQueueConfig,
    signal: Signal,
    observer: Option<Arc<dyn QueueObserver>>,
) -> Result<Opened, BuildError> {
    let storage = storage_of(config, q);
    if !q.enabled {
        tracing::warn!(exporter = %eid, persistent = storage.is_some(), "sending_queue.enabled is false; otelspool still queues (on disk when storage is set, else in memory) so that a slow backend never blocks or drops");
    }
    let dir = queue_dir(config, eid, q, signal);
    let mut opts = QueueOptions::new(format!("{eid}/{signal}"), dir.clone());
    opts.observer = observer;
    let folder = dir.clone();
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
    // Returns once appends can be acknowledged; the backlog is indexed in the background, so
    // receivers listen at once whatever its size.
    let queue = tokio::task::spawn_blocking(move || Queue::open_background(opts))
        .await
        .map_err(|e| BuildError::Invalid(format!("queue open task failed: {e}")))?
        .map_err(|source| BuildError::Queue {
            id: eid.to_string(),
            signal,
            source,
        })?;
    let recovering = queue.clone();
    let (exporter, damaged_signal) = (eid.to_string(), signal);
    tokio::spawn(async move {
        let report = recovering.recovered().await;
        if report.found_damage() {
            tracing::warn!(exporter = %exporter, signal = %damaged_signal, ?report, "queue had damaged data; it was skipped and everything else will be delivered");
        }
    });
    Ok((
        queue,
        DeadLetter::new(dir.map(|d| d.join("dead-letter.bin"))),
        folder,
    ))
}
