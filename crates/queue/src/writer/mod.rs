//! The I/O thread: the only code that writes, syncs or deletes queue files.
//!
//! Appends arrive over a channel. The thread takes everything waiting (group commit), checks
//! the limits, assigns ids, writes all frames with one `write` per segment touched, syncs once,
//! and only then publishes the entries to readers and answers the callers. Async tasks never
//! block on the disk: they wait on a oneshot answer.
//!
//! After a failed write or sync, the segment being written is abandoned (its unsynced tail may
//! hold garbage that recovery will cut) and the next append opens a fresh segment; ids are
//! never reused. Callers get a retryable error, so nothing they were told is durable is lost.

//!
//! Parts: `commit.rs` (one group commit), `segments.rs` (create, retire, delete segment files),
//! `ledger.rs` (the ack ledger).

mod commit;
mod ledger;
mod segments;

use std::fs::File;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::error::AppendError;
use crate::format::SEGMENT_HEADER_LEN;
use crate::queue::Inner;
use crate::state::SegmentMeta;
use commit::commit_group;
use ledger::write_ledger_if_dirty;
use segments::{delete_segment, mark_inactive};

/// How long the ack ledger may lag behind acknowledgements (more lag, more duplicates after a
/// crash; never loss).
const LEDGER_INTERVAL: Duration = Duration::from_millis(100);
/// Most appends committed by one sync.
const MAX_GROUP: usize = 4096;

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

/// Runs the I/O thread until `Shutdown` or until every sender is gone.
pub(crate) fn run(inner: Arc<Inner>, rx: Receiver<Command>) {
    let dir = inner.opts.dir.clone().unwrap_or_default();
    let mut active: Option<Active> = None;
    let mut last_ledger = Instant::now();
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
                Command::Delete(seg) => delete_segment(&inner, seg),
                Command::Shutdown => stop = true,
            }
            next = if appends.len() < MAX_GROUP {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        // A drained active segment gives its space back before new data is admitted.
        retire_drained_active(&inner, &mut active);
        if !appends.is_empty() {
            commit_group(&inner, &dir, &mut active, appends);
        }
        if stop || last_ledger.elapsed() >= LEDGER_INTERVAL {
            write_ledger_if_dirty(&inner);
            last_ledger = Instant::now();
        }
        if stop {
            break;
        }
    }
    write_ledger_if_dirty(&inner);
}

/// Closes the active segment when every record in it is acknowledged, so the file is deleted
/// now instead of waiting to fill up (with a small byte limit it might never roll over).
fn retire_drained_active(inner: &Inner, active: &mut Option<Active>) {
    let drained = active.as_ref().is_some_and(|a| {
        a.len > SEGMENT_HEADER_LEN
            && inner
                .lock()
                .segments
                .get(&a.first_id)
                .is_some_and(|s| s.live == 0)
    });
    if drained && let Some(a) = active.take() {
        mark_inactive(inner, a.first_id);
    }
}
