//! Segment files: creating the next one, retiring one that was rolled away from, and deleting
//! one whose every record is acknowledged.

use std::path::Path;
use std::sync::Arc;

use super::Active;
use super::ledger::persist_ledger;
use crate::format::{self, SEGMENT_HEADER_LEN};
use crate::queue::Inner;
use crate::state::SegmentMeta;

pub(super) fn delete_segment(inner: &Inner, seg: SegmentMeta) {
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
    match inner.opts.io.remove_file(&seg.path) {
        Ok(()) => {
            let mut st = inner.lock();
            st.disk_bytes = st.disk_bytes.saturating_sub(seg.file_len);
        }
        Err(e) => {
            tracing::warn!(path = %seg.path.display(), error = %e, "could not delete an acknowledged queue segment; it will be retried at the next start")
        }
    }
}

pub(super) fn mark_inactive(inner: &Inner, first_id: u64) {
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

pub(super) fn open_segment(inner: &Inner, dir: &Path, first_id: u64) -> std::io::Result<Active> {
    let path = dir.join(format::segment_file_name(first_id));
    let io = &*inner.opts.io;
    let mut file = io.create(&path)?;
    if let Err(e) = io.write(&mut file, &format::segment_header()) {
        let _ = io.remove_file(&path);
        return Err(e);
    }
    if inner.opts.fsync {
        io.sync(&file)?;
        io.sync_dir(dir)?;
    }
    let reader = Arc::new(io.open_read(&path)?);
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
