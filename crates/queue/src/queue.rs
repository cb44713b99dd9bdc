//! The queue's public handle: open (with recovery), append, read batches, acknowledge, stats.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, oneshot};

use crate::error::{AppendError, OpenError};
use crate::format::{self, FRAME_HEADER_LEN, MAX_PAYLOAD_LEN};
use crate::io::{QueueIo, RealIo};
use crate::recovery;
use crate::state::{EntryMeta, EntryState, SegmentMeta, State};
use crate::stats::{QueueCounters, QueueStats, RecoveryReport};
use crate::writer::{self, Command, now_nanos};

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
    /// Filesystem operations on segment files (tests inject faults here).
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
    /// Opens (or creates) a queue and recovers whatever its directory holds. Blocking: call it
    /// at start-up or from `spawn_blocking`.
    pub fn open(mut opts: QueueOptions) -> Result<(Queue, RecoveryReport), OpenError> {
        // At least ~16 segments fit under the byte limit, so that drained or dropped data is
        // given back in steps smaller than the limit itself.
        opts.segment_bytes = opts
            .segment_bytes
            .min((opts.max_bytes / 16).max(MIN_SEGMENT_BYTES));
        let mut state = State::default();
        let mut report = RecoveryReport::default();
        let mut dir_lock = None;
        if let Some(dir) = &opts.dir {
            fs::create_dir_all(dir).map_err(|e| OpenError::io(dir, e))?;
            let lock_path = dir.join("lock");
            let lock = File::create(&lock_path).map_err(|e| OpenError::io(&lock_path, e))?;
            if lock.try_lock().is_err() {
                return Err(OpenError::Locked(dir.display().to_string()));
            }
            dir_lock = Some(lock);
            let ledger = fs::read(dir.join("ledger"))
                .ok()
                .and_then(|b| format::decode_ledger(&b));
            let watermark = ledger.map(|l| l.watermark);
            let scan = recovery::scan_dir(dir, watermark.unwrap_or(0))?;
            report = scan.report;
            state.next_id = scan
                .max_id
                .map_or(0, |m| m + 1)
                .max(ledger.map_or(0, |l| l.next_id.max(l.watermark)));
            state.ledger_next_id = ledger.map_or(0, |l| l.next_id);
            state.watermark = watermark.unwrap_or(0);
            for seg in scan.segments {
                if seg.frames.is_empty() {
                    fs::remove_file(&seg.path).map_err(|e| OpenError::io(&seg.path, e))?;
                    continue;
                }
                let reader =
                    Arc::new(File::open(&seg.path).map_err(|e| OpenError::io(&seg.path, e))?);
                for f in &seg.frames {
                    state.entries.push_back(EntryMeta {
                        id: f.id,
                        appended_at: f.appended_at,
                        items: f.items,
                        len: f.len,
                        segment: seg.first_id,
                        offset: f.offset,
                        state: EntryState::Unread,
                        payload: None,
                    });
                    state.live_entries += 1;
                    state.live_items += u64::from(f.items);
                    state.payload_bytes += u64::from(f.len);
                }
                state.disk_bytes += seg.file_len;
                state.segments.insert(
                    seg.first_id,
                    SegmentMeta {
                        path: seg.path,
                        reader,
                        file_len: seg.file_len,
                        live: seg.frames.len() as u64,
                        active: false,
                    },
                );
            }
            state.published_end = state.next_id;
            state.watermark = state.entries.front().map_or(state.next_id, |e| e.id);
            state.cursor_id = state.watermark;
            state.ledger_dirty = true;
            if report.entries > 0 || report.found_damage() {
                tracing::info!(queue = %opts.name, entries = report.entries, items = report.items,
                    skipped_bytes = report.skipped_bytes, truncated_bytes = report.truncated_bytes,
                    bad_segments = report.bad_segments, "recovered queue from disk; resending what was not acknowledged");
            }
        }
        let inner = Arc::new(Inner {
            opts,
            state: Mutex::new(state),
            notify: Notify::new(),
            writer: Mutex::new(None),
            thread: Mutex::new(None),
            dir_lock: Mutex::new(dir_lock),
            recovery: report.clone(),
        });
        if inner.opts.dir.is_some() {
            let (tx, rx) = mpsc::channel();
            let thread_inner = inner.clone();
            let handle = std::thread::Builder::new()
                .name(format!("queue-io-{}", inner.opts.name))
                .spawn(move || writer::run(thread_inner, rx))
                .map_err(|e| OpenError::io(std::path::Path::new("queue-io thread"), e))?;
            *inner.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
            *inner.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        }
        Ok((Queue { inner }, report))
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.inner.opts.name
    }

    /// Appends a payload of `items` telemetry items. Returns once it is durable (written and,
    /// with `fsync`, synced), with the record's id. On error nothing was stored.
    pub async fn append(&self, items: u32, payload: Bytes) -> Result<u64, AppendError> {
        if payload.len() > MAX_PAYLOAD_LEN as usize {
            return Err(AppendError::TooLarge(payload.len()));
        }
        if self.inner.opts.dir.is_none() {
            return self.append_in_memory(items, payload);
        }
        let (reply, answer) = oneshot::channel();
        let sent = {
            let writer = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            writer.as_ref().map(|w| {
                w.send(Command::Append {
                    items,
                    payload,
                    reply,
                })
                .is_ok()
            })
        };
        if sent != Some(true) {
            return Err(AppendError::Closed);
        }
        answer.await.unwrap_or(Err(AppendError::Closed))
    }

    fn append_in_memory(&self, items: u32, payload: Bytes) -> Result<u64, AppendError> {
        let opts = &self.inner.opts;
        let mut st = self.inner.lock();
        if st.closed {
            return Err(AppendError::Closed);
        }
        let len = payload.len() as u64;
        let full = |st: &State| {
            st.payload_bytes + len > opts.max_bytes || st.live_entries >= opts.max_entries
        };
        if full(&st) && opts.when_full == WhenFull::DropOldest {
            let before = st.counters.clone();
            while full(&st) {
                let oldest = st.entries.iter().position(|e| e.state != EntryState::Done);
                let Some(idx) = oldest else { break };
                st.drop_entry(idx);
                st.compact_front();
            }
            let entries = st.counters.dropped_entries - before.dropped_entries;
            let items = st.counters.dropped_items - before.dropped_items;
            if entries > 0 {
                tracing::warn!(queue = %opts.name, entries, items, reason = "queue full (when_full: drop_oldest)", "dropped the oldest queued data to make room");
            }
        }
        if full(&st) {
            st.counters.refused_full += 1;
            return Err(AppendError::Full {
                reason: format!(
                    "{} entries, {} bytes in memory",
                    st.live_entries, st.payload_bytes
                ),
                retry_after: Duration::from_secs(1),
            });
        }
        let id = st.next_id;
        st.next_id += 1;
        st.published_end = st.next_id;
        st.live_entries += 1;
        st.live_items += u64::from(items);
        st.counters.appended_entries += 1;
        st.counters.appended_items += u64::from(items);
        st.payload_bytes += len;
        st.entries.push_back(EntryMeta {
            id,
            appended_at: now_nanos(),
            items,
            len: len as u32,
            segment: 0,
            offset: 0,
            state: EntryState::Unread,
            payload: Some(payload),
        });
        drop(st);
        self.inner.notify.notify_waiters();
        Ok(id)
    }

    /// Waits for the next batch of entries. Returns `None` once the queue is closed: whatever
    /// is still unread stays on disk for the next start.
    pub async fn next_batch(&self, limits: BatchLimits) -> Option<Vec<Entry>> {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = match self.take(limits) {
                Take::Closed => return None,
                Take::Batch(entries) => match self.load(entries).await {
                    Some(batch) if !batch.is_empty() => return Some(batch),
                    _ => continue,
                },
                Take::Wait(wait) => wait,
            };
            match wait {
                Some(d) => {
                    let _ = tokio::time::timeout(d, notified).await;
                }
                None => notified.await,
            }
        }
    }

    fn take(&self, limits: BatchLimits) -> Take {
        let mut st = self.inner.lock();
        if st.closed {
            return Take::Closed;
        }
        let Some(start) = st.first_unread() else {
            return Take::Wait(None);
        };
        let mut avail = 0u64;
        for e in st.entries.range(start..) {
            if e.state == EntryState::Unread {
                avail += u64::from(e.items);
                if avail >= limits.min_items {
                    break;
                }
            }
        }
        let age = Duration::from_nanos(now_nanos().saturating_sub(st.entries[start].appended_at));
        if avail < limits.min_items && age < limits.linger {
            return Take::Wait(Some(limits.linger - age));
        }
        let max_items = if limits.max_items == 0 {
            u64::MAX
        } else {
            limits.max_items
        };
        let (mut items, mut bytes, mut taken) = (0u64, 0u64, Vec::new());
        for i in start..st.entries.len() {
            let e = &st.entries[i];
            if e.state != EntryState::Unread {
                continue;
            }
            let (ei, eb) = (u64::from(e.items), u64::from(e.len));
            if !taken.is_empty() && (items + ei > max_items || bytes + eb > limits.max_bytes) {
                break;
            }
            items += ei;
            bytes += eb;
            taken.push(i);
        }
        let mut out = Vec::with_capacity(taken.len());
        for i in taken {
            let e = &mut st.entries[i];
            e.state = EntryState::InFlight;
            let source = match &e.payload {
                Some(p) => Source::Memory(p.clone()),
                None => Source::Disk {
                    segment: e.segment,
                    offset: e.offset,
                    len: e.len,
                },
            };
            out.push((e.id, e.items, e.appended_at, source));
        }
        st.in_flight += out.len() as u64;
        let reader_of = |seg: u64| st.segments.get(&seg).map(|s| s.reader.clone());
        let out = out
            .into_iter()
            .map(|(id, items, at, src)| {
                let src = match src {
                    Source::Disk {
                        segment,
                        offset,
                        len,
                    } => match reader_of(segment) {
                        Some(file) => Loaded::Disk { file, offset, len },
                        None => Loaded::Missing,
                    },
                    Source::Memory(p) => Loaded::Memory(p),
                };
                (id, items, at, src)
            })
            .collect();
        Take::Batch(out)
    }

    /// Reads payloads that are not in memory. Damaged records are counted, logged and finished
    /// so they never block the queue.
    async fn load(&self, taken: Vec<(u64, u32, u64, Loaded)>) -> Option<Vec<Entry>> {
        let needs_disk = taken.iter().any(|t| !matches!(t.3, Loaded::Memory(_)));
        let loaded = if needs_disk {
            tokio::task::spawn_blocking(move || taken.into_iter().map(read_one).collect::<Vec<_>>())
                .await
                .ok()?
        } else {
            taken.into_iter().map(read_one).collect()
        };
        let mut out = Vec::with_capacity(loaded.len());
        let mut bad = Vec::new();
        for r in loaded {
            match r {
                Ok(e) => out.push(e),
                Err((id, reason)) => {
                    tracing::error!(queue = %self.name(), id, %reason, "queued record is unreadable; skipped and counted");
                    bad.push(id);
                }
            }
        }
        if !bad.is_empty() {
            self.inner.lock().counters.corrupt_entries += bad.len() as u64;
            self.ack(&bad);
        }
        Some(out)
    }

    /// Acknowledges entries handed out by [`Queue::next_batch`]: the backend has them (or they
    /// were dead-lettered). Ids not in flight are ignored. Space is given back once every
    /// entry of a segment is acknowledged.
    pub fn ack(&self, ids: &[u64]) {
        let mut deletable = Vec::new();
        {
            let mut st = self.inner.lock();
            for &id in ids {
                // A drop-pending entry was delivered after all: not dropped.
                if st.drop_pending.remove(&id).is_some() {
                    continue;
                }
                // Only entries handed out (in flight) can be acknowledged; a stale ack, e.g.
                // for an id handed out before a restart, must not finish a live entry.
                if let Some(idx) = st.position(id)
                    && st.entries[idx].state == EntryState::InFlight
                    && let Some(seg) = st.finish(idx)
                    && let Some(meta) = st.take_segment(seg)
                {
                    deletable.push(meta);
                }
            }
            st.compact_front();
        }
        if deletable.is_empty() {
            return;
        }
        let writer = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = writer.as_ref() {
            for seg in deletable {
                let _ = w.send(Command::Delete(seg));
            }
        }
    }

    /// Puts in-flight entries back so another consumer sends them (the sender gave up, e.g. on
    /// shutdown). They keep their place at the head of the queue.
    pub fn release(&self, ids: &[u64]) {
        let mut st = self.inner.lock();
        for &id in ids {
            // A drop-pending entry whose attempt failed is dropped now.
            if let Some(items) = st.drop_pending.remove(&id) {
                st.count_dropped(u64::from(items));
                continue;
            }
            if let Some(idx) = st.position(id)
                && st.entries[idx].state == EntryState::InFlight
            {
                st.entries[idx].state = EntryState::Unread;
                st.in_flight -= 1;
                st.cursor_id = st.cursor_id.min(id);
            }
        }
        drop(st);
        self.inner.notify.notify_waiters();
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

enum Take {
    Closed,
    Wait(Option<Duration>),
    Batch(Vec<(u64, u32, u64, Loaded)>),
}

enum Source {
    Memory(Bytes),
    Disk { segment: u64, offset: u64, len: u32 },
}

enum Loaded {
    Memory(Bytes),
    Disk {
        file: Arc<File>,
        offset: u64,
        len: u32,
    },
    Missing,
}

fn read_one(
    (id, items, appended_at, src): (u64, u32, u64, Loaded),
) -> Result<Entry, (u64, String)> {
    let payload = match src {
        Loaded::Memory(p) => p,
        Loaded::Missing => return Err((id, "segment file is gone".to_string())),
        Loaded::Disk { file, offset, len } => {
            let mut buf = vec![0u8; FRAME_HEADER_LEN + len as usize];
            file.read_exact_at(&mut buf, offset)
                .map_err(|e| (id, e.to_string()))?;
            match format::decode_frame(&buf) {
                Some((h, p)) if h.id == id => p,
                _ => return Err((id, "checksum mismatch on read".to_string())),
            }
        }
    };
    Ok(Entry {
        id,
        items,
        appended_at,
        payload,
    })
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
