//! Acknowledging and releasing entries handed out to consumers; fully acknowledged segments are
//! passed to the I/O thread for deletion.

use super::Queue;
use crate::state::EntryState;
use crate::writer::Command;

impl Queue {
    /// Acknowledges entries handed out by [`Queue::next_batch`]: the backend has them (or they
    /// were dead-lettered). Ids not in flight are ignored. Space is given back once every
    /// entry of a segment is acknowledged.
    pub fn ack(&self, ids: &[u64]) {
        let mut deletable = Vec::new();
        {
            let mut st = self.inner.lock();
            for &id in ids {
                // A drop-pending entry was delivered after all: not dropped.
                if st.drop_pending.remove(&id).is_some() {
                    continue;
                }
                // Only entries handed out (in flight) can be acknowledged; a stale ack, e.g.
                // for an id handed out before a restart, must not finish a live entry.
                if let Some(idx) = st.position(id)
                    && st.entries[idx].state == EntryState::InFlight
                    && let Some(seg) = st.finish(idx)
                    && let Some(meta) = st.take_segment(seg)
                {
                    deletable.push(meta);
                }
            }
            st.compact_front();
        }
        if deletable.is_empty() {
            return;
        }
        for seg in deletable {
            self.inner.send(Command::Delete(seg));
        }
        // The index window moved on: the indexer may index the next segment.
        self.inner.index_wake.notify_one();
    }

    /// As [`Queue::release`], and with an observer, first hands it those entries that
    /// `drop_oldest` dropped while they were in flight (they are counted as dropped now), so
    /// that it has made that durable before the queue forgets them. Blocking with an observer
    /// when there are such entries.
    pub fn release_entries(&self, entries: &[super::Entry]) {
        if let Some(observer) = &self.inner.opts.observer {
            let mut reported = std::collections::HashSet::new();
            loop {
                let newly: Vec<(u64, bytes::Bytes)> = {
                    let st = self.inner.lock();
                    entries
                        .iter()
                        .filter(|e| {
                            st.drop_pending.contains_key(&e.id) && !reported.contains(&e.id)
                        })
                        .map(|e| (e.id, e.payload.clone()))
                        .collect()
                };
                if newly.is_empty() {
                    break;
                }
                observer.dropping(&newly);
                reported.extend(newly.iter().map(|r| r.0));
            }
        }
        let ids: Vec<u64> = entries.iter().map(|e| e.id).collect();
        self.release(&ids);
    }

    /// Puts in-flight entries back so another consumer sends them (the sender gave up, e.g. on
    /// shutdown). They keep their place at the head of the queue.
    pub fn release(&self, ids: &[u64]) {
        let mut st = self.inner.lock();
        for &id in ids {
            // A drop-pending entry whose attempt failed is dropped now.
            if let Some(items) = st.drop_pending.remove(&id) {
                st.count_dropped(u64::from(items));
                continue;
            }
            if let Some(idx) = st.position(id)
                && st.entries[idx].state == EntryState::InFlight
            {
                st.entries[idx].state = EntryState::Unread;
                st.in_flight -= 1;
                st.cursor_id = st.cursor_id.min(id);
            }
        }
        drop(st);
        self.inner.notify.notify_waiters();
    }
}
