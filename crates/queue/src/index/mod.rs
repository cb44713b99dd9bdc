//! The background indexer: a thread that reads the segment files found at open, so that
//! `Queue::open_background` returns after reading only the lock, the ledger and the folder
//! listing, and the queue accepts (and acknowledges) appends at once, whatever the backlog.
//!
//! # What it does, in order of priority
//! 1. Index the window: the oldest segments holding live records (at least two, up to
//!    `QueueOptions::index_window_bytes` of files) get one entry per record in memory, so
//!    consumers can read them. A segment not read since open is scanned for it; one that was
//!    summarized is read back.
//! 2. Scan every other segment found at open, the newest first (its ids tell the writer where
//!    ids continue), then the oldest first, as recovery always has: torn tails cut, damage
//!    skipped, foreign files set aside, all counted in the [`RecoveryReport`], which is final
//!    once the last one is scanned. A scanned segment outside the window keeps only a summary
//!    (its live records' count, items and bytes).
//! 3. Turn indexed segments that fell outside the window (segments the writer rolled while
//!    the backlog is long) back into summaries. Memory thus follows the window, not the
//!    backlog.
//!
//! # Order guarantee
//! Records are handed out in id order, exactly as when every segment was scanned before open
//! returned: readers never take an entry at or above the first id of a segment that is not
//! indexed and still holds live records ([`State::index_gap`]); they wait for this thread,
//! which indexes that segment next. The ledger's watermark never passes such a segment either,
//! so a crash while indexing loses and reorders nothing.
//!
//! # Counts meanwhile
//! A segment not scanned yet counts the most records its ids and size allow (never fewer than
//! it holds, so `otelcol_exporter_queue_size` and the `queue_size` limit never under-count),
//! its whole size as payload bytes, and no items (unknown until scanned). The counts become
//! exact as each segment is scanned; `disk_bytes` is exact from the start (file sizes).
//!
//! # Errors
//! A failed read, cut or rename stops `Queue::open` (which waits for the scan) with the error,
//! as before. Under `open_background` the segment is retried every second, with a warning; its
//! records stay queued meanwhile.
//!
//! Reads yield to appends: while an append waits for its answer, the next segment read is held
//! back (up to 20 ms each), so a restart's first acknowledgements do not wait behind them.
//! Under `open_background` the first read also waits for the first append to be answered, for
//! at most [`STARTUP_GRACE`]: at a restart the clients that were refused meanwhile come back
//! within milliseconds, and a cold multi-megabyte read issued before them would hold their
//! first fsync back; the backlog's delivery starts that much later, which no one notices.
//!
//! Hand-written: the indexing is one loop over the queue's own state; no crate applies.

mod progress;
mod window;

pub(crate) use progress::Progress;
pub(crate) use window::Step;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::error::OpenError;
use crate::queue::Inner;
use crate::recovery::{self, ListedSegment};
use crate::state::SegmentMeta;
use crate::stats::RecoveryReport;
use crate::writer::Command;

/// How often the thread looks at the window when nothing wakes it.
const TICK: Duration = Duration::from_millis(100);
/// How long a failed read waits before it is retried (under `open_background`).
const RETRY: Duration = Duration::from_secs(1);
/// Longest the indexer holds a read back while appends wait for their answer.
const YIELD_MAX: Duration = Duration::from_millis(20);
/// How often it looks again meanwhile.
const YIELD_POLL: Duration = Duration::from_millis(1);
/// Longest the first read waits for the first append after `open_background`.
pub(crate) const STARTUP_GRACE: Duration = Duration::from_millis(100);

/// How the thread treats an I/O error while the first scan is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnError {
    /// Stop and hand the error to `Queue::open`.
    Fail,
    /// Log, wait and retry.
    Retry,
}

/// Runs the indexer until the queue is closed. `newest`: the newest segment found at open.
pub(crate) fn run(inner: Arc<Inner>, newest: Option<u64>, mut on_error: OnError) {
    let started = Instant::now();
    let mut first_scan = newest;
    let window_bytes = inner.opts.index_window_bytes;
    let mut finished = false;
    if on_error == OnError::Retry && newest.is_some() {
        wait_for_first_append(&inner, started);
    }
    loop {
        let step = {
            let mut st = inner.lock();
            if st.closed {
                return;
            }
            let step = st.next_step(window_bytes, first_scan);
            if step == Step::Idle {
                st.unindex_outside(window_bytes);
                if !finished && !st.scanning() {
                    drop(st);
                    finished = true;
                    on_error = OnError::Retry;
                    finish(&inner, started);
                    continue;
                }
                let _ = inner
                    .index_wake
                    .wait_timeout(st, TICK)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            }
            step
        };
        yield_to_appends(&inner);
        let result = match step {
            Step::Scan { first_id, index } => {
                let r = scan(&inner, first_id, index);
                if Some(first_id) == first_scan && r.is_ok() {
                    first_scan = None;
                    inner.lock().next_id_bound = None;
                }
                r
            }
            Step::Load {
                first_id,
                from,
                end,
            } => load(&inner, first_id, from, end),
            Step::Idle => Ok(None),
        };
        match result {
            Ok(deletable) => {
                if let Some(seg) = deletable {
                    inner.send(Command::Delete(seg));
                }
                inner.notify.notify_waiters();
            }
            Err(e) if on_error == OnError::Fail => {
                inner.progress.fail(e);
                return;
            }
            Err(e) => {
                tracing::warn!(queue = %inner.opts.name, error = %e, "could not read a queue segment back; its records stay queued, retrying in a second");
                let st = inner.lock();
                if st.closed {
                    return;
                }
                let _ = inner
                    .index_wake
                    .wait_timeout(st, RETRY)
                    .unwrap_or_else(|p| p.into_inner());
            }
        }
    }
}

