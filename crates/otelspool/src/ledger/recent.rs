//! The job counts ([`Kept`]) of records recently appended to a tracked queue, by queue id, so
//! that a delivery takes each record's job counts from here instead of walking the batch's
//! encoded bytes a second time. A cache only: a record missing from it (appended before a restart,
//! evicted because the queue holds a long backlog) is walked at delivery as before, so the
//! counts do not depend on what it holds.
//!
//! Bounded to a span of [`RECENT_TALLIES`] ids (about 1.5 MB at most: 96 bytes a slot, no heap for a record of one job per key); when a new id would pass
//! it, the smallest ids go first: they are the oldest, and records the ledger never heard the
//! outcome of (an in-memory queue's `drop_oldest`) are among them. Queue ids are dense and
//! come nearly in order, so the tallies sit in a ring indexed by `id - base`: an insert and a
//! take cost a few instructions, with no allocation of the map's own.

use std::collections::VecDeque;

use super::jobs::Kept;

/// Most ids, from the smallest kept to the largest, whose tallies are kept.
pub const RECENT_TALLIES: usize = 16_384;

/// Tallies by queue id.
#[derive(Debug, Default)]
pub struct RecentTallies {
    /// The id of `slots[0]`.
    base: u64,
    /// Slot `i` holds the tally of id `base + i`, if kept; the first slot is never empty.
    slots: VecDeque<Option<Kept>>,
    /// Slots holding a tally.
    kept: usize,
}

impl RecentTallies {
    /// Keeps the tally of the record `id`, dropping the oldest kept tallies when the span of
    /// ids would pass the bound (an id older than all that are kept, when full, is not kept).
    pub fn insert(&mut self, id: u64, tally: Kept) {
        if self.slots.is_empty() {
            self.base = id;
        } else if id < self.base {
            let gap = self.base - id;
            if self.slots.len() as u64 + gap > RECENT_TALLIES as u64 {
                return;
            }
            for _ in 0..gap {
                self.slots.push_front(None);
            }
            self.base = id;
        } else if id - self.base >= RECENT_TALLIES as u64 * 2 {
            // Far past everything kept: all of it would be dropped.
            self.slots.clear();
            self.kept = 0;
            self.base = id;
        }
        let at = (id - self.base) as usize;
        while self.slots.len() <= at {
            self.slots.push_back(None);
        }
        if self.slots[at].replace(tally).is_none() {
            self.kept += 1;
        }
        while self.slots.len() > RECENT_TALLIES {
            self.pop_front();
        }
        self.trim();
    }

    /// The tally of the record `id`, forgotten here.
    pub fn take(&mut self, id: u64) -> Option<Kept> {
        let at = usize::try_from(id.checked_sub(self.base)?).ok()?;
        let tally = self.slots.get_mut(at)?.take()?;
        self.kept -= 1;
        self.trim();
        Some(tally)
    }

    fn pop_front(&mut self) {
        if let Some(Some(_)) = self.slots.pop_front() {
            self.kept -= 1;
        }
        self.base += 1;
    }

    /// Drops empty slots at the front.
    fn trim(&mut self) {
        while matches!(self.slots.front(), Some(None)) {
            self.pop_front();
        }
    }

    /// Records whose tally is kept.
    pub fn len(&self) -> usize {
        self.kept
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.kept == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(n: u64) -> Kept {
        let mut k = Kept::default();
        k.add(0, Default::default(), n);
        k
    }

    #[test]
    fn a_tally_is_taken_once() {
        let mut r = RecentTallies::default();
        r.insert(7, tally(3));
        assert_eq!(r.take(7), Some(tally(3)));
        assert_eq!(r.take(7), None);
        assert!(r.is_empty());
    }

    #[test]
    fn when_full_the_oldest_ids_go_first() {
        let mut r = RecentTallies::default();
        // Out of order, as concurrent appends report them.
        for id in (0..RECENT_TALLIES as u64 + 10).rev() {
            r.insert(id, tally(id));
        }
        assert_eq!(r.len(), RECENT_TALLIES);
        assert_eq!(r.take(9), None, "oldest ids evicted");
        assert_eq!(r.take(10), Some(tally(10)));
        assert_eq!(
            r.take(RECENT_TALLIES as u64 + 9),
            Some(tally(RECENT_TALLIES as u64 + 9))
        );
    }

    /// Scenario: ids 100..110 kept in order; 105 then 100 taken (a take in the middle and at
    /// the front); then an id far past the bound.
    /// Guarantees: each tally is found by its id whatever was taken before; taking the
    /// smallest frees its slot; an id past the bound drops everything older.
    #[test]
    fn tallies_are_found_by_id_across_takes_and_gaps() {
        let mut r = RecentTallies::default();
        for id in 100..110 {
            r.insert(id, tally(id));
        }
        assert_eq!(r.take(105), Some(tally(105)));
        assert_eq!(r.take(100), Some(tally(100)));
        assert_eq!(r.len(), 8);
        assert_eq!(r.take(99), None);
        assert_eq!(r.take(110), None);
        assert_eq!(r.take(101), Some(tally(101)));
        let far = 109 + RECENT_TALLIES as u64;
        r.insert(far, tally(far));
        assert_eq!(r.take(109), None, "passed the bound");
        assert_eq!(r.len(), 1);
        assert_eq!(r.take(far), Some(tally(far)));
        assert!(r.is_empty());
        r.insert(3, tally(3));
        assert_eq!(
            r.take(3),
            Some(tally(3)),
            "starts again from any id when empty"
        );
    }
}
