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

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::error::AppendError;
use crate::format::{self, FRAME_HEADER_LEN, Ledger, SEGMENT_HEADER_LEN};
use crate::io::QueueIo;
use crate::queue::{Inner, WhenFull};
use crate::state::{EntryMeta, EntryState, SegmentMeta, State};

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

fn delete_segment(inner: &Inner, seg: SegmentMeta) {
    // The ledger must record an id beyond this segment's before the file goes, so that ids
    // are never handed out again after a crash.
    let uncovered = {
        let st = inner.lock();
        st.ledger_next_id < st.next_id
    };
    if uncovered && let Err(e) = persist_ledger(inner) {
        // Giving the space back matters more than id uniqueness after a crash.
        tracing::warn!(path = %seg.path.display(), error = %e, "could not write the queue ledger before deleting a drained segment; deleting it anyway (after a crash, ids may be reused)");
    }
    match fs::remove_file(&seg.path) {
        Ok(()) => {
            let mut st = inner.lock();
            st.disk_bytes = st.disk_bytes.saturating_sub(seg.file_len);
        }
        Err(e) => {
            tracing::warn!(path = %seg.path.display(), error = %e, "could not delete an acknowledged queue segment; it will be retried at the next start")
        }
    }
}

fn write_ledger_if_dirty(inner: &Inner) {
    if !inner.lock().ledger_dirty {
        return;
    }
    if let Err(e) = persist_ledger(inner) {
        tracing::warn!(error = %e, "could not write the queue's ack ledger; more duplicates after a crash, no loss");
    }
}

/// Writes the ledger from the current state and records what it now covers. On failure the
/// ledger stays marked dirty, so the next tick tries again.
fn persist_ledger(inner: &Inner) -> std::io::Result<()> {
    let ledger = {
        let mut st = inner.lock();
        st.ledger_dirty = false;
        Ledger {
            watermark: st.watermark,
            next_id: st.next_id,
        }
    };
    let dir = inner.opts.dir.clone().unwrap_or_default();
    let result = write_ledger(&dir, ledger, inner.opts.fsync);
    let mut st = inner.lock();
    match &result {
        Ok(()) => st.ledger_next_id = st.ledger_next_id.max(ledger.next_id),
        Err(_) => st.ledger_dirty = true,
    }
    result
}

/// Atomically replaces the ledger file.
///
/// An existing ledger of the current size is overwritten in place: 28 bytes within one sector,
/// checked by their CRC, and no new blocks, so it works on a full disk (where a temp file and
/// a rename would not, and draining the queue would then free nothing). Otherwise a temp file
/// is written and renamed over.
pub(crate) fn write_ledger(dir: &Path, ledger: Ledger, sync: bool) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let bytes = format::encode_ledger(ledger);
    let path = dir.join("ledger");
    if let Ok(f) = fs::OpenOptions::new().write(true).open(&path)
        && f.metadata().is_ok_and(|m| m.len() == bytes.len() as u64)
    {
        f.write_all_at(&bytes, 0)?;
        if sync {
            f.sync_data()?;
        }
        return Ok(());
    }
    let tmp = dir.join("ledger.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(&bytes)?;
    if sync {
        f.sync_data()?;
    }
    fs::rename(&tmp, path)
}

fn commit_group(
    inner: &Arc<Inner>,
    dir: &Path,
    active: &mut Option<Active>,
    appends: Vec<Request>,
) {
    let (accepted, to_delete) = admit(inner, appends);
    for seg in to_delete {
        delete_segment(inner, seg);
    }
    if accepted.is_empty() {
        return;
    }
    let mut rolled = Vec::new();
    match write_and_sync(inner, dir, active, accepted, &mut rolled) {
        Ok(pending) => publish(inner, pending),
        Err((e, pending)) => {
            let msg = e.to_string();
            tracing::error!(error = %msg, records = pending.len(), "queue write failed; refusing with a retryable error and opening a new segment");
            if let Some(a) = active.take() {
                // Best effort: cut the unsynced tail so disk use stays as counted.
                let _ = a.file.set_len(a.committed_len);
                rolled.push(a.first_id);
            }
            let mut st = inner.lock();
            st.write_error = Some(msg.clone());
            st.counters.refused_io += pending.len() as u64;
            drop(st);
            for p in pending {
                let _ = p.reply.send(Err(AppendError::Io(msg.clone())));
            }
        }
    }
    // Only now, with this group's entries published (or refused), may a segment that was
    // rolled away from be deleted for having no live entries.
    for first_id in rolled {
        mark_inactive(inner, first_id);
    }
}

