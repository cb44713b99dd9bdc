//! Appending: disk appends go to the I/O thread and wait for its answer; in-memory appends are
//! admitted here under the state lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{Queue, WhenFull};
use crate::error::AppendError;
use crate::format::MAX_PAYLOAD_LEN;
use crate::state::{EntryMeta, EntryState, State};
use crate::writer::{Command, now_nanos};

impl Queue {
    /// Appends a payload of `items` telemetry items. Returns once it is durable (written and,
    /// with `fsync`, synced), with the record's id. On error nothing was stored.
    pub async fn append(&self, items: u32, payload: Bytes) -> Result<u64, AppendError> {
        if payload.len() > MAX_PAYLOAD_LEN as usize {
            return Err(AppendError::TooLarge(payload.len()));
        }
        if self.inner.opts.dir.is_none() {
            return self.append_in_memory(items, payload);
        }
        let (reply, answer) = oneshot::channel();
        // Counted until answered (or cancelled): the background indexer holds its reads back
        // meanwhile (`crate::index`), so a restart's first appends are not queued behind them.
        let _appending = Appending::start(&self.inner.appending);
        let sent = {
            let writer = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            writer.as_ref().map(|w| {
                w.send(Command::Append {
                    items,
                    payload,
                    reply,
                })
                .is_ok()
            })
        };
        if sent != Some(true) {
            return Err(AppendError::Closed);
        }
        answer.await.unwrap_or(Err(AppendError::Closed))
    }

    fn append_in_memory(&self, items: u32, payload: Bytes) -> Result<u64, AppendError> {
        let opts = &self.inner.opts;
        let mut st = self.inner.lock();
        if st.closed {
            return Err(AppendError::Closed);
        }
        let len = payload.len() as u64;
        let full = |st: &State| {
            st.payload_bytes + len > opts.max_bytes || st.live_entries >= opts.max_entries
        };
        if full(&st) && opts.when_full == WhenFull::DropOldest {
            let before = st.counters.clone();
            while full(&st) {
                let oldest = st.entries.iter().position(|e| e.state != EntryState::Done);
                let Some(idx) = oldest else { break };
                st.drop_entry(idx);
                st.compact_front();
            }
            let entries = st.counters.dropped_entries - before.dropped_entries;
            let items = st.counters.dropped_items - before.dropped_items;
            if entries > 0 {
                tracing::warn!(queue = %opts.name, entries, items, reason = "queue full (when_full: drop_oldest)", "dropped the oldest queued data to make room");
            }
        }
        if full(&st) {
            st.counters.refused_full += 1;
            return Err(AppendError::Full {
                reason: format!(
                    "{} entries, {} bytes in memory",
                    st.live_entries, st.payload_bytes
                ),
                retry_after: Duration::from_secs(1),
            });
        }
        let had_unread = st.has_unread();
        let id = st.next_id;
        st.next_id += 1;
        st.published_end = st.next_id;
        st.live_entries += 1;
        st.live_items += u64::from(items);
        st.counters.appended_entries += 1;
        st.counters.appended_items += u64::from(items);
        st.payload_bytes += len;
        st.entries.push_back(EntryMeta {
            id,
            appended_at: now_nanos(),
            items,
            len: len as u32,
            segment: 0,
            offset: 0,
            state: EntryState::Unread,
            payload: Some(payload),
        });
        let wake = st.wakes_readers(had_unread);
        drop(st);
        if wake {
            self.inner.notify.notify_waiters();
        }
        Ok(id)
    }
}

/// One disk append waiting for its answer, counted in `Inner::appending` while it lives.
struct Appending<'a>(&'a AtomicU64);

impl<'a> Appending<'a> {
    fn start(count: &'a AtomicU64) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Appending(count)
    }
}

impl Drop for Appending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
