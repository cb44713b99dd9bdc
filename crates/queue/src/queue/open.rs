//! Opening a queue: creating and locking its folder (waiting up to `lock_timeout` for another
//! process to let go), reading the ledger, listing the segment files (names and sizes, no
//! reads), then starting the I/O thread and the indexer thread, which reads the segments in
//! the background (`crate::index`).

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::{Inner, MIN_SEGMENT_BYTES, Queue, QueueOptions};
use crate::error::OpenError;
use crate::format::{self, FRAME_HEADER_LEN, Ledger, SEGMENT_HEADER_LEN};
use crate::index::{self, OnError, Progress};
use crate::io::QueueIo;
use crate::recovery::{self, ListedSegment};
use crate::state::{SegmentIndex, SegmentMeta, State, Summary};
use crate::stats::RecoveryReport;
use crate::writer;

/// The empty file that says a start has synced the queue folder and its parents.
const NAMES_SYNCED: &str = "names-synced";

/// Makes the queue folder's own name durable, and its parents' names, before anything in it is
/// acknowledged. A segment's fsync and its folder's sync make the segment durable *in* the
/// folder, but a folder created by `create_dir_all` (at this start or an earlier one that was
/// killed before syncing) survives a power cut only once its parent is synced: without this the
/// power-cut test saw whole queues vanish. The folder itself must sync; an ancestor that
/// cannot be opened or synced (no permission, a read-only mount above the data) ends the walk
/// with a warning, since the operator's own folders are below it.
///
/// Once every sync succeeded, the file `names-synced` is created in the folder. A start that
/// finds it skips the walk (about one fsync per path level, the largest part of a warm start):
/// the file is created only after the syncs returned, so seeing it, even in a page cache that
/// a power cut would lose, proves they were done, and names once durable stay so. A power cut
/// that loses the file only makes the next start sync again.
fn sync_folder_names(io: &dyn QueueIo, dir: &Path) -> Result<(), OpenError> {
    let marker = dir.join(NAMES_SYNCED);
    if io.file_size(&marker).is_ok() {
        return Ok(());
    }
    io.sync_dir(dir).map_err(|e| OpenError::io(dir, e))?;
    for ancestor in dir.ancestors().skip(1) {
        let ancestor = if ancestor.as_os_str().is_empty() {
            Path::new(".")
        } else {
            ancestor
        };
        if let Err(e) = io.sync_dir(ancestor) {
            tracing::warn!(folder = %ancestor.display(), error = %e, "could not sync a parent of the queue folder; a power cut may undo folders created above it");
            return Ok(());
        }
        if ancestor == Path::new(".") {
            break;
        }
    }
    if let Err(e) = io.create_or_truncate(&marker) {
        tracing::debug!(error = %e, "could not record that the queue folder names are synced; the next start syncs them again");
    }
    Ok(())
}

/// How often a waiting open retries the folder's lock.
const LOCK_POLL: Duration = Duration::from_millis(50);

impl Queue {
    /// Opens (or creates) a queue and recovers whatever its directory holds, returning once
    /// every segment has been scanned, with the final report (what `open_background` plus
    /// [`Queue::recovered`] give, but an I/O error while scanning fails the open, as it always
    /// has). Blocking: call it from `spawn_blocking`. If another process holds the folder,
    /// waits up to `opts.lock_timeout` for it to let go.
    pub fn open(opts: QueueOptions) -> Result<(Queue, RecoveryReport), OpenError> {
        let queue = Self::start(opts, OnError::Fail)?;
        match queue.inner.progress.wait() {
            Ok(report) => Ok((queue, report)),
            Err(e) => {
                queue.shutdown();
                Err(e)
            }
        }
    }

    /// Opens (or creates) a queue after reading only what an append needs: the folder's lock,
    /// the ledger and the list of segment files (names and sizes). Appends are accepted at
    /// once, into a new segment; the segments found are read by a background thread, oldest
    /// first (see `crate::index`), and consumers get their records in order as they are
    /// indexed. The recovery report is final once [`Queue::recovered`] returns. Blocking (for
    /// the folder's lock and a few small reads): call it from `spawn_blocking`.
    pub fn open_background(opts: QueueOptions) -> Result<Queue, OpenError> {
        Self::start(opts, OnError::Retry)
    }

