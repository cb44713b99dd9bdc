//! The I/O thread: the only code that writes, syncs or deletes queue files.
//!
//! Appends arrive over a channel. The thread takes everything waiting (group commit), checks
//! the limits, assigns ids, writes all frames with one `write` per segment touched, syncs once,
//! and only then publishes the entries to readers and answers the callers. Async tasks never
//! block on the disk: they wait on a oneshot answer.
//!
//! # After a failed write, create or fsync
//! Every segment the failed group touched is abandoned: its tail is cut back to the last
//! synced length, its file closed and never written or synced again, and the next group opens
//! a fresh segment, syncing the file and the folder before any acknowledgement. The callers of
//! the failed group get a retryable error; ids are never reused.
//!
//! This is safe after a failed fsync although Linux may then drop the unsynced pages and mark
//! them clean, so that a later fsync of the same file succeeds without them ("fsyncgate"),
//! because no acknowledgement ever depends on a fsync after a failed one on the same file:
//! - records acknowledged before the failure were made durable by an earlier fsync that
//!   succeeded; the pages a failed fsync may drop hold only the failed group's frames, which
//!   were never acknowledged;
//! - the abandoned file is never synced again: its writable handle is closed (or kept only to
//!   retry cutting the tail, never synced), readers only read records synced before, and the
//!   ledger is a different file;
//! - segments are append-only, so nothing later is written into the dropped pages.
//!
//! fjall refuses all writes after a failed fsync ("poisoned") because its journal is one file it
//! would otherwise keep writing and syncing. Here a segment can simply be left behind, which
//! is the same protection (nothing is ever synced again through a file whose fsync failed),
//! so the queue keeps serving as soon as the disk does instead of until a restart. The fault
//! tests (`tests/append_faults.rs`) drop a failed fsync's bytes as Linux may, and check that
//! every acknowledged record survives a reopen and a power cut.
//!
//! If the cut itself fails, `disk_bytes` counts the file's real length and the cut is retried
//! on the next tick. A drained segment whose ids the ledger cannot yet record (or whose unlink
//! fails) is kept, counted, and retried likewise.
//!
//! Parts: `commit.rs` (one group commit), `segments.rs` (create, abandon, retire, delete
//! segment files), `ledger.rs` (the ack ledger).

mod commit;
mod ledger;
mod segments;

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::error::AppendError;
use crate::format::SEGMENT_HEADER_LEN;
use crate::queue::Inner;
use crate::state::SegmentMeta;

/// How long the ack ledger may lag behind acknowledgements (more lag, more duplicates after a
/// crash; never loss).
const LEDGER_INTERVAL: Duration = Duration::from_millis(100);
/// Most appends committed by one sync.
const MAX_GROUP: usize = 4096;
/// A drained active segment is deleted once it holds at least `segment_bytes /
/// RETIRE_FRACTION` bytes; smaller, it keeps taking appends (see `retire_drained_active`).
const RETIRE_FRACTION: u64 = 4;

/// A request to the I/O thread.
pub(crate) enum Command {
    /// Write a record and answer with its id once durable.
    Append {
        items: u32,
        payload: Bytes,
        reply: oneshot::Sender<Result<u64, AppendError>>,
    },
    /// Delete a fully acknowledged segment file.
    Delete(SegmentMeta),
    /// Delete the kept segments the observer has released.
    ReleaseRetained,
    /// Write the ledger and stop.
    Shutdown,
}

/// The segment being appended to, owned by the I/O thread.
struct Active {
    first_id: u64,
    file: File,
    len: u64,
    /// Length after the last successful group; a failed group is cut back to it.
    committed_len: u64,
    /// The furthest a write may have reached (a failed write may have written part).
    tail: u64,
}

/// A segment abandoned by a failed group whose unsynced tail could not be cut yet.
struct Uncut {
    first_id: u64,
    /// Kept only to retry the cut; never written or synced again.
    file: File,
    committed_len: u64,
    /// The length `disk_bytes` counts for it meanwhile.
    counted_len: u64,
}

/// A segment file to delete that is no longer in the segment table (still counted in
/// `disk_bytes` until it is gone).
pub(crate) struct Doomed {
    pub path: PathBuf,
    pub file_len: u64,
}

