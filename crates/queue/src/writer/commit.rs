//! One group commit: admit the waiting appends against the limits, assign ids, write every
//! frame, sync, then publish the entries to readers and answer the callers. A failed group is
//! refused whole and every segment it touched abandoned (see the module doc of `writer`).

use std::time::Duration;

use super::{Active, Admitted, Pending, Request, Writer, now_nanos};
use crate::error::AppendError;
use crate::format::{self, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};
use crate::io::QueueIo;
use crate::queue::{Inner, WhenFull};
use crate::state::{EntryMeta, EntryState, SegmentMeta, State};

impl Writer {
    pub(super) fn commit_group(&mut self, appends: Vec<Request>) {
        let (accepted, to_delete) = admit(&self.inner, appends);
        let handed = !to_delete.is_empty();
        for (seg, dropped) in to_delete {
            self.hand_to_observer(&seg, dropped);
            self.delete_now(seg.into());
        }
        if handed {
            self.inner.lock().unreported_drop = None;
        }
        if accepted.is_empty() {
            return;
        }
        // Segments this group rolled away from, still open until the group is synced.
        let mut rolled = Vec::new();
        let result = self.write_and_sync(accepted, &mut rolled);
        let rolled_ids: Vec<u64> = rolled.iter().map(|a| a.first_id).collect();
        match result {
            Ok(pending) => {
                drop(rolled);
                publish(&self.inner, pending);
                // Only now, with this group's entries published, may a segment that was rolled
                // away from be deleted for having no live entries.
                for first_id in rolled_ids {
                    self.mark_inactive(first_id);
                }
            }
            Err((e, pending)) => {
                let msg = e.to_string();
                tracing::error!(error = %msg, records = pending.len(), "queue write failed; refusing with a retryable error and opening a new segment");
                let mut st = self.inner.lock();
                st.write_error = Some(msg.clone());
                st.counters.refused_io += pending.len() as u64;
                drop(st);
                rolled.extend(self.active.take());
                for a in rolled {
                    self.abandon(a);
                }
                for p in pending {
                    let _ = p.reply.send(Err(AppendError::Io(msg.clone())));
                }
            }
        }
    }
}

/// An unread record `drop_oldest` removed: id, offset in its segment, length, cached bytes.
type DroppedRef = (u64, u64, u32, Option<bytes::Bytes>);

impl Writer {
    /// Gives the observer (if any) the records `drop_oldest` removed from `seg`, read back
    /// from the file when not cached, before the file is deleted. A record that cannot be read
    /// back is logged and left out.
    fn hand_to_observer(&self, seg: &SegmentMeta, dropped: Vec<DroppedRef>) {
        let Some(observer) = &self.inner.opts.observer else {
            return;
        };
        let io = &self.inner.opts.io;
        let mut records = Vec::with_capacity(dropped.len());
        for (id, offset, len, cached) in dropped {
            let payload = match cached {
                Some(p) => p,
                None => {
                    let mut buf = vec![0u8; len as usize];
                    let at = offset + FRAME_HEADER_LEN as u64;
                    let read = match seg.reader.as_deref() {
                        Some(file) => io.read_at(file, &mut buf, at),
                        None => Err(std::io::Error::other("segment has no open reader")),
                    };
                    if let Err(e) = read {
                        tracing::warn!(id, error = %e, "could not read back a dropped record for the job ledger; its job's dropped count misses it");
                        continue;
                    }
                    bytes::Bytes::from(buf)
                }
            };
            records.push((id, payload));
        }
        observer.dropping(&records);
    }
}

/// Segments `drop_oldest` emptied, with the unread records it dropped from them.
type Dropped = Vec<(SegmentMeta, Vec<DroppedRef>)>;