type StepResult = Result<Option<SegmentMeta>, OpenError>;

/// Holds the next segment read back (for at most `YIELD_MAX`) while appends wait for their
/// answer: a multi-megabyte read queued ahead of their fsync would delay the acknowledgement
/// (the block layer serves reads first), which matters most right after a restart.
fn yield_to_appends(inner: &Inner) {
    let started = Instant::now();
    while inner.appending.load(Ordering::Relaxed) > 0 && started.elapsed() < YIELD_MAX {
        std::thread::sleep(YIELD_POLL);
    }
}

/// Waits until an append has been answered, the queue closes, or [`STARTUP_GRACE`] has passed
/// since `started`.
fn wait_for_first_append(inner: &Inner, started: Instant) {
    while started.elapsed() < STARTUP_GRACE {
        {
            let st = inner.lock();
            if st.closed || st.counters.appended_entries > 0 || st.counters.refused_io > 0 {
                return;
            }
        }
        std::thread::sleep(YIELD_POLL);
    }
}

/// The segment `first_id` as listed in the table, if it is still there.
fn listed(inner: &Inner, first_id: u64) -> Option<ListedSegment> {
    let st = inner.lock();
    st.segments.get(&first_id).map(|s| ListedSegment {
        first_id,
        path: s.path.clone(),
        file_len: s.file_len,
    })
}

/// Scans a segment not read since open (see `recovery::scan_segment`) and applies it.
fn scan(inner: &Inner, first_id: u64, index: bool) -> StepResult {
    let Some(seg) = listed(inner, first_id) else {
        return Ok(None);
    };
    let io = &*inner.opts.io;
    let watermark = inner.open_watermark;
    let mut report = RecoveryReport::default();
    let scanned = recovery::scan_segment(io, &seg, watermark, &mut report)
        .map_err(|e| OpenError::io(&seg.path, e))?;
    let reader = match &scanned {
        Some(s) if index && !s.frames.is_empty() => Some(Arc::new(
            io.open_read(&seg.path)
                .map_err(|e| OpenError::io(&seg.path, e))?,
        )),
        _ => None,
    };
    inner.progress.update(|r| add(r, &report));
    Ok(inner.lock().apply_scan(first_id, scanned, reader))
}

/// Reads back a summarized segment of the window and indexes it.
fn load(inner: &Inner, first_id: u64, from: u64, end: u64) -> StepResult {
    let Some(seg) = listed(inner, first_id) else {
        return Ok(None);
    };
    let io = &*inner.opts.io;
    let err = |e| OpenError::io(&seg.path, e);
    let frames = recovery::read_frames(io, &seg.path, first_id, from, end).map_err(err)?;
    let reader = Arc::new(io.open_read(&seg.path).map_err(err)?);
    Ok(inner
        .lock()
        .apply_load(first_id, (from, end), frames, reader))
}

fn add(total: &mut RecoveryReport, r: &RecoveryReport) {
    total.entries += r.entries;
    total.items += r.items;
    total.already_acked += r.already_acked;
    total.skipped_bytes += r.skipped_bytes;
    total.truncated_bytes += r.truncated_bytes;
    total.bad_segments += r.bad_segments;
}

/// Publishes the final report and logs what recovery found.
fn finish(inner: &Inner, started: Instant) {
    let report = inner.progress.report();
    if report.entries > 0 || report.found_damage() {
        tracing::info!(queue = %inner.opts.name, entries = report.entries, items = report.items,
            skipped_bytes = report.skipped_bytes, truncated_bytes = report.truncated_bytes,
            bad_segments = report.bad_segments, took_ms = started.elapsed().as_millis() as u64,
            "recovered queue from disk; resending what was not acknowledged");
    }
    inner.progress.finish();
}

/// A path for errors about the indexer itself.
pub(crate) fn thread_path() -> &'static Path {
    Path::new("queue-index thread")
}
