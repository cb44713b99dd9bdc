//! Opening a queue: creating and locking its folder (waiting up to `lock_timeout` for another
//! process to let go), reading the ledger, rebuilding the in-memory index from what recovery
//! found on disk, then starting the I/O thread.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::{Inner, MIN_SEGMENT_BYTES, Queue, QueueOptions};
use crate::error::OpenError;
use crate::format::{self, Ledger};
use crate::io::QueueIo;
use crate::recovery::{self, Scan};
use crate::state::{EntryMeta, EntryState, SegmentMeta, State};
use crate::stats::RecoveryReport;
use crate::writer::{self, Doomed};

/// Makes the queue folder's own name durable, and its parents' names, before anything in it is
/// acknowledged. A segment's fsync and its folder's sync make the segment durable *in* the
/// folder, but a folder created by `create_dir_all` (at this start or an earlier one that was
/// killed before syncing) survives a power cut only once its parent is synced: without this the
/// power-cut test saw whole queues vanish. Done at every open (a few directory fsyncs), from the
/// folder up to the root. The folder itself must sync; an ancestor that cannot be opened or
/// synced (no permission, a read-only mount above the data) ends the walk with a warning,
/// since the operator's own folders are below it.
fn sync_folder_names(io: &dyn QueueIo, dir: &Path) -> Result<(), OpenError> {
    io.sync_dir(dir).map_err(|e| OpenError::io(dir, e))?;
    for ancestor in dir.ancestors().skip(1) {
        let ancestor = if ancestor.as_os_str().is_empty() {
            Path::new(".")
        } else {
            ancestor
        };
        if let Err(e) = io.sync_dir(ancestor) {
            tracing::warn!(folder = %ancestor.display(), error = %e, "could not sync a parent of the queue folder; a power cut may undo folders created above it");
            break;
        }
        if ancestor == Path::new(".") {
            break;
        }
    }
    Ok(())
}

/// How often a waiting open retries the folder's lock.
const LOCK_POLL: Duration = Duration::from_millis(50);

impl Queue {
    /// Opens (or creates) a queue and recovers whatever its directory holds. Blocking: call it
    /// at start-up or from `spawn_blocking`. If another process holds the folder, waits up to
    /// `opts.lock_timeout` for it to let go.
    pub fn open(mut opts: QueueOptions) -> Result<(Queue, RecoveryReport), OpenError> {
        // At least ~16 segments fit under the byte limit, so that drained or dropped data is
        // given back in steps smaller than the limit itself.
        opts.segment_bytes = opts
            .segment_bytes
            .min((opts.max_bytes / 16).max(MIN_SEGMENT_BYTES));
        let mut state = State::default();
        let mut report = RecoveryReport::default();
        let mut dir_lock = None;
        let mut doomed = Vec::new();
        if let Some(dir) = &opts.dir {
            let io = &*opts.io;
            io.create_dir_all(dir).map_err(|e| OpenError::io(dir, e))?;
            if opts.fsync {
                sync_folder_names(io, dir)?;
            }
            dir_lock = Some(lock_dir(io, dir, opts.lock_timeout)?);
            let ledger = read_ledger(io, dir)?;
            let scan = recovery::scan_dir(io, dir, ledger.map_or(0, |l| l.watermark))?;
            report = scan.report.clone();
            doomed = rebuild(&mut state, io, ledger, scan)?;
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
            read_warned_at: AtomicU64::new(0),
            recovery: report.clone(),
        });
        if inner.opts.dir.is_some() {
            let (tx, rx) = mpsc::channel();
            let thread_inner = inner.clone();
            let handle = std::thread::Builder::new()
                .name(format!("queue-io-{}", inner.opts.name))
                .spawn(move || writer::run(thread_inner, rx, doomed))
                .map_err(|e| OpenError::io(Path::new("queue-io thread"), e))?;
            *inner.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
            *inner.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        }
        Ok((Queue { inner }, report))
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

/// Fills `state` from the ledger and the scan; returns the segment files that hold nothing
/// to deliver, for the I/O thread to delete (after the ledger covers their ids).
fn rebuild(
    state: &mut State,
    io: &dyn QueueIo,
    ledger: Option<Ledger>,
    scan: Scan,
) -> Result<Vec<Doomed>, OpenError> {
    state.next_id = scan
        .max_id
        .map_or(0, |m| m + 1)
        .max(ledger.map_or(0, |l| l.next_id.max(l.watermark)));
    state.ledger_next_id = ledger.map_or(0, |l| l.next_id);
    let mut doomed = Vec::new();
    for seg in scan.segments {
        state.disk_bytes += seg.file_len;
        if seg.frames.is_empty() {
            doomed.push(Doomed {
                path: seg.path,
                file_len: seg.file_len,
            });
            continue;
        }
        let reader = Arc::new(
            io.open_read(&seg.path)
                .map_err(|e| OpenError::io(&seg.path, e))?,
        );
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
    Ok(doomed)
}