/// Checks the limits under the lock, makes room when `drop_oldest`, assigns ids.
fn admit(inner: &Inner, appends: Vec<Request>) -> (Vec<Admitted>, Dropped) {
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
                match drop_oldest_segment(&mut st, opts.observer.is_some()) {
                    Some((seg, dropped)) => {
                        // Counted as freed now; the I/O thread (this one) deletes it below.
                        st.disk_bytes = st.disk_bytes.saturating_sub(seg.file_len);
                        to_delete.push((SegmentMeta { file_len: 0, ..seg }, dropped));
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

/// Drops every entry of the oldest inactive segment (in-flight ones become drop-pending); with
/// `observed`, also returns where the unread ones were.
fn drop_oldest_segment(st: &mut State, observed: bool) -> Option<(SegmentMeta, Vec<DroppedRef>)> {
    let victim = st
        .segments
        .iter()
        .find(|(_, s)| !s.active)
        .map(|(&id, _)| id)?;
    let before = st.counters.clone();
    let mut dropped = Vec::new();
    for i in 0..st.entries.len() {
        if st.entries[i].segment == victim {
            let e = &st.entries[i];
            if observed && e.state == EntryState::Unread {
                dropped.push((e.id, e.offset, e.len, e.payload.clone()));
                let id = e.id;
                st.unreported_drop = Some(st.unreported_drop.map_or(id, |m| m.min(id)));
            }
            st.drop_entry(i);
        }
    }
    st.compact_front();
    // A segment that is not indexed has its records dropped by taking it out of the table
    // (the observer is not told about them: a known limit of drops during start-up indexing).
    let taken = st.take_segment(victim);
    let entries = st.counters.dropped_entries - before.dropped_entries;
    let items = st.counters.dropped_items - before.dropped_items;
    tracing::warn!(
        entries,
        items,
        reason = "queue full (when_full: drop_oldest)",
        "dropped the oldest queued data to make room"
    );
    taken.map(|seg| (seg, dropped))
}

type GroupError = (std::io::Error, Vec<Pending>);

impl Writer {
    fn write_and_sync(
        &mut self,
        accepted: Vec<Admitted>,
        rolled: &mut Vec<Active>,
    ) -> Result<Vec<Pending>, GroupError> {
        let now = now_nanos();
        let mut pending: Vec<Pending> = Vec::with_capacity(accepted.len());
        let mut buf: Vec<u8> = Vec::new();
        let mut failure = None;
        for (id, items, payload, reply) in accepted {
            let mut at = (0, 0);
            if failure.is_none() {
                match self.place(&mut buf, rolled, id, payload.len()) {
                    Ok(placed) => {
                        format::encode_frame(&mut buf, id, now, items, &payload);
                        at = placed;
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
                segment: at.0,
                offset: at.1,
            });
        }
        let result = match failure {
            Some(e) => Err(e),
            None => self.flush_and_sync(&mut buf, rolled),
        };
        match result {
            Ok(()) => {
                if let Some(a) = self.active.as_mut() {
                    a.committed_len = a.len;
                }
                Ok(pending)
            }
            Err(e) => Err((e, pending)),
        }
    }

    /// Writes what is buffered for the active segment, then syncs every segment the group
    /// touched.
    fn flush_and_sync(&mut self, buf: &mut Vec<u8>, rolled: &[Active]) -> std::io::Result<()> {
        let io = &*self.inner.opts.io;
        if let Some(a) = self.active.as_mut() {
            flush(io, a, buf)?;
        }
        if self.inner.opts.fsync {
            for a in rolled.iter().chain(self.active.as_ref()) {
                io.sync(&a.file)?;
            }
        }
        Ok(())
    }

    /// Finds where the next frame goes, rolling to a new segment when the active one is full.
    fn place(
        &mut self,
        buf: &mut Vec<u8>,
        rolled: &mut Vec<Active>,
        id: u64,
        payload_len: usize,
    ) -> std::io::Result<(u64, u64)> {
        let frame_len = (FRAME_HEADER_LEN + payload_len) as u64;
        let roll = match self.active.as_ref() {
            None => true,
            Some(a) => {
                let used = a.len + buf.len() as u64;
                used > SEGMENT_HEADER_LEN && used + frame_len > self.inner.opts.segment_bytes
            }
        };
        if roll {
            if let Some(a) = self.active.as_mut() {
                flush(&*self.inner.opts.io, a, buf)?;
            }
            let new = self.open_segment(id)?;
            rolled.extend(self.active.replace(new));
        }
        let a = self
            .active
            .as_ref()
            .ok_or_else(|| std::io::Error::other("no active segment"))?;
        Ok((a.first_id, a.len + buf.len() as u64))
    }
}

fn flush(io: &dyn QueueIo, a: &mut Active, buf: &mut Vec<u8>) -> std::io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    a.tail = a.len + buf.len() as u64;
    io.write(&mut a.file, buf)?;
    a.len = a.tail;
    buf.clear();
    Ok(())
}

/// Makes synced records visible to readers and answers their callers.
fn publish(inner: &Inner, pending: Vec<Pending>) {
    let mut st = inner.lock();
    st.write_error = None;
    let had_unread = st.has_unread();
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
    let wake = st.wakes_readers(had_unread);
    drop(st);
    if wake {
        inner.notify.notify_waiters();
    }
    for p in pending {
        let _ = p.reply.send(Ok(p.id));
    }
}