/// Checks the limits under the lock, makes room when `drop_oldest`, assigns ids.
fn admit(inner: &Inner, appends: Vec<Request>) -> (Vec<Admitted>, Vec<SegmentMeta>) {
    let opts = &inner.opts;
    let mut st = inner.lock();
    let mut reserved_bytes = 0u64;
    let mut reserved_entries = 0u64;
    let mut accepted = Vec::with_capacity(appends.len());
    let mut to_delete = Vec::new();
    for (items, payload, reply) in appends {
        if st.closed {
            let _ = reply.send(Err(AppendError::Closed));
            continue;
        }
        // A new segment header may be needed too; count it so the limit is never exceeded.
        let need = (FRAME_HEADER_LEN + payload.len()) as u64 + SEGMENT_HEADER_LEN;
        let fits = |st: &State, rb: u64, re: u64| {
            st.disk_bytes + rb + need <= opts.max_bytes && st.live_entries + re < opts.max_entries
        };
        if !fits(&st, reserved_bytes, reserved_entries) && opts.when_full == WhenFull::DropOldest {
            while !fits(&st, reserved_bytes, reserved_entries) {
                match drop_oldest_segment(&mut st) {
                    Some(seg) => {
                        // Counted as freed now; the I/O thread (this one) deletes it below.
                        st.disk_bytes = st.disk_bytes.saturating_sub(seg.file_len);
                        to_delete.push(SegmentMeta { file_len: 0, ..seg });
                    }
                    None => break,
                }
            }
        }
        if !fits(&st, reserved_bytes, reserved_entries) {
            st.counters.refused_full += 1;
            let reason = if st.live_entries + reserved_entries >= opts.max_entries {
                format!("{} entries, limit {}", st.live_entries, opts.max_entries)
            } else {
                format!("{} bytes on disk, limit {}", st.disk_bytes, opts.max_bytes)
            };
            let _ = reply.send(Err(AppendError::Full {
                reason,
                retry_after: Duration::from_secs(1),
            }));
            continue;
        }
        reserved_bytes += need - SEGMENT_HEADER_LEN;
        reserved_entries += 1;
        let id = st.next_id;
        st.next_id += 1;
        accepted.push((id, items, payload, reply));
    }
    (accepted, to_delete)
}

/// Drops every entry of the oldest inactive segment (in-flight ones become drop-pending).
fn drop_oldest_segment(st: &mut State) -> Option<SegmentMeta> {
    let victim = st
        .segments
        .iter()
        .find(|(_, s)| !s.active)
        .map(|(&id, _)| id)?;
    let before = st.counters.clone();
    for i in 0..st.entries.len() {
        if st.entries[i].segment == victim {
            st.drop_entry(i);
        }
    }
    st.compact_front();
    let entries = st.counters.dropped_entries - before.dropped_entries;
    let items = st.counters.dropped_items - before.dropped_items;
    tracing::warn!(
        entries,
        items,
        reason = "queue full (when_full: drop_oldest)",
        "dropped the oldest queued data to make room"
    );
    st.take_segment(victim)
}

type GroupError = (std::io::Error, Vec<Pending>);

fn write_and_sync(
    inner: &Inner,
    dir: &Path,
    active: &mut Option<Active>,
    accepted: Vec<Admitted>,
    rolled: &mut Vec<u64>,
) -> Result<Vec<Pending>, GroupError> {
    let opts = &inner.opts;
    let now = now_nanos();
    let mut pending: Vec<Pending> = Vec::with_capacity(accepted.len());
    let mut buf: Vec<u8> = Vec::new();
    let mut touched: Vec<File> = Vec::new();
    let mut failure = None;
    for (id, items, payload, reply) in accepted {
        if failure.is_none() {
            let placed = place(
                inner,
                dir,
                active,
                &mut buf,
                &mut touched,
                rolled,
                id,
                payload.len(),
            );
            match placed {
                Ok((segment, offset)) => {
                    format::encode_frame(&mut buf, id, now, items, &payload);
                    pending.push(Pending {
                        id,
                        appended_at: now,
                        items,
                        payload,
                        reply,
                        segment,
                        offset,
                    });
                    continue;
                }
                Err(e) => failure = Some(e),
            }
        }
        // Every admitted append is answered, failed ones included.
        pending.push(Pending {
            id,
            appended_at: now,
            items,
            payload,
            reply,
            segment: 0,
            offset: 0,
        });
    }
    let result = match failure {
        Some(e) => Err(e),
        None => (|| {
            if let Some(a) = active.as_mut() {
                flush(&*opts.io, a, &mut buf)?;
                touched.push(a.file.try_clone()?);
            }
            if opts.fsync {
                for f in &touched {
                    opts.io.sync(f)?;
                }
            }
            Ok(())
        })(),
    };
    match result {
        Ok(()) => {
            if let Some(a) = active.as_mut() {
                a.committed_len = a.len;
            }
            Ok(pending)
        }
        Err(e) => Err((e, pending)),
    }
}

