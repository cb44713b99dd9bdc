//! The queue's public handle and its options: open (`open.rs`), append (`append.rs`), read
//! batches (`read.rs`), acknowledge or release (`ack.rs`), when new entries wake readers
//! (`wake.rs`), stats and shutdown (here).
//!
//! All state lives behind one mutex in [`Inner`]; disk writes go through the I/O thread
//! (`crate::writer`), so no method here blocks on the disk except `open` and `shutdown`.

mod ack;
mod append;
mod open;
mod read;
mod wake;

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::io::{QueueIo, RealIo};
use crate::state::{EntryState, State};
use crate::stats::{QueueCounters, QueueStats, RecoveryReport};
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
    /// How long `open` waits for another process to release the folder's lock
    /// (`file_storage.timeout`; zero: refuse at once).
    pub lock_timeout: Duration,
    /// Every filesystem call the queue makes (tests inject faults here).
    pub io: Arc<dyn QueueIo>,
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
            lock_timeout: Duration::ZERO,
            io: Arc::new(RealIo),
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
    /// What the last open found on disk.
    recovery: RecoveryReport,
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

    /// What opening the queue found on disk (damage skipped or cut, entries recovered).
    pub fn recovery_report(&self) -> RecoveryReport {
        self.inner.recovery.clone()
    }

    /// Counters of drops, damage and refusals since open.
    pub fn counters(&self) -> QueueCounters {
        self.inner.lock().counters.clone()
    }

    /// Stops accepting appends and wakes every reader (they get `None`).
    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.inner.notify.notify_waiters();
    }

    /// Closes the queue, writes the ack ledger and stops the I/O thread. Unacknowledged data
    /// stays on disk. Blocking for at most one group commit; call from `spawn_blocking`.
    pub fn shutdown(&self) {
        self.close();
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
