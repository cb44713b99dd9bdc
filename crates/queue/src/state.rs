//! The queue's in-memory index: the segment table, one small entry per unacknowledged record
//! of the segments that are indexed (see `crate::index` for which ones), and the counters
//! derived from them. All mutation happens under one mutex held briefly.
//!
//! Invariant: `entries` holds, in id order, the live records of every `Indexed` segment and of
//! no other; a `Summary` segment's live records are counted in the totals (`live_entries`,
//! `live_items`, `payload_bytes`) through its summary. Readers never hand out an entry at or
//! above the first live summary's ids ([`State::index_gap`]), and the watermark never passes
//! it, so records are handed out and acknowledged in the same order as if all were indexed.

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
    /// Open for reading while the segment is indexed.
    pub reader: Option<Arc<File>>,
    pub file_len: u64,
    /// Entries in this segment that are not done (for a summary not yet scanned, at most this).
    pub live: u64,
    /// The segment being appended to.
    pub active: bool,
    /// Whether its records have entries in `State::entries`.
    pub index: SegmentIndex,
}

impl SegmentMeta {
    /// A segment the writer has just created: indexed, empty, appended to.
    pub fn new_active(path: PathBuf, reader: Arc<File>, file_len: u64) -> Self {
        SegmentMeta {
            path,
            reader: Some(reader),
            file_len,
            live: 0,
            active: true,
            index: SegmentIndex::Indexed,
        }
    }

    /// The summary, when the segment is not indexed.
    pub fn summary(&self) -> Option<&Summary> {
        match &self.index {
            SegmentIndex::Summary(s) => Some(s),
            SegmentIndex::Indexed => None,
        }
    }
}

/// How a segment's records are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SegmentIndex {
    /// Each live record has an entry in `State::entries`.
    Indexed,
    /// Only counted: no entries in memory.
    Summary(Summary),
}

/// What is known of a segment whose records are not indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Read since open: the counts are exact. Otherwise `live` and `payload_bytes` are upper
    /// bounds from its ids and size, and `items` is unknown (0).
    pub scanned: bool,
    /// Items in its live records.
    pub items: u64,
    /// Payload bytes of its live records.
    pub payload_bytes: u64,
    /// Its live records are the valid frames with ids in `from..end`.
    pub from: u64,
    pub end: u64,
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
    /// While the newest segment found at open is not scanned: an id above any it can hold,
    /// which the writer jumps to before assigning ids (`settle_next_id`).
    pub next_id_bound: Option<u64>,
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
    /// The smallest id `drop_oldest` dropped that the observer has not been handed yet: the
    /// observer's view of "done" stays below it (see `Queue::done_below`).
    pub unreported_drop: Option<u64>,
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

    /// Drops done entries from the front and moves the watermark, never past a record that
    /// is not indexed yet.
    pub fn compact_front(&mut self) {
        while self
            .entries
            .front()
            .is_some_and(|e| e.state == EntryState::Done)
        {
            self.entries.pop_front();
        }
        let front = self.entries.front().map_or(self.published_end, |e| e.id);
        self.watermark = self.index_gap().map_or(front, |gap| gap.min(front));
    }

    /// The lowest id a live record that is not indexed may have: readers stop below it and
    /// the watermark does not pass it. `None` when every live record is indexed.
    pub fn index_gap(&self) -> Option<u64> {
        self.segments
            .values()
            .filter(|s| s.live > 0)
            .find_map(|s| s.summary().map(|sum| sum.from))
    }

    /// Index of the first unread entry, advancing the cursor past finished ones.
    pub fn first_unread(&mut self) -> Option<usize> {
        let start = self.entries.partition_point(|e| e.id < self.cursor_id);
        let idx =
            (start..self.entries.len()).find(|&i| self.entries[i].state == EntryState::Unread);
        self.cursor_id = idx.map_or(self.published_end, |i| self.entries[i].id);
        idx
    }

    /// Removes a segment from the table; returns it so the caller can delete the file. A
    /// summarized segment that still holds live records is being dropped (`drop_oldest`): they
    /// leave the totals and are counted as dropped.
    pub fn take_segment(&mut self, first_id: u64) -> Option<SegmentMeta> {
        let seg = self.segments.remove(&first_id)?;
        if let Some(sum) = seg.summary()
            && seg.live > 0
        {
            self.live_entries = self.live_entries.saturating_sub(seg.live);
            self.live_items = self.live_items.saturating_sub(sum.items);
            self.payload_bytes = self.payload_bytes.saturating_sub(sum.payload_bytes);
            self.counters.dropped_items += sum.items;
            self.counters.dropped_entries += seg.live;
            self.ledger_dirty = true;
            self.compact_front();
        }
        Some(seg)
    }
}
