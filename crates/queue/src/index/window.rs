//! The index window, as operations on [`State`]: which segments are indexed (the oldest ones
//! holding live records, up to a byte budget), and the transitions between a segment's
//! summary and its per-record entries. No I/O here: the indexer reads files unlocked and
//! applies what it read with these, under the state lock.

use std::collections::HashSet;
use std::fs::File;
use std::sync::Arc;

use crate::recovery::{FoundFrame, ScannedSegment};
use crate::state::{EntryMeta, EntryState, SegmentIndex, SegmentMeta, State, Summary};

/// At least this many segments with live records are indexed, whatever their size.
pub(crate) const MIN_WINDOW_SEGMENTS: usize = 2;

/// What the indexer should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Read a segment not read since open, counting what recovery finds; index its records
    /// if it is in the window, else keep a summary.
    Scan { first_id: u64, index: bool },
    /// Read back a summarized segment that entered the window and index its records.
    Load { first_id: u64, from: u64, end: u64 },
    /// Nothing to read.
    Idle,
}

impl State {
    /// The first ids of the segments in the window: the oldest inactive ones with unread
    /// records, at least `MIN_WINDOW_SEGMENTS` and up to `window_bytes` of files. An indexed
    /// segment whose records are all in flight stays indexed (acknowledgements need its
    /// entries) but does not count, so consumers holding batches never stall the others; such
    /// segments are bounded by what consumers hold in flight.
    pub fn window(&self, window_bytes: u64) -> Vec<u64> {
        let unread: HashSet<u64> = self
            .entries
            .iter()
            .filter(|e| e.state == EntryState::Unread)
            .map(|e| e.segment)
            .collect();
        let (mut out, mut bytes) = (Vec::new(), 0u64);
        for (&id, s) in &self.segments {
            if s.active || s.live == 0 || (s.summary().is_none() && !unread.contains(&id)) {
                continue;
            }
            if out.len() >= MIN_WINDOW_SEGMENTS && bytes >= window_bytes {
                break;
            }
            out.push(id);
            bytes += s.file_len;
        }
        out
    }

    /// The next step: index a summarized segment of the window; else scan the segment
    /// `first_scan` (the newest at open) or the oldest one not scanned yet.
    pub fn next_step(&self, window_bytes: u64, first_scan: Option<u64>) -> Step {
        // The usual case once the backlog is indexed: nothing is summarized.
        if self.segments.values().all(|s| s.summary().is_none()) {
            return Step::Idle;
        }
        let window = self.window(window_bytes);
        for &id in &window {
            if let Some(sum) = self.segments.get(&id).and_then(SegmentMeta::summary) {
                return if sum.scanned {
                    Step::Load {
                        first_id: id,
                        from: sum.from,
                        end: sum.end,
                    }
                } else {
                    Step::Scan {
                        first_id: id,
                        index: true,
                    }
                };
            }
        }
        let unscanned = |id: &u64| {
            self.segments
                .get(id)
                .and_then(SegmentMeta::summary)
                .is_some_and(|s| !s.scanned)
        };
        let next = first_scan.filter(unscanned).or_else(|| {
            self.segments
                .iter()
                .find(|(_, s)| s.summary().is_some_and(|s| !s.scanned))
                .map(|(&id, _)| id)
        });
        match next {
            Some(first_id) => Step::Scan {
                first_id,
                index: window.contains(&first_id),
            },
            None => Step::Idle,
        }
    }

    /// Whether some segment found at open has not been scanned yet.
    pub fn scanning(&self) -> bool {
        self.segments
            .values()
            .any(|s| s.summary().is_some_and(|s| !s.scanned))
    }

    /// Turns indexed segments outside the window back into summaries, when every record in
    /// them is unread (nothing in flight or done that a summary could not express).
    pub fn unindex_outside(&mut self, window_bytes: u64) {
        // The usual case when the backend keeps up: no more indexed segments than the minimum.
        let indexed = self
            .segments
            .values()
            .filter(|s| !s.active && s.live > 0 && s.summary().is_none())
            .count();
        if indexed <= MIN_WINDOW_SEGMENTS {
            return;
        }
        let window = self.window(window_bytes);
        let candidates: Vec<u64> = self
            .segments
            .iter()
            .filter(|(id, s)| {
                !s.active && s.live > 0 && s.summary().is_none() && !window.contains(id)
            })
            .map(|(&id, _)| id)
            .collect();
        for id in candidates {
            self.unindex(id);
        }
    }

    fn unindex(&mut self, first_id: u64) {
        let end = self
            .segments
            .range(first_id + 1..)
            .next()
            .map_or(u64::MAX, |(&id, _)| id);
        let lo = self.entries.partition_point(|e| e.id < first_id);
        let hi = self.entries.partition_point(|e| e.id < end);
        let Some(seg) = self.segments.get(&first_id) else {
            return;
        };
        let all_unread = self
            .entries
            .range(lo..hi)
            .all(|e| e.state == EntryState::Unread && e.segment == first_id);
        if hi == lo || !all_unread || seg.live != (hi - lo) as u64 {
            return;
        }
        let (mut items, mut payload, mut cached) = (0u64, 0u64, 0u64);
        let (from, last) = (self.entries[lo].id, self.entries[hi - 1].id);
        for e in self.entries.drain(lo..hi) {
            items += u64::from(e.items);
            payload += u64::from(e.len);
            cached += e.payload.map_or(0, |p| p.len() as u64);
        }
        self.cache_bytes = self.cache_bytes.saturating_sub(cached);
        if let Some(seg) = self.segments.get_mut(&first_id) {
            seg.reader = None;
            seg.index = SegmentIndex::Summary(Summary {
                scanned: true,
                items,
                payload_bytes: payload,
                from,
                end: last + 1,
            });
        }
    }

