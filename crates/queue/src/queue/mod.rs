//! The queue's public handle and its options: open (`open.rs`), append (`append.rs`), read
//! batches (`read.rs`), acknowledge or release (`ack.rs`), when new entries wake readers
//! (`wake.rs`), stats and shutdown (here).
//!
//! All state lives behind one mutex in [`Inner`]; disk writes go through the I/O thread
//! (`crate::writer`) and segments found at open are read by the indexer thread
//! (`crate::index`), so no method here blocks on the disk except `open` and `shutdown`.

mod ack;
mod append;
mod open;
mod read;
mod wake;

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::index::Progress;
use crate::io::{QueueIo, RealIo};
use crate::state::{EntryState, State};
use crate::stats::{IndexStats, QueueCounters, QueueStats, RecoveryReport};
use crate::writer::{Command, now_nanos};

/// Smallest segment size used when the byte limit is small.
const MIN_SEGMENT_BYTES: u64 = 64 * 1024;

/// What to do with an append when the queue is at a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Refuse the append with a retryable error; the client keeps the data and retries.
    #[default]
    Block,
    /// Drop the oldest unread data (whole segments), count it, and accept the new data.
    DropOldest,
}

/// How to open a queue.
#[derive(Debug, Clone)]
pub struct QueueOptions {
    /// A name for logs (usually the exporter id and signal).
    pub name: String,
    /// The directory for segment files; `None` for an in-memory queue (lost on restart).
    pub dir: Option<PathBuf>,
    /// Byte limit: disk use for a persistent queue, payload bytes for an in-memory one.
    pub max_bytes: u64,
    /// Entry limit (otelcol's `queue_size`).
    pub max_entries: u64,
    /// Sync every group commit before acknowledging (`file_storage.fsync`).
    pub fsync: bool,
    /// Segment files roll over past this size.
    pub segment_bytes: u64,
    /// Payload bytes a persistent queue keeps in memory so readers need not read them back.
    pub cache_bytes: u64,
    /// What to do when full.
    pub when_full: WhenFull,
    /// Bytes of segment files (beyond the two oldest with live records) whose records are
    /// indexed in memory, one small entry each; the rest of the backlog is kept as a summary
    /// per segment (see `crate::index`), so memory does not grow with the backlog.
    pub index_window_bytes: u64,
    /// How long `open` waits for another process to release the folder's lock
    /// (`file_storage.timeout`; zero: refuse at once).
    pub lock_timeout: Duration,
    /// Every filesystem call the queue makes (tests inject faults here).
    pub io: Arc<dyn QueueIo>,
    /// A record-level observer (the job ledger): retention of acknowledged segments and the
    /// records `drop_oldest` deletes. `None`: no retention, no extra work.
    pub observer: Option<Arc<dyn crate::QueueObserver>>,
}

impl QueueOptions {
    /// Options with sensible defaults for a queue in `dir`.
    pub fn new(name: impl Into<String>, dir: Option<PathBuf>) -> Self {
        QueueOptions {
            name: name.into(),
            dir,
            max_bytes: 512 * 1024 * 1024,
            max_entries: u64::MAX,
            fsync: true,
            segment_bytes: 8 * 1024 * 1024,
            cache_bytes: 16 * 1024 * 1024,
            when_full: WhenFull::Block,
            index_window_bytes: 32 * 1024 * 1024,
            lock_timeout: Duration::ZERO,
            io: Arc::new(RealIo),
            observer: None,
        }
    }
}

/// Limits for one batch read by a consumer.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Wait for at least this many items (`send_batch_size`) ...
    pub min_items: u64,
    /// ... but no longer than this after the oldest unread entry was appended (`timeout`).
    pub linger: Duration,
    /// Stop adding entries past this many items (`send_batch_max_size`; 0 = no limit).
    pub max_items: u64,
    /// Stop adding entries past this many payload bytes. One entry is always taken.
    pub max_bytes: u64,
}

/// One queued record handed to a consumer.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The record id; pass it to [`Queue::ack`] once the backend accepted the data.
    pub id: u64,
    /// Items in the payload.
    pub items: u32,
    /// When it was appended, nanoseconds since the Unix epoch.
    pub appended_at: u64,
    /// The bytes given to [`Queue::append`].
    pub payload: Bytes,
}

pub(crate) struct Inner {
    pub opts: QueueOptions,
    state: Mutex<State>,
    pub notify: Notify,
    writer: Mutex<Option<Sender<Command>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The indexer thread, while segments found at open may still need reading.
    indexer: Mutex<Option<JoinHandle<()>>>,
    /// Wakes the indexer (a reader waits for a segment, a segment was deleted, shutdown).
    pub index_wake: Condvar,
    /// What recovery has found on disk so far, final once every segment is scanned.
    pub progress: Progress,
    /// The ledger's watermark at open: frames below it are acknowledged.
    pub open_watermark: u64,
    /// Disk appends waiting for their answer (the indexer yields to them).
    pub appending: AtomicU64,
    /// The folder's lock file, held (locked) until shutdown.
    dir_lock: Mutex<Option<File>>,
    /// When a failed record read was last logged as a warning (ns since the epoch).
    read_warned_at: AtomicU64,
}

