//! Opening a queue: creating or locking its folder and rebuilding the in-memory index from
//! what recovery found on disk, then starting the I/O thread.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::{Inner, MIN_SEGMENT_BYTES, Queue, QueueOptions};
use crate::error::OpenError;
use crate::format;
use crate::recovery;
use crate::state::{EntryMeta, EntryState, SegmentMeta, State};
use crate::stats::RecoveryReport;
use crate::writer;

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
            let io = &*opts.io;
            io.create_dir_all(dir).map_err(|e| OpenError::io(dir, e))?;
            let lock_path = dir.join("lock");
            let lock = io
                .open_lock(&lock_path)
                .map_err(|e| OpenError::io(&lock_path, e))?;
            if !io.try_lock(&lock).unwrap_or(false) {
                return Err(OpenError::Locked(dir.display().to_string()));
            }
            dir_lock = Some(lock);
            let ledger = io
                .read(&dir.join("ledger"))
                .ok()
                .and_then(|b| format::decode_ledger(&b));
            let watermark = ledger.map(|l| l.watermark);
            let scan = recovery::scan_dir(io, dir, watermark.unwrap_or(0))?;
            report = scan.report;
            state.next_id = scan
                .max_id
                .map_or(0, |m| m + 1)
                .max(ledger.map_or(0, |l| l.next_id.max(l.watermark)));
            state.ledger_next_id = ledger.map_or(0, |l| l.next_id);
            state.watermark = watermark.unwrap_or(0);
            for seg in scan.segments {
                if seg.frames.is_empty() {
                    io.remove_file(&seg.path)
                        .map_err(|e| OpenError::io(&seg.path, e))?;
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
}
