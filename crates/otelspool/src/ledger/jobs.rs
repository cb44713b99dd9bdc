//! The ledger's job table: jobs by value, each in a slot whose index stays put while the job
//! is kept, and the [`Kept`] job counts of one queued record, which name their jobs by
//! [`JobRef`] (slot and generation, 8 bytes) instead of a copy of the value.
//!
//! Why: a record's counts are made on a receiver thread and used on a consumer thread at
//! delivery. Kept as values, every delivery hashed and compared each job's value, and the
//! consumer freed what the receiver allocated (glibc hands such frees back to the other
//! thread's arena, under its lock). By reference, a delivery indexes the slot directly and
//! the common record (one job per key) owns no heap memory at all. A slot's generation moves
//! when its job is evicted, so a late outcome of an evicted job is not counted on whichever
//! job takes the slot (nor on a new job of the same value). Hand-written: slab crates do
//! not check a stale index against a reused slot, and the table needs a value index beside
//! it.

use hashbrown::HashMap;

use super::book::Job;
use super::tally::JobTally;

/// A job's slot and the slot's generation when it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobRef {
    slot: u32,
    generation: u32,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    job: Option<Job>,
}

/// Jobs by value, in stable slots.
#[derive(Debug, Default)]
pub struct Jobs {
    /// Slot of each kept job, by value. `hashbrown`'s map with its default hasher (foldhash,
    /// seeded per process): a third of SipHash's cost.
    by_value: HashMap<Box<str>, u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl Jobs {
    /// Jobs kept.
    pub fn len(&self) -> usize {
        self.by_value.len()
    }

    /// True when no job is kept.
    pub fn is_empty(&self) -> bool {
        self.by_value.is_empty()
    }

    /// The job of `value`.
    pub fn get(&self, value: &str) -> Option<&Job> {
        let &slot = self.by_value.get(value)?;
        self.slots[slot as usize].job.as_ref()
    }

    /// The job of `value`, to change.
    pub fn get_mut(&mut self, value: &str) -> Option<&mut Job> {
        let &slot = self.by_value.get(value)?;
        self.slots[slot as usize].job.as_mut()
    }

    /// True when `value` has a job.
    pub fn contains_key(&self, value: &str) -> bool {
        self.by_value.contains_key(value)
    }

    /// The reference of `value`'s job.
    pub fn find(&self, value: &str) -> Option<JobRef> {
        let &slot = self.by_value.get(value)?;
        Some(JobRef {
            slot,
            generation: self.slots[slot as usize].generation,
        })
    }

    /// The job `r` names, unless it was evicted since.
    pub fn by_ref_mut(&mut self, r: JobRef) -> Option<&mut Job> {
        let s = self.slots.get_mut(r.slot as usize)?;
        if s.generation != r.generation {
            return None;
        }
        s.job.as_mut()
    }

    /// The job of `value` (made by `new` when there is none) and its reference. A known job
    /// costs one hash lookup; a new one copies its value once.
    pub fn find_or_insert(&mut self, value: &str, new: impl FnOnce() -> Job) -> (JobRef, &mut Job) {
        let slot = match self.by_value.get(value) {
            Some(&slot) => slot,
            None => {
                let slot = self.take_slot(new());
                self.by_value.insert(value.into(), slot);
                slot
            }
        };
        let s = &mut self.slots[slot as usize];
        let r = JobRef {
            slot,
            generation: s.generation,
        };
        (r, s.job.get_or_insert_with(Job::default))
    }

    /// Keeps `job` as `value`'s (replacing any it had).
    pub fn insert(&mut self, value: Box<str>, job: Job) {
        match self.by_value.get(&*value) {
            Some(&slot) => self.slots[slot as usize].job = Some(job),
            None => {
                let slot = self.take_slot(job);
                self.by_value.insert(value, slot);
            }
        }
    }

    fn take_slot(&mut self, job: Job) -> u32 {
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize].job = Some(job);
                slot
            }
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    job: Some(job),
                });
                (self.slots.len() - 1) as u32
            }
        }
    }

    fn release(slots: &mut [Slot], free: &mut Vec<u32>, slot: u32) {
        let s = &mut slots[slot as usize];
        s.job = None;
        s.generation = s.generation.wrapping_add(1);
        free.push(slot);
    }

    /// Forgets `value`'s job; references to it go stale.
    pub fn remove(&mut self, value: &str) {
        if let Some(slot) = self.by_value.remove(value) {
            Self::release(&mut self.slots, &mut self.free, slot);
        }
    }

    /// Keeps the jobs `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &Job) -> bool) {
        let Jobs {
            by_value,
            slots,
            free,
        } = self;
        by_value.retain(|v, &mut slot| {
            let kept = slots[slot as usize]
                .job
                .as_ref()
                .is_some_and(|j| keep(v, j));
            if !kept {
                Self::release(slots, free, slot);
            }
            kept
        });
    }

    /// Every job with its value, in no set order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Job)> {
        self.by_value.iter().filter_map(|(v, &slot)| {
            let j = self.slots[slot as usize].job.as_ref()?;
            Some((&**v, j))
        })
    }

    /// `tally` by reference, for the jobs it names that are kept (no job is created).
    pub fn kept_of(&self, tally: &JobTally) -> Kept {
        let mut k = Kept::with_unkeyed(tally.unkeyed);
        for (key, value, n) in &tally.jobs {
            match self.find(value) {
                Some(r) => k.add(*key, r, *n),
                // An evicted job still makes the record hold more than one job.
                None => k.gone += *n,
            }
        }
        k
    }
}