/// Finds where the next frame goes, rolling to a new segment when the active one is full.
#[allow(clippy::too_many_arguments)]
fn place(
    inner: &Inner,
    dir: &Path,
    active: &mut Option<Active>,
    buf: &mut Vec<u8>,
    touched: &mut Vec<File>,
    rolled: &mut Vec<u64>,
    id: u64,
    payload_len: usize,
) -> std::io::Result<(u64, u64)> {
    let frame_len = (FRAME_HEADER_LEN + payload_len) as u64;
    let roll = match active.as_ref() {
        None => true,
        Some(a) => {
            let used = a.len + buf.len() as u64;
            used > SEGMENT_HEADER_LEN && used + frame_len > inner.opts.segment_bytes
        }
    };
    if roll {
        if let Some(a) = active.as_mut() {
            flush(&*inner.opts.io, a, buf)?;
            touched.push(a.file.try_clone()?);
        }
        let new = open_segment(inner, dir, id)?;
        if let Some(old) = active.replace(new) {
            rolled.push(old.first_id);
        }
    }
    let a = active
        .as_ref()
        .ok_or_else(|| std::io::Error::other("no active segment"))?;
    Ok((a.first_id, a.len + buf.len() as u64))
}

fn flush(io: &dyn QueueIo, a: &mut Active, buf: &mut Vec<u8>) -> std::io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    io.write(&mut a.file, buf)?;
    a.len += buf.len() as u64;
    buf.clear();
    Ok(())
}

fn mark_inactive(inner: &Inner, first_id: u64) {
    let mut st = inner.lock();
    let empty = st.segments.get_mut(&first_id).is_some_and(|s| {
        s.active = false;
        s.live == 0
    });
    if empty && let Some(seg) = st.take_segment(first_id) {
        drop(st);
        delete_segment(inner, seg);
    }
}

fn open_segment(inner: &Inner, dir: &Path, first_id: u64) -> std::io::Result<Active> {
    let path = dir.join(format::segment_file_name(first_id));
    let io = &*inner.opts.io;
    let mut file = io.create(&path)?;
    if let Err(e) = io.write(&mut file, &format::segment_header()) {
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    if inner.opts.fsync {
        io.sync(&file)?;
        File::open(dir)?.sync_all()?;
    }
    let reader = Arc::new(File::open(&path)?);
    let mut st = inner.lock();
    st.segments.insert(
        first_id,
        SegmentMeta {
            path: path.clone(),
            reader,
            file_len: SEGMENT_HEADER_LEN,
            live: 0,
            active: true,
        },
    );
    st.disk_bytes += SEGMENT_HEADER_LEN;
    Ok(Active {
        first_id,
        file,
        len: SEGMENT_HEADER_LEN,
        committed_len: SEGMENT_HEADER_LEN,
    })
}

/// Makes synced records visible to readers and answers their callers.
fn publish(inner: &Inner, pending: Vec<Pending>) {
    let mut st = inner.lock();
    st.write_error = None;
    for p in &pending {
        let frame_len = (FRAME_HEADER_LEN + p.payload.len()) as u64;
        st.disk_bytes += frame_len;
        if let Some(seg) = st.segments.get_mut(&p.segment) {
            seg.live += 1;
            seg.file_len = seg.file_len.max(p.offset + frame_len);
        }
        let cache = st.cache_bytes + p.payload.len() as u64 <= inner.opts.cache_bytes;
        if cache {
            st.cache_bytes += p.payload.len() as u64;
        }
        st.live_entries += 1;
        st.live_items += u64::from(p.items);
        st.counters.appended_entries += 1;
        st.counters.appended_items += u64::from(p.items);
        st.payload_bytes += p.payload.len() as u64;
        st.entries.push_back(EntryMeta {
            id: p.id,
            appended_at: p.appended_at,
            items: p.items,
            len: p.payload.len() as u32,
            segment: p.segment,
            offset: p.offset,
            state: EntryState::Unread,
            payload: cache.then(|| p.payload.clone()),
        });
        st.published_end = st.published_end.max(p.id + 1);
    }
    drop(st);
    inner.notify.notify_waiters();
    for p in pending {
        let _ = p.reply.send(Ok(p.id));
    }
}