    fn start(mut opts: QueueOptions, on_error: OnError) -> Result<Queue, OpenError> {
        // At least ~16 segments fit under the byte limit, so that drained or dropped data is
        // given back in steps smaller than the limit itself.
        opts.segment_bytes = opts
            .segment_bytes
            .min((opts.max_bytes / 16).max(MIN_SEGMENT_BYTES));
        let mut state = State::default();
        let mut dir_lock = None;
        let mut listed = Vec::new();
        let mut open_watermark = 0;
        if let Some(dir) = &opts.dir {
            let io = &*opts.io;
            io.create_dir_all(dir).map_err(|e| OpenError::io(dir, e))?;
            if opts.fsync {
                sync_folder_names(io, dir)?;
            }
            dir_lock = Some(lock_dir(io, dir, opts.lock_timeout)?);
            let ledger = read_ledger(io, dir)?;
            listed = recovery::list_segments(io, dir).map_err(|e| OpenError::io(dir, e))?;
            open_watermark = ledger.map_or(0, |l| l.watermark);
            seed(&mut state, ledger, &listed);
        }
        let progress = Progress::default();
        progress.update(|r| r.segments = listed.len() as u64);
        let inner = Arc::new(Inner {
            opts,
            state: Mutex::new(state),
            notify: Notify::new(),
            writer: Mutex::new(None),
            thread: Mutex::new(None),
            indexer: Mutex::new(None),
            index_wake: Condvar::new(),
            progress,
            open_watermark,
            appending: AtomicU64::new(0),
            dir_lock: Mutex::new(dir_lock),
            read_warned_at: AtomicU64::new(0),
        });
        if inner.opts.dir.is_none() {
            inner.progress.finish();
            return Ok(Queue { inner });
        }
        let (tx, rx) = mpsc::channel();
        let thread_inner = inner.clone();
        let handle = std::thread::Builder::new()
            .name(format!("queue-io-{}", inner.opts.name))
            .spawn(move || writer::run(thread_inner, rx, Vec::new()))
            .map_err(|e| OpenError::io(Path::new("queue-io thread"), e))?;
        *inner.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        *inner.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        let queue = Queue { inner };
        let index_inner = queue.inner.clone();
        let newest = listed.last().map(|s| s.first_id);
        let spawned = std::thread::Builder::new()
            .name(format!("queue-index-{}", queue.inner.opts.name))
            .spawn(move || index::run(index_inner, newest, on_error));
        match spawned {
            Ok(h) => {
                *queue
                    .inner
                    .indexer
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(h);
                Ok(queue)
            }
            Err(e) => {
                queue.shutdown();
                Err(OpenError::io(index::thread_path(), e))
            }
        }
    }
}

/// Takes the folder's lock, polling until `timeout` has passed while another process holds it
/// (otelcol's `file_storage.timeout`).
fn lock_dir(io: &dyn QueueIo, dir: &Path, timeout: Duration) -> Result<std::fs::File, OpenError> {
    let path = dir.join("lock");
    let lock = io.open_lock(&path).map_err(|e| OpenError::io(&path, e))?;
    let started = Instant::now();
    loop {
        if io.try_lock(&lock).map_err(|e| OpenError::io(&path, e))? {
            return Ok(lock);
        }
        let waited = started.elapsed();
        if waited >= timeout {
            return Err(OpenError::Locked {
                dir: dir.display().to_string(),
                waited,
            });
        }
        std::thread::sleep(LOCK_POLL.min(timeout - waited));
    }
}

/// Reads the ledger: `None` when there is none or it is damaged ("nothing acknowledged": more
/// duplicates, never loss). An I/O error fails the open instead: a ledger that exists but
/// cannot be read might hold the next id, and guessing could reuse ids.
fn read_ledger(io: &dyn QueueIo, dir: &Path) -> Result<Option<Ledger>, OpenError> {
    let path = dir.join("ledger");
    match io.read(&path) {
        Ok(bytes) => Ok(format::decode_ledger(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(OpenError::io(&path, e)),
    }
}

/// Fills `state` from the ledger and the folder listing alone: every segment is a summary
/// not scanned yet, counted with the most records its ids and size allow (see `crate::index`).
fn seed(state: &mut State, ledger: Option<Ledger>, listed: &[ListedSegment]) {
    let watermark = ledger.map_or(0, |l| l.watermark);
    state.next_id = ledger.map_or(0, |l| l.next_id.max(l.watermark));
    state.ledger_next_id = ledger.map_or(0, |l| l.next_id);
    // Frames are at least a header long, and ids rise by one per frame within a segment.
    let most_frames =
        |s: &ListedSegment| s.file_len.saturating_sub(SEGMENT_HEADER_LEN) / FRAME_HEADER_LEN as u64;
    state.next_id_bound = listed
        .last()
        .map(|s| s.first_id.saturating_add(most_frames(s) + 1))
        .filter(|&b| b > state.next_id);
    for (i, s) in listed.iter().enumerate() {
        let from = s.first_id.max(watermark);
        let live = match listed.get(i + 1) {
            Some(next) => most_frames(s).min(next.first_id.saturating_sub(from)),
            None => most_frames(s),
        };
        let payload_bytes = if live == 0 {
            0
        } else {
            s.file_len.saturating_sub(SEGMENT_HEADER_LEN)
        };
        state.disk_bytes += s.file_len;
        state.live_entries += live;
        state.payload_bytes += payload_bytes;
        state.segments.insert(
            s.first_id,
            SegmentMeta {
                path: s.path.clone(),
                reader: None,
                file_len: s.file_len,
                live,
                active: false,
                index: SegmentIndex::Summary(Summary {
                    scanned: false,
                    items: 0,
                    payload_bytes,
                    from,
                    end: u64::MAX,
                }),
            },
        );
    }
    state.published_end = state.next_id;
    state.compact_front();
    state.cursor_id = state.watermark;
    state.ledger_dirty = true;
}
