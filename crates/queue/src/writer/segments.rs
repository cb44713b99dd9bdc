//! Segment files: creating the next one (file and folder synced before use), abandoning the
//! ones a failed group touched, retiring one that was rolled away from, and deleting one
//! whose every record is acknowledged (only once the ledger records ids beyond it).

use std::io::ErrorKind;
use std::sync::Arc;

use super::{Active, Doomed, Uncut, Writer};
use crate::format::{self, SEGMENT_HEADER_LEN};
use crate::state::SegmentMeta;

impl Writer {
    /// Deletes a drained segment's file, logging the first failure; on failure it is kept,
    /// counted, and retried by `retry_housekeeping`.
    pub(super) fn delete(&mut self, d: Doomed) {
        if let Some(end) = self.retained_until(&d) {
            self.retained.push((end, d));
            return;
        }
        self.delete_now(d);
    }

    /// With an observer: `Some(end)` when the segment holds ids the observer has not released
    /// (`end` bounds its ids from above: the next segment's first id, or the next id).
    fn retained_until(&self, d: &Doomed) -> Option<u64> {
        let observer = self.inner.opts.observer.as_ref()?;
        let first = d
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(format::parse_segment_file_name)?;
        let end = {
            let st = self.inner.lock();
            st.segments
                .range(first + 1..)
                .next()
                .map_or(st.next_id, |(&id, _)| id)
        };
        (end > observer.retain_from()).then_some(end)
    }

    /// Deletes the kept segments the observer has released.
    pub(super) fn release_retained(&mut self) {
        let Some(observer) = self.inner.opts.observer.clone() else {
            return;
        };
        let from = observer.retain_from();
        let (free, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retained)
            .into_iter()
            .partition(|(end, _)| *end <= from);
        self.retained = keep;
        for (_, d) in free {
            self.delete_now(d);
        }
    }

    /// Deletes a segment's file now, whatever the observer keeps (dropped data: its records
    /// were handed to the observer first).
    pub(super) fn delete_now(&mut self, d: Doomed) {
        if let Err((d, e)) = self.try_delete(d) {
            tracing::warn!(path = %d.path.display(), error = %e, "could not delete a drained queue segment; keeping it and retrying");
            self.doomed.push(d);
        }
    }

    /// Deletes a drained segment's file if the ledger covers its ids (see the module doc).
    pub(super) fn try_delete(&mut self, d: Doomed) -> Result<(), (Doomed, std::io::Error)> {
        // The ledger must record an id beyond this segment's before the file goes, so that ids
        // are never handed out again after a crash.
        let uncovered = {
            let st = self.inner.lock();
            st.ledger_next_id < st.next_id
        };
        if uncovered && let Err(e) = self.persist_ledger() {
            // On a full disk (where even a write in place may need a block, on a copy-on-write
            // filesystem) giving the space back wins: a reused id after a crash is above the
            // stale ledger's watermark, so it costs a broken promise, never a record.
            if !matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded) {
                return Err((d, e));
            }
            tracing::warn!(path = %d.path.display(), error = %e, "disk full: deleting a drained queue segment before the ledger could record its ids (after a crash, ids may be reused; nothing is lost)");
        }
        match self.inner.opts.io.remove_file(&d.path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err((d, e)),
        }
        let mut st = self.inner.lock();
        st.disk_bytes = st.disk_bytes.saturating_sub(d.file_len);
        Ok(())
    }

    /// Marks a segment no longer appended to; deletes it if nothing in it is live.
    pub(super) fn mark_inactive(&mut self, first_id: u64) {
        let mut st = self.inner.lock();
        let empty = st.segments.get_mut(&first_id).is_some_and(|s| {
            s.active = false;
            s.live == 0
        });
        if empty && let Some(seg) = st.take_segment(first_id) {
            drop(st);
            self.delete(seg.into());
        }
    }

    /// Abandons a segment a failed group touched: cuts it back to its last synced length and
    /// closes it (see the module doc). If the cut fails, the file's real length is counted and
    /// the cut retried later.
    pub(super) fn abandon(&mut self, a: Active) {
        let io = self.inner.opts.io.clone();
        if a.tail > a.committed_len
            && let Err(e) = io.set_len(&a.file, a.committed_len)
        {
            let len = io.file_len(&a.file).unwrap_or(a.tail).max(a.committed_len);
            tracing::warn!(segment = a.first_id, error = %e, "could not cut a failed write off a queue segment; counting it and retrying");
            let mut st = self.inner.lock();
            if let Some(seg) = st.segments.get_mut(&a.first_id) {
                let extra = len.saturating_sub(seg.file_len);
                seg.file_len += extra;
                st.disk_bytes += extra;
            }
            drop(st);
            self.uncut.push(Uncut {
                first_id: a.first_id,
                file: a.file,
                committed_len: a.committed_len,
                counted_len: len,
            });
        }
        self.mark_inactive(a.first_id);
    }

    /// Retries cutting an abandoned segment's tail. Done under the state lock, so that an ack
    /// deleting the segment meanwhile sees either length, never a mix.
    pub(super) fn retry_cut(&mut self, u: Uncut) {
        let io = self.inner.opts.io.clone();
        let mut st = self.inner.lock();
        // Gone from the table: deleted or dropped, with the length counted for it.
        if !st.segments.contains_key(&u.first_id) {
            return;
        }
        if io.set_len(&u.file, u.committed_len).is_err() {
            drop(st);
            self.uncut.push(u);
            return;
        }
        let freed = u.counted_len - u.committed_len;
        if let Some(seg) = st.segments.get_mut(&u.first_id) {
            seg.file_len = seg.file_len.saturating_sub(freed);
        }
        st.disk_bytes = st.disk_bytes.saturating_sub(freed);
    }

    /// Creates the segment whose first record is `first_id`, writes its header and, with
    /// `fsync`, syncs it and the folder, so that no acknowledgement depends on a name that a
    /// power cut could lose. On failure the file is removed (or, if that fails too, counted
    /// and deleted later).
    pub(super) fn open_segment(&mut self, first_id: u64) -> std::io::Result<Active> {
        let path = self.dir.join(format::segment_file_name(first_id));
        let io = self.inner.opts.io.clone();
        let mut file = io.create(&path)?;
        let ready = io
            .write(&mut file, &format::segment_header())
            .and_then(|()| {
                if self.inner.opts.fsync {
                    io.sync(&file)?;
                    io.sync_dir(&self.dir)?;
                }
                io.open_read(&path)
            });
        let reader = match ready {
            Ok(reader) => reader,
            Err(e) => {
                drop(file);
                match io.remove_file(&path) {
                    Ok(()) => {}
                    Err(re) if re.kind() == ErrorKind::NotFound => {}
                    Err(_) => {
                        self.inner.lock().disk_bytes += SEGMENT_HEADER_LEN;
                        self.doomed.push(Doomed {
                            path,
                            file_len: SEGMENT_HEADER_LEN,
                        });
                    }
                }
                return Err(e);
            }
        };
        let mut st = self.inner.lock();
        st.segments.insert(
            first_id,
            SegmentMeta::new_active(path, Arc::new(reader), SEGMENT_HEADER_LEN),
        );
        st.disk_bytes += SEGMENT_HEADER_LEN;
        Ok(Active {
            first_id,
            file,
            len: SEGMENT_HEADER_LEN,
            committed_len: SEGMENT_HEADER_LEN,
            tail: SEGMENT_HEADER_LEN,
        })
    }
}