impl From<SegmentMeta> for Doomed {
    fn from(seg: SegmentMeta) -> Self {
        Doomed {
            path: seg.path,
            file_len: seg.file_len,
        }
    }
}

/// The I/O thread's own state.
struct Writer {
    inner: Arc<Inner>,
    dir: PathBuf,
    active: Option<Active>,
    uncut: Vec<Uncut>,
    /// Files whose delete must be retried: the ledger could not record their ids first, or
    /// the unlink failed.
    doomed: Vec<Doomed>,
    /// The last ledger rename's folder sync failed: the next write renames again rather than
    /// writing in place, so that the name is known durable.
    ledger_needs_rename: bool,
    /// Drained segments kept for the observer, with the id every record of theirs is below.
    retained: Vec<(u64, Doomed)>,
}

/// The channel an append's answer goes back on.
type Reply = oneshot::Sender<Result<u64, AppendError>>;
/// An append as received: items, payload, reply.
type Request = (u32, Bytes, Reply);
/// An admitted append with its id.
type Admitted = (u64, u32, Bytes, Reply);

struct Pending {
    id: u64,
    appended_at: u64,
    items: u32,
    payload: Bytes,
    reply: Reply,
    segment: u64,
    offset: u64,
}

pub(crate) fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Runs the I/O thread until `Shutdown` or until every sender is gone. `doomed`: files found
/// at open that hold nothing to deliver.
pub(crate) fn run(inner: Arc<Inner>, rx: Receiver<Command>, doomed: Vec<Doomed>) {
    let mut w = Writer {
        dir: inner.opts.dir.clone().unwrap_or_default(),
        inner,
        active: None,
        uncut: Vec::new(),
        doomed,
        ledger_needs_rename: false,
        retained: Vec::new(),
    };
    w.retry_housekeeping();
    let mut last_tick = Instant::now();
    loop {
        let first = match rx.recv_timeout(LEDGER_INTERVAL) {
            Ok(cmd) => Some(cmd),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut appends = Vec::new();
        let mut stop = false;
        let mut next = first;
        while let Some(cmd) = next {
            match cmd {
                Command::Append {
                    items,
                    payload,
                    reply,
                } => appends.push((items, payload, reply)),
                Command::Delete(seg) => w.delete(seg.into()),
                Command::ReleaseRetained => w.release_retained(),
                Command::Shutdown => stop = true,
            }
            next = if appends.len() < MAX_GROUP {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        // A drained active segment gives its space back before new data is admitted.
        w.retire_drained_active();
        if !appends.is_empty() {
            w.inner.lock().settle_next_id();
            w.commit_group(appends);
        }
        if stop || last_tick.elapsed() >= LEDGER_INTERVAL {
            w.write_ledger_if_dirty();
            w.retry_housekeeping();
            last_tick = Instant::now();
        }
        if stop {
            break;
        }
    }
    w.write_ledger_if_dirty();
}

impl Writer {
    /// Closes the active segment when every record in it is acknowledged and it holds at least
    /// a quarter of `segment_bytes`, so the file is deleted now instead of waiting to fill up
    /// (with a small byte limit it might never roll over). A smaller drained segment keeps
    /// taking appends: at low load the consumers drain the queue at every batch, and retiring
    /// it each time cost a new file, its sync and a folder sync several times a second. So a
    /// drained queue keeps at most a quarter of a segment (at most 1/64 of `max_bytes`).
    fn retire_drained_active(&mut self) {
        let worth = self.inner.opts.segment_bytes / RETIRE_FRACTION;
        let drained = self.active.as_ref().is_some_and(|a| {
            a.len > SEGMENT_HEADER_LEN
                && a.len >= worth
                && self
                    .inner
                    .lock()
                    .segments
                    .get(&a.first_id)
                    .is_some_and(|s| s.live == 0)
        });
        if drained && let Some(a) = self.active.take() {
            self.mark_inactive(a.first_id);
        }
    }

    /// Retries what a failed filesystem call left to do: cutting abandoned tails and deleting
    /// drained segments.
    fn retry_housekeeping(&mut self) {
        self.release_retained();
        for u in std::mem::take(&mut self.uncut) {
            self.retry_cut(u);
        }
        for d in std::mem::take(&mut self.doomed) {
            if let Err((d, _)) = self.try_delete(d) {
                self.doomed.push(d);
            }
        }
    }
}