impl Inner {
    /// Locks the state. A poisoned lock means a panic elsewhere; the state is still consistent
    /// enough to keep serving, so the poison is ignored.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a command to the I/O thread, if it still runs.
    pub fn send(&self, cmd: Command) {
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = writer.as_ref() {
            let _ = w.send(cmd);
        }
    }
}

/// A durable FIFO of opaque payloads with at-least-once delivery. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.inner.opts.name)
            .finish()
    }
}

impl Queue {
    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.inner.opts.name
    }

    /// Current contents and limits.
    pub fn stats(&self) -> QueueStats {
        let st = self.inner.lock();
        let oldest = st
            .entries
            .iter()
            .find(|e| e.state != EntryState::Done)
            .map(|e| e.appended_at);
        QueueStats {
            entries: st.live_entries,
            items: st.live_items,
            payload_bytes: st.payload_bytes,
            disk_bytes: st.disk_bytes,
            capacity_entries: self.inner.opts.max_entries,
            capacity_bytes: self.inner.opts.max_bytes,
            oldest_age: oldest.map(|t| Duration::from_nanos(now_nanos().saturating_sub(t))),
            in_flight: st.in_flight,
            write_error: st.write_error.clone(),
        }
    }

    /// What recovery has found on disk (damage skipped or cut, entries recovered): final once
    /// every segment found at open is scanned ([`Queue::recovered`]), so far until then.
    pub fn recovery_report(&self) -> RecoveryReport {
        self.inner.progress.report()
    }

    /// The final recovery report, if every segment found at open has been scanned.
    pub fn recovery_finished(&self) -> Option<RecoveryReport> {
        self.inner.progress.finished()
    }

    /// Waits until every segment found at open has been scanned; returns the final report.
    pub async fn recovered(&self) -> RecoveryReport {
        self.inner.progress.wait_async().await
    }

    /// How much of the queue is indexed in memory (see `crate::index`).
    pub fn index_stats(&self) -> IndexStats {
        let st = self.inner.lock();
        let mut s = IndexStats {
            indexed_entries: st.entries.len() as u64,
            ..IndexStats::default()
        };
        let unread: std::collections::HashSet<u64> = st
            .entries
            .iter()
            .filter(|e| e.state == EntryState::Unread)
            .map(|e| e.segment)
            .collect();
        for (id, seg) in &st.segments {
            s.segments += 1;
            match seg.summary() {
                None if !seg.active => {
                    s.indexed_segments += 1;
                    if seg.live > 0 && !unread.contains(id) {
                        s.in_flight_segments += 1;
                    }
                }
                None => {}
                Some(sum) if sum.scanned => s.summarized_segments += 1,
                Some(_) => s.unscanned_segments += 1,
            }
        }
        s
    }

    /// Every id below this has its outcome: acknowledged, or dropped and no longer in flight
    /// (the ack ledger's watermark in memory, held below any in-flight entry `drop_oldest`
    /// dropped, whose outcome is known only when its send ends, and below dropped records not
    /// yet handed to the observer).
    pub fn done_below(&self) -> u64 {
        let st = self.inner.lock();
        let pending = st.drop_pending.keys().min().copied();
        [pending, st.unreported_drop]
            .into_iter()
            .flatten()
            .fold(st.watermark, u64::min)
    }

    /// Deletes the kept segments the observer has released since (see [`crate::QueueObserver`]).
    pub fn release_retained(&self) {
        let writer = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = writer.as_ref() {
            let _ = w.send(Command::ReleaseRetained);
        }
    }

    /// Counters of drops, damage and refusals since open.
    pub fn counters(&self) -> QueueCounters {
        self.inner.lock().counters.clone()
    }

    /// Stops accepting appends and wakes every reader (they get `None`) and the indexer.
    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.inner.notify.notify_waiters();
        self.inner.index_wake.notify_all();
    }

    /// Closes the queue, writes the ack ledger and stops the I/O thread. Unacknowledged data
    /// stays on disk. Blocking for at most one group commit; call from `spawn_blocking`.
    pub fn shutdown(&self) {
        self.close();
        let indexer = self
            .inner
            .indexer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = indexer {
            let _ = t.join();
        }
        let writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(w) = writer {
            let _ = w.send(Command::Shutdown);
        }
        let thread = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = thread {
            let _ = t.join();
        }
        // Closing the lock file releases the folder for the next open.
        drop(
            self.inner
                .dir_lock
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(w) = self
            .writer
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = w.send(Command::Shutdown);
        }
    }
}
