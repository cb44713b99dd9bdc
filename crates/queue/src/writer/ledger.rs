//! The ack ledger: written from the current state at most every `LEDGER_INTERVAL`, at shutdown,
//! and before a segment is deleted (so ids are never reused after a crash).

use std::path::Path;

use crate::format::{self, Ledger};
use crate::io::QueueIo;
use crate::queue::Inner;

pub(super) fn write_ledger_if_dirty(inner: &Inner) {
    if !inner.lock().ledger_dirty {
        return;
    }
    if let Err(e) = persist_ledger(inner) {
        tracing::warn!(error = %e, "could not write the queue's ack ledger; more duplicates after a crash, no loss");
    }
}

/// Writes the ledger from the current state and records what it now covers. On failure the
/// ledger stays marked dirty, so the next tick tries again.
pub(super) fn persist_ledger(inner: &Inner) -> std::io::Result<()> {
    let ledger = {
        let mut st = inner.lock();
        st.ledger_dirty = false;
        Ledger {
            watermark: st.watermark,
            next_id: st.next_id,
        }
    };
    let dir = inner.opts.dir.clone().unwrap_or_default();
    let result = write_ledger(&*inner.opts.io, &dir, ledger, inner.opts.fsync);
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
pub(super) fn write_ledger(
    io: &dyn QueueIo,
    dir: &Path,
    ledger: Ledger,
    sync: bool,
) -> std::io::Result<()> {
    let bytes = format::encode_ledger(ledger);
    let path = dir.join("ledger");
    if let Ok(f) = io.open_write(&path)
        && io.file_len(&f).is_ok_and(|len| len == bytes.len() as u64)
    {
        io.write_at(&f, &bytes, 0)?;
        if sync {
            io.sync(&f)?;
        }
        return Ok(());
    }
    let tmp = dir.join("ledger.tmp");
    let mut f = io.create_or_truncate(&tmp)?;
    io.write(&mut f, &bytes)?;
    if sync {
        io.sync(&f)?;
    }
    io.rename(&tmp, &path)
}