impl std::ops::Index<&str> for Jobs {
    type Output = Job;

    fn index(&self, value: &str) -> &Job {
        self.get(value).expect("no such job")
    }
}

/// Entries of a [`Kept`] held inline: one per key, for the usual one-job record, with the
/// two keys `emerge.job_id` and `emerge.workflow_id`.
const INLINE: usize = 2;

/// The job counts of one queued record (or batch), by reference: `(key index, job, items)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept {
    inline: [(u8, JobRef, u64); INLINE],
    len: u8,
    more: Vec<(u8, JobRef, u64)>,
    /// Items with no value for any key.
    pub unkeyed: u64,
    /// Items of jobs no longer kept when the counts were made.
    pub gone: u64,
}

impl Kept {
    /// No job yet, `unkeyed` items with no value for any key.
    pub fn with_unkeyed(unkeyed: u64) -> Kept {
        Kept {
            unkeyed,
            ..Kept::default()
        }
    }

    /// Adds `n` items of `job` (key index `key`).
    pub fn add(&mut self, key: u8, job: JobRef, n: u64) {
        let len = self.len as usize;
        if let Some(e) = self.inline[..len.min(INLINE)]
            .iter_mut()
            .chain(self.more.iter_mut())
            .find(|e| e.1 == job && e.0 == key)
        {
            e.2 += n;
            return;
        }
        if len < INLINE {
            self.inline[len] = (key, job, n);
            self.len += 1;
        } else {
            self.more.push((key, job, n));
        }
    }

    /// Adds everything `other` counts.
    pub fn merge(&mut self, other: &Kept) {
        self.unkeyed += other.unkeyed;
        self.gone += other.gone;
        for &(key, job, n) in other.entries() {
            self.add(key, job, n);
        }
    }

    /// Every `(key index, job, items)`.
    pub fn entries(&self) -> impl Iterator<Item = &(u8, JobRef, u64)> {
        self.inline[..(self.len as usize).min(INLINE)]
            .iter()
            .chain(self.more.iter())
    }

    /// True when no job is named.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when every keyed item belongs to one job per key and no item is unkeyed or of a
    /// job gone: the records held one job (what partial-success attribution needs).
    pub fn single_job(&self, keys: usize) -> bool {
        self.unkeyed == 0
            && self.gone == 0
            && self.entries().count() == keys
            && (0..keys).all(|k| self.entries().filter(|e| e.0 as usize == k).count() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(key: u8) -> Job {
        Job {
            key,
            ..Job::default()
        }
    }

    /// Scenario: two jobs are inserted, one evicted, a third takes its slot.
    /// Guarantees: the evicted job's reference no longer reaches any job (not the third, not
    /// a new job of the same value); the kept one's still does; lookups by value agree.
    #[test]
    fn a_reference_goes_stale_when_its_job_is_evicted() {
        let mut jobs = Jobs::default();
        let (a, _) = jobs.find_or_insert("a", || job(0));
        let (b, _) = jobs.find_or_insert("b", || job(0));
        assert_eq!(
            jobs.find_or_insert("a", || job(1)).0,
            a,
            "a known job is found"
        );
        jobs.remove("a");
        assert!(jobs.by_ref_mut(a).is_none());
        let (c, _) = jobs.find_or_insert("c", || job(0));
        assert!(jobs.by_ref_mut(a).is_none(), "slot reused by c");
        assert_ne!(a, c);
        let (a2, _) = jobs.find_or_insert("a", || job(0));
        assert_ne!(a, a2);
        assert!(jobs.by_ref_mut(b).is_some());
        jobs.retain(|v, _| v != "b");
        assert!(jobs.by_ref_mut(b).is_none());
        assert_eq!(jobs.len(), 2);
        let mut values: Vec<&str> = jobs.iter().map(|(v, _)| v).collect();
        values.sort_unstable();
        assert_eq!(values, ["a", "c"]);
        assert_eq!(jobs.find("c"), Some(c));
    }

    /// Scenario: counts of three jobs added to a `Kept` (past its inline entries), merged
    /// into another; a tally converted with one of its jobs gone.
    /// Guarantees: entries add up per (key, job), inline or not; a record of one job per key
    /// is `single_job`, one with a gone job is not.
    #[test]
    fn kept_counts_add_up_past_the_inline_entries() {
        let mut jobs = Jobs::default();
        let refs: Vec<JobRef> = ["a", "b", "c"]
            .iter()
            .map(|v| jobs.find_or_insert(v, || job(0)).0)
            .collect();
        let mut k = Kept::default();
        for (i, r) in refs.iter().enumerate() {
            k.add(0, *r, i as u64 + 1);
        }
        k.add(0, refs[2], 10);
        let mut all = Kept::default();
        all.merge(&k);
        all.merge(&k);
        let got: Vec<u64> = all.entries().map(|e| e.2).collect();
        assert_eq!(got, [2, 4, 26]);
        let mut one = Kept::default();
        one.add(0, refs[0], 3);
        assert!(one.single_job(1));
        assert!(!all.single_job(1));
        let tally = JobTally {
            jobs: vec![(0, "a".into(), 2), (0, "zzz".into(), 1)],
            unkeyed: 0,
        };
        let k = jobs.kept_of(&tally);
        assert_eq!(k.entries().count(), 1);
        assert_eq!(k.gone, 1);
        assert!(!k.single_job(1));
    }
}
