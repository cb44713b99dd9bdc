//! The ack ledger: written from the current state at most every `LEDGER_INTERVAL`, at shutdown,
//! and before a segment is deleted (so ids are never reused after a crash).
//!
//! An existing ledger of the current size is overwritten in place: 28 bytes within one sector,
//! checked by their CRC, and no new blocks, so it works on a full disk (where a temp file and a
//! rename would not, and draining the queue would then free nothing). Each write rewrites the
//! whole record, so one lost to a failed sync is simply written again by the next. Otherwise
//! `ledger.tmp` is written, synced and renamed over, and the folder synced: until that folder
//! sync succeeds, later writes rename again instead of writing in place.

use crate::format::{self, LEDGER_LEN, Ledger};
use crate::io::QueueIo;

use super::Writer;

impl Writer {
    pub(super) fn write_ledger_if_dirty(&mut self) {
        if !self.inner.lock().ledger_dirty {
            return;
        }
        if let Err(e) = self.persist_ledger() {
            tracing::warn!(error = %e, "could not write the queue's ack ledger; more duplicates after a crash, no loss");
        }
    }

    /// Writes the ledger from the current state and records what it now covers. On failure the
    /// ledger stays marked dirty, so the next tick tries again.
    pub(super) fn persist_ledger(&mut self) -> std::io::Result<()> {
        let ledger = {
            let mut st = self.inner.lock();
            st.ledger_dirty = false;
            Ledger {
                watermark: st.watermark,
                next_id: st.next_id,
            }
        };
        let result = self.write_ledger(ledger);
        let mut st = self.inner.lock();
        match &result {
            Ok(()) => st.ledger_next_id = st.ledger_next_id.max(ledger.next_id),
            Err(_) => st.ledger_dirty = true,
        }
        result
    }

    /// Durably replaces the ledger file (see the module doc).
    fn write_ledger(&mut self, ledger: Ledger) -> std::io::Result<()> {
        let io = self.inner.opts.io.clone();
        let sync = self.inner.opts.fsync;
        let bytes = format::encode_ledger(ledger);
        let path = self.dir.join("ledger");
        if !self.ledger_needs_rename
            && let Ok(f) = io.open_write(&path)
            && io.file_len(&f).is_ok_and(|len| len == LEDGER_LEN as u64)
        {
            io.write_at(&f, &bytes, 0)?;
            if sync {
                io.sync(&f)?;
            }
            return Ok(());
        }
        let tmp = self.dir.join("ledger.tmp");
        write_new(&*io, &tmp, &bytes, sync)?;
        io.rename(&tmp, &path)?;
        if sync {
            self.ledger_needs_rename = true;
            io.sync_dir(&self.dir)?;
            self.ledger_needs_rename = false;
        }
        Ok(())
    }
}

/// Writes `bytes` as the whole content of `path` and, with `sync`, syncs it.
fn write_new(
    io: &dyn QueueIo,
    path: &std::path::Path,
    bytes: &[u8],
    sync: bool,
) -> std::io::Result<()> {
    let mut f = io.create_or_truncate(path)?;
    io.write(&mut f, bytes)?;
    if sync {
        io.sync(&f)?;
    }
    Ok(())
}
