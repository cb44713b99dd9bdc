//! The tallies of records recently appended to a tracked queue, by queue id, so that a
//! delivery takes each record's job counts from here instead of walking the batch's encoded
//! bytes a second time. A cache only: a record missing from it (appended before a restart,
//! evicted because the queue holds a long backlog) is walked at delivery as before, so the
//! counts do not depend on what it holds.
//!
//! Bounded to [`RECENT_TALLIES`] records (a few MB at most); when full, the smallest ids go
//! first: they are the oldest, and records the ledger never heard the outcome of (an
//! in-memory queue's `drop_oldest`) are among them.

use std::collections::BTreeMap;

use super::tally::JobTally;

/// Most records whose tally is kept.
pub const RECENT_TALLIES: usize = 16_384;

/// Tallies by queue id.
#[derive(Debug, Default)]
pub struct RecentTallies {
    by_id: BTreeMap<u64, JobTally>,
}

impl RecentTallies {
    /// Keeps the tally of the record `id`, dropping the oldest kept tally when full.
    pub fn insert(&mut self, id: u64, tally: JobTally) {
        self.by_id.insert(id, tally);
        while self.by_id.len() > RECENT_TALLIES {
            self.by_id.pop_first();
        }
    }

    /// The tally of the record `id`, forgotten here.
    pub fn take(&mut self, id: u64) -> Option<JobTally> {
        self.by_id.remove(&id)
    }

    /// Records whose tally is kept.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(n: u64) -> JobTally {
        JobTally {
            jobs: vec![(0, "job".into(), n)],
            unkeyed: 0,
        }
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
}
