//! The queue's in-memory index: one small entry per unacknowledged record, the segment table,
//! and the counters derived from them. All mutation happens under one mutex held briefly.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::stats::QueueCounters;

/// Where an entry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryState {
    /// Durable, waiting for a consumer.
    Unread,
    /// Handed to a consumer, not yet acknowledged.
    InFlight,
    /// Acknowledged or dropped; kept only until the entries before it are done too.
    Done,
}

/// Index entry for one record.
#[derive(Debug, Clone)]
pub(crate) struct EntryMeta {
    pub id: u64,
    pub appended_at: u64,
    pub items: u32,
    pub len: u32,
    /// First id of the segment holding the record (unused for in-memory queues).
    pub segment: u64,
    pub offset: u64,
    pub state: EntryState,
    /// The payload, when kept in memory (always for in-memory queues; within the cache budget
    /// for disk queues).
    pub payload: Option<Bytes>,
}

/// One segment file.
#[derive(Debug)]
pub(crate) struct SegmentMeta {
    pub path: PathBuf,
    pub reader: Arc<File>,
    pub file_len: u64,
    /// Entries in this segment that are not done.
    pub live: u64,
    /// The segment being appended to.
    pub active: bool,
}

/// Everything behind the queue's mutex.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub entries: VecDeque<EntryMeta>,
    /// No entry with a smaller id is unread.
    pub cursor_id: u64,
    pub segments: BTreeMap<u64, SegmentMeta>,
    /// The next id to assign (the writer assigns ids before the frames are synced).
    pub next_id: u64,
    /// One past the last published id: entries below it are visible to readers. Ids between
    /// this and `next_id` are being written and must be neither skipped by readers nor
    /// counted as acknowledged.
    pub published_end: u64,
    /// Every id below this is done.
    pub watermark: u64,
    pub live_entries: u64,
    pub live_items: u64,
    pub payload_bytes: u64,
    pub disk_bytes: u64,
    pub cache_bytes: u64,
    pub in_flight: u64,
    pub counters: QueueCounters,
    pub closed: bool,
    pub write_error: Option<String>,
    pub ledger_dirty: bool,
    /// In-flight entries dropped by `when_full: drop_oldest` while a consumer was sending
    /// them, with their item counts: delivered if that attempt succeeds (ack), counted as
    /// dropped if it fails (release). Each entry is counted exactly once either way.
    pub drop_pending: std::collections::HashMap<u64, u32>,
    /// The `next_id` recorded in the ledger on disk: no segment holding ids at or above it
    /// may be deleted before the ledger is rewritten (or ids would be reused after a crash).
    pub ledger_next_id: u64,
    /// The smallest `min_items` a reader has waited for with a linger deadline (`None`: none
    /// has): publishing wakes readers once that many items are unread (see `queue/wake.rs`).
    pub batch_wait_items: Option<u64>,
}

impl State {
    /// Index of the entry with `id`, if it is still indexed.
    pub fn position(&self, id: u64) -> Option<usize> {
        self.entries.binary_search_by_key(&id, |e| e.id).ok()
    }

    /// Marks the entry at `idx` done and updates every counter. Returns the segment to delete,
    /// if this made an inactive segment empty.
    pub fn finish(&mut self, idx: usize) -> Option<u64> {
        let e = &mut self.entries[idx];
        if e.state == EntryState::Done {
            return None;
        }
        if e.state == EntryState::InFlight {
            self.in_flight -= 1;
        }
        e.state = EntryState::Done;
        if let Some(p) = e.payload.take() {
            self.cache_bytes = self.cache_bytes.saturating_sub(p.len() as u64);
        }
        self.live_entries -= 1;
        self.live_items -= u64::from(e.items);
        self.payload_bytes -= u64::from(e.len);
        let segment = e.segment;
        self.ledger_dirty = true;
        let seg = self.segments.get_mut(&segment)?;
        seg.live -= 1;
        (seg.live == 0 && !seg.active).then_some(segment)
    }

    /// Drops the entry at `idx` for `when_full: drop_oldest`: an unread entry is counted as
    /// dropped now; an in-flight one becomes drop-pending (see `drop_pending`). Either way its
    /// space is released. Returns the segment to delete, as [`State::finish`] does.
    pub fn drop_entry(&mut self, idx: usize) -> Option<u64> {
        let e = &self.entries[idx];
        match e.state {
            EntryState::Unread => self.count_dropped(u64::from(e.items)),
            EntryState::InFlight => {
                self.drop_pending.insert(e.id, e.items);
            }
            EntryState::Done => return None,
        }
        self.finish(idx)
    }

    /// Counts one dropped entry of `items` items.
    pub fn count_dropped(&mut self, items: u64) {
        self.counters.dropped_items += items;
        self.counters.dropped_entries += 1;
    }

    /// Drops done entries from the front and moves the watermark.
    pub fn compact_front(&mut self) {
        while self
            .entries
            .front()
            .is_some_and(|e| e.state == EntryState::Done)
        {
            self.entries.pop_front();
        }
        self.watermark = self.entries.front().map_or(self.published_end, |e| e.id);
    }

    /// Index of the first unread entry, advancing the cursor past finished ones.
    pub fn first_unread(&mut self) -> Option<usize> {
        let start = self.entries.partition_point(|e| e.id < self.cursor_id);
        let idx =
            (start..self.entries.len()).find(|&i| self.entries[i].state == EntryState::Unread);
        self.cursor_id = idx.map_or(self.published_end, |i| self.entries[i].id);
        idx
    }

    /// Removes a segment from the table; returns it so the caller can delete the file.
    pub fn take_segment(&mut self, first_id: u64) -> Option<SegmentMeta> {
        self.segments.remove(&first_id)
    }
}
