//! When publishing new entries wakes the readers waiting in `Queue::next_batch`.
//!
//! A reader that finds fewer unread items than its `min_items` sleeps until the oldest unread
//! entry has lingered (`BatchLimits::linger`) or until it is woken. Waking every waiting reader
//! (`num_consumers` of them, 10 by default) on every append cost ten task wake-ups per append
//! for nothing: a new entry does not move the linger deadline, which the oldest unread entry
//! sets. So publishing wakes the readers only when what they wait for may have happened:
//! - there was no unread entry before (a reader with nothing to read waits without a
//!   deadline, and now has one to start), or
//! - the unread items reach the smallest `min_items` any reader has waited for.
//!
//! Every other way entries become unread (`release`) and closing still wake every reader.
//! A reader registers for the wake-up before it looks at the state, so one that decided to
//! wait cannot miss a publish that happens after it looked.

use crate::state::{EntryState, State};

impl State {
    /// Called under the lock by a reader that is about to wait for `min_items` with a linger
    /// deadline: publishes from now on wake readers once that many items are unread.
    pub(crate) fn note_batch_wait(&mut self, min_items: u64) {
        self.batch_wait_items = Some(
            self.batch_wait_items
                .map_or(min_items, |m| m.min(min_items)),
        );
    }

    /// Whether any entry is unread: call before publishing, and pass the answer to
    /// [`State::wakes_readers`] after.
    pub(crate) fn has_unread(&mut self) -> bool {
        self.first_unread().is_some()
    }

    /// Whether entries just published should wake the waiting readers, given whether any
    /// entry was unread before them (see the module doc).
    pub(crate) fn wakes_readers(&mut self, had_unread: bool) -> bool {
        if !had_unread {
            return true;
        }
        let Some(want) = self.batch_wait_items else {
            return false;
        };
        let Some(start) = self.first_unread() else {
            return false;
        };
        let mut avail = 0u64;
        for e in self.entries.range(start..) {
            if e.state == EntryState::Unread {
                avail += u64::from(e.items);
                if avail >= want {
                    return true;
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::EntryMeta;

    fn entry(id: u64, items: u32, state: EntryState) -> EntryMeta {
        EntryMeta {
            id,
            appended_at: 0,
            items,
            len: 1,
            segment: 0,
            offset: 0,
            state,
            payload: None,
        }
    }

    /// Publishes `items` as one entry and returns whether it wakes the readers.
    fn publish(st: &mut State, items: u32) -> bool {
        let had_unread = st.has_unread();
        let id = st.published_end;
        st.entries.push_back(entry(id, items, EntryState::Unread));
        st.published_end = id + 1;
        st.next_id = id + 1;
        st.wakes_readers(had_unread)
    }

    /// Scenario: readers wait for batches of 10 items; entries of 3 items are published one by
    /// one, then a consumer takes them all and more are published.
    /// Guarantees: the first entry wakes the readers (they start the linger clock), the next
    /// ones do not until 10 items are unread, and every publish wakes them while a full batch
    /// waits; after the queue was drained, the first new entry wakes them again.
    #[test]
    fn publishing_wakes_readers_only_for_a_first_entry_or_a_full_batch() {
        let mut st = State::default();
        st.note_batch_wait(10);
        assert!(publish(&mut st, 3), "first unread entry");
        assert!(!publish(&mut st, 3), "6 items < 10");
        assert!(!publish(&mut st, 3), "9 items < 10");
        assert!(publish(&mut st, 3), "12 items >= 10");
        assert!(publish(&mut st, 3), "15 items, still a full batch");
        for e in st.entries.iter_mut() {
            e.state = EntryState::InFlight;
        }
        assert!(publish(&mut st, 3), "first unread entry after a drain");
        assert!(!publish(&mut st, 3), "6 items < 10");
    }

    /// Scenario: items are published while entries before them are in flight or done.
    /// Guarantees: only unread items count towards the batch readers wait for.
    #[test]
    fn only_unread_items_count_towards_a_batch() {
        let mut st = State::default();
        st.note_batch_wait(10);
        st.entries.push_back(entry(0, 50, EntryState::InFlight));
        st.entries.push_back(entry(1, 50, EntryState::Done));
        st.published_end = 2;
        st.next_id = 2;
        assert!(publish(&mut st, 4), "first unread entry");
        assert!(!publish(&mut st, 4), "8 unread items < 10");
        assert!(publish(&mut st, 4), "12 unread items");
    }

    /// Scenario: no reader has ever waited with a deadline (they take whatever is there), or
    /// readers with different `min_items` waited.
    /// Guarantees: without a waiting batch size only a first unread entry wakes readers; with
    /// several, the smallest decides.
    #[test]
    fn the_smallest_batch_any_reader_waited_for_decides() {
        let mut st = State::default();
        assert!(publish(&mut st, 100));
        assert!(
            !publish(&mut st, 100),
            "no reader waits for a batch to fill"
        );
        st.note_batch_wait(1000);
        st.note_batch_wait(250);
        st.note_batch_wait(400);
        assert!(publish(&mut st, 100), "300 unread items >= 250");
    }
}