    /// Applies the scan of a segment not read since open. `None`: it was set aside as bad.
    /// Returns the segment if it turned out to hold nothing live, for the writer to delete.
    pub fn apply_scan(
        &mut self,
        first_id: u64,
        scanned: Option<ScannedSegment>,
        reader: Option<Arc<File>>,
    ) -> Option<SegmentMeta> {
        let seg = self.segments.get(&first_id)?;
        let (live, sum) = (seg.live, seg.summary().filter(|s| !s.scanned)?.clone());
        self.uncount(live, &sum);
        let Some(scanned) = scanned else {
            let seg = self.segments.remove(&first_id)?;
            self.disk_bytes = self.disk_bytes.saturating_sub(seg.file_len);
            self.compact_front();
            return None;
        };
        if let Some(max) = scanned.max_id {
            self.raise_next_id(max + 1);
        }
        let seg = self.segments.get_mut(&first_id)?;
        let cut = seg.file_len.saturating_sub(scanned.file_len);
        seg.file_len = scanned.file_len;
        self.disk_bytes = self.disk_bytes.saturating_sub(cut);
        let from = scanned.frames.first().map_or(sum.from, |f| f.id);
        self.install(first_id, scanned.frames, reader, from, u64::MAX)
    }

    /// Indexes the records read back from a summarized segment (`Step::Load`). Returns the
    /// segment if it turned out to hold nothing live, for the writer to delete.
    pub fn apply_load(
        &mut self,
        first_id: u64,
        (from, end): (u64, u64),
        frames: Vec<FoundFrame>,
        reader: Arc<File>,
    ) -> Option<SegmentMeta> {
        let seg = self.segments.get(&first_id)?;
        let live = seg.live;
        let sum = seg
            .summary()
            .filter(|s| s.scanned && s.from == from && s.end == end)?
            .clone();
        self.uncount(live, &sum);
        self.install(first_id, frames, Some(reader), from, end)
    }

    /// Takes a summary's counts out of the totals.
    fn uncount(&mut self, live: u64, sum: &Summary) {
        self.live_entries = self.live_entries.saturating_sub(live);
        self.live_items = self.live_items.saturating_sub(sum.items);
        self.payload_bytes = self.payload_bytes.saturating_sub(sum.payload_bytes);
    }

    /// Puts a segment's live frames in: as entries when `reader` is given, else as an exact
    /// summary; counts them in the totals.
    fn install(
        &mut self,
        first_id: u64,
        frames: Vec<FoundFrame>,
        reader: Option<Arc<File>>,
        from: u64,
        end: u64,
    ) -> Option<SegmentMeta> {
        let items: u64 = frames.iter().map(|f| u64::from(f.items)).sum();
        let payload: u64 = frames.iter().map(|f| u64::from(f.len)).sum();
        let live = frames.len() as u64;
        self.live_entries += live;
        self.live_items += items;
        self.payload_bytes += payload;
        let seg = self.segments.get_mut(&first_id)?;
        seg.live = live;
        if live == 0 {
            let seg = self.segments.remove(&first_id);
            self.compact_front();
            return seg;
        }
        match reader {
            Some(reader) => {
                seg.reader = Some(reader);
                seg.index = SegmentIndex::Indexed;
                let at = self.entries.partition_point(|e| e.id < from);
                let tail = self.entries.split_off(at);
                self.entries.extend(frames.iter().map(|f| EntryMeta {
                    id: f.id,
                    appended_at: f.appended_at,
                    items: f.items,
                    len: f.len,
                    segment: first_id,
                    offset: f.offset,
                    state: EntryState::Unread,
                    payload: None,
                }));
                self.entries.extend(tail);
                self.cursor_id = self.cursor_id.min(from);
            }
            None => {
                seg.index = SegmentIndex::Summary(Summary {
                    scanned: true,
                    items,
                    payload_bytes: payload,
                    from,
                    end,
                });
            }
        }
        self.compact_front();
        None
    }

    /// Makes sure ids at or above `n` are the only ones handed out from now on.
    pub fn raise_next_id(&mut self, n: u64) {
        if n > self.next_id {
            if self.published_end == self.next_id {
                self.published_end = n;
            }
            self.next_id = n;
        }
    }

    /// Called by the writer before assigning ids: while the newest segment found at open is
    /// not scanned, the most ids it could hold are skipped (never reused; a gap is harmless).
    pub fn settle_next_id(&mut self) {
        if let Some(bound) = self.next_id_bound.take() {
            self.raise_next_id(bound);
        }
    }
}
