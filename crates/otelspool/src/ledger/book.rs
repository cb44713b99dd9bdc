//! The ledger's state: per-job counts (live, and the settled part the snapshot persists), the
//! per-queue settle watermark with its exceptions and pending deliveries, completion and
//! eviction. Pure bookkeeping under one mutex; no I/O here.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::jobs::{Jobs, Kept};
use super::tally::JobTally;

/// A job's counts, in records (log records, spans, data points).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Durably queued and acknowledged to the client.
    pub received: u64,
    /// Accepted by the backend.
    pub delivered: u64,
    /// Rejected by the backend (permanent error, or partial success).
    pub rejected: u64,
    /// Dropped by `when_full: drop_oldest`.
    pub dropped_full: u64,
    /// Given up on after `max_elapsed_time` (dead-lettered).
    pub dropped_expired: u64,
}

impl Counts {
    /// Records with an outcome (delivered, rejected or dropped).
    pub fn done(&self) -> u64 {
        self.delivered + self.rejected + self.dropped_full + self.dropped_expired
    }

    /// Received records without an outcome yet.
    pub fn queued(&self) -> u64 {
        self.received.saturating_sub(self.done())
    }

    fn add(&mut self, o: &Counts) {
        self.received += o.received;
        self.delivered += o.delivered;
        self.rejected += o.rejected;
        self.dropped_full += o.dropped_full;
        self.dropped_expired += o.dropped_expired;
    }
}

/// An outcome that is not a plain delivery, made durable at once (see the module doc of
/// `ledger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The backend accepted the records.
    Delivered,
    /// The backend rejected them permanently.
    Rejected,
    /// `drop_oldest` removed them.
    DroppedFull,
    /// Given up on after `max_elapsed_time`.
    DroppedExpired,
}

impl Outcome {
    fn counts(self, n: u64) -> Counts {
        let mut c = Counts {
            received: n,
            ..Counts::default()
        };
        match self {
            Outcome::Delivered => c.delivered = n,
            Outcome::Rejected => c.rejected = n,
            Outcome::DroppedFull => c.dropped_full = n,
            Outcome::DroppedExpired => c.dropped_expired = n,
        }
        c
    }
}

/// Whether a job is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Seen recently, or with records still queued.
    Open,
    /// Idle for `complete_after` with nothing queued.
    Complete,
}

impl JobState {
    /// `open` / `complete`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Open => "open",
            JobState::Complete => "complete",
        }
    }
}

/// One job (one value of one key).
#[derive(Debug, Clone, Default)]
pub struct Job {
    /// Index of its key in the configured keys.
    pub key: u8,
    /// Counts now.
    pub live: Counts,
    /// The part of `live` the snapshot covers.
    pub settled: Counts,
    /// First record received (ms since the epoch).
    pub first_seen_ms: u64,
    /// Last record received (ms since the epoch).
    pub last_seen_ms: u64,
    /// Last delivery to the backend (ms since the epoch).
    pub last_delivery_ms: Option<u64>,
    /// Woken on every change, while someone waits for a flush.
    pub notify: Option<Arc<Notify>>,
}

impl Job {
    /// Open or complete at `now_ms`.
    pub fn state(&self, now_ms: u64, complete_after: Duration) -> JobState {
        let idle_since = self.last_seen_ms.max(self.last_delivery_ms.unwrap_or(0));
        let idle = now_ms.saturating_sub(idle_since) >= complete_after.as_millis() as u64;
        if idle && self.live.queued() == 0 {
            JobState::Complete
        } else {
            JobState::Open
        }
    }

    fn touched(&self) {
        if let Some(n) = &self.notify {
            n.notify_waiters();
        }
    }
}

/// Plain deliveries acknowledged above the settle watermark, waiting for the queue's own
/// watermark to pass them.
#[derive(Debug)]
pub struct PendingBatch {
    /// Smallest id in the batch.
    pub min_id: u64,
    /// Largest id in the batch.
    pub max_id: u64,
    /// Delivered items per job.
    pub jobs: Kept,
}

/// One tracked queue's settle state.
#[derive(Debug, Default)]
pub struct QueueBook {
    /// Every record below this id is in the settled counts.
    pub settled_below: u64,
    /// Records at or above `settled_below` already in the settled counts (durable outcomes).
    pub exceptions: BTreeSet<u64>,
    /// Plain deliveries not settled yet.
    pub pending: Vec<PendingBatch>,
    /// Tallies of records queued since start, taken at delivery.
    pub recent: super::recent::RecentTallies,
}

impl QueueBook {
    /// True when the record's outcome is already counted in the settled counts.
    pub fn settled(&self, id: u64) -> bool {
        id < self.settled_below || self.exceptions.contains(&id)
    }

    /// Folds pending deliveries wholly below the queue's `done_below` into `jobs`' settled
    /// counts and moves the watermark as far as it may go.
    fn fold(&mut self, done_below: u64, jobs: &mut Jobs) -> bool {
        let before = (self.settled_below, self.pending.len());
        let (ready, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.max_id < done_below);
        self.pending = rest;
        for p in ready {
            for &(_, r, n) in p.jobs.entries() {
                if let Some(j) = jobs.by_ref_mut(r) {
                    j.settled.add(&Outcome::Delivered.counts(n));
                }
            }
        }
        let floor = self
            .pending
            .iter()
            .map(|p| p.min_id)
            .min()
            .unwrap_or(u64::MAX);
        self.settled_below = self.settled_below.max(done_below.min(floor));
        let below = self.settled_below;
        self.exceptions.retain(|&id| id >= below);
        before != (self.settled_below, self.pending.len())
    }
}

/// Everything behind the ledger's mutex.
#[derive(Debug, Default)]
pub struct Book {
    /// Jobs by value, in slots that [`Kept`] counts name.
    pub jobs: Jobs,
    /// Tracked queues, by index.
    pub queues: Vec<QueueBook>,
    /// Jobs evicted since start (by the limit or retention).
    pub evicted: u64,
    /// Items rejected by partial success in batches holding several jobs (not attributable).
    pub unattributed_rejected: u64,
    /// Something changed since the last snapshot.
    pub dirty: bool,
}

impl Book {
    /// Records received (durably queued) at `now_ms`, with the counts to keep for their
    /// outcome. A known job costs one hash lookup; a new one copies its value once.
    pub fn received(&mut self, tally: &JobTally, now_ms: u64) -> Kept {
        let mut kept = Kept::with_unkeyed(tally.unkeyed);
        for (key, value, n) in &tally.jobs {
            let (r, j) = self.jobs.find_or_insert(value, || Job {
                key: *key,
                first_seen_ms: now_ms,
                ..Job::default()
            });
            j.live.received += n;
            j.last_seen_ms = now_ms;
            j.touched();
            kept.add(*key, r, *n);
        }
        self.dirty = true;
        kept
    }

    /// A batch of queue `q` the backend accepted: `records` (id, counts) not yet settled
    /// count as delivered and wait, as one pending batch, for the queue's watermark.
    pub fn delivered(&mut self, q: usize, records: &[(u64, Kept)], now_ms: u64) {
        let mut batch = PendingBatch {
            min_id: u64::MAX,
            max_id: 0,
            jobs: Kept::default(),
        };
        for (id, kept) in records {
            if self.queues[q].settled(*id) {
                continue;
            }
            batch.min_id = batch.min_id.min(*id);
            batch.max_id = batch.max_id.max(*id);
            for &(key, r, n) in kept.entries() {
                // An evicted job is not brought back by its late outcomes.
                let Some(j) = self.jobs.by_ref_mut(r) else {
                    continue;
                };
                j.live.delivered += n;
                j.last_delivery_ms = Some(now_ms);
                j.touched();
                batch.jobs.add(key, r, n);
            }
        }
        if batch.min_id != u64::MAX {
            self.queues[q].pending.push(batch);
            self.dirty = true;
        }
    }

    /// Records of queue `q` with a durable outcome other than a plain delivery: counted live
    /// and settled at once, their ids kept as exceptions. `partial`: with `Delivered`, how
    /// many items of a single-job batch the backend rejected (partial success).
    pub fn settle(
        &mut self,
        q: usize,
        outcome: Outcome,
        records: &[(u64, Kept)],
        partial: u64,
        now_ms: u64,
    ) {
        let mut partial = partial;
        for (id, tally) in records {
            if self.queues[q].settled(*id) {
                continue;
            }
            self.queues[q].exceptions.insert(*id);
            for &(_, r, n) in tally.entries() {
                let mut c = outcome.counts(n);
                if outcome == Outcome::Delivered && partial > 0 {
                    // One job per key in the batch: every key's entry takes the rejection.
                    let rejected = partial.min(n);
                    c.delivered -= rejected;
                    c.rejected += rejected;
                }
                let Some(j) = self.jobs.by_ref_mut(r) else {
                    continue;
                };
                // Received was counted live when the record was queued.
                j.live.add(&Counts { received: 0, ..c });
                j.settled.add(&c);
                if outcome == Outcome::Delivered {
                    j.last_delivery_ms = Some(now_ms);
                }
                j.touched();
            }
            if outcome == Outcome::Delivered && !tally.is_empty() {
                let n = tally.entries().map(|j| j.2).max().unwrap_or(0);
                partial = partial.saturating_sub(n);
            }
        }
        self.dirty = true;
    }

    /// Folds queue `q`'s pending deliveries below `done_below`.
    pub fn fold(&mut self, q: usize, done_below: u64) {
        let Book { queues, jobs, .. } = self;
        if queues[q].fold(done_below, jobs) {
            self.dirty = true;
        }
    }

    /// Evicts complete jobs past `retention`, then, while over `max_jobs`, the complete jobs
    /// seen longest ago, then open ones. Returns how many were evicted.
    pub fn evict(
        &mut self,
        now_ms: u64,
        max_jobs: usize,
        retention: Duration,
        complete_after: Duration,
    ) -> u64 {
        let retention_ms = retention.as_millis() as u64;
        let before = self.jobs.len();
        self.jobs.retain(|_, j| {
            j.notify.as_ref().is_some_and(|n| Arc::strong_count(n) > 1)
                || j.state(now_ms, complete_after) == JobState::Open
                || now_ms.saturating_sub(j.last_seen_ms) < retention_ms
        });
        if self.jobs.len() > max_jobs {
            let mut order: Vec<(bool, u64, Box<str>)> = self
                .jobs
                .iter()
                .map(|(v, j)| {
                    let open = j.state(now_ms, complete_after) == JobState::Open;
                    (open, j.last_seen_ms, Box::<str>::from(v))
                })
                .collect();
            order.sort_unstable();
            let excess = self.jobs.len() - max_jobs;
            for (_, _, v) in order.into_iter().take(excess) {
                self.jobs.remove(&v);
            }
        }
        let evicted = (before - self.jobs.len()) as u64;
        if evicted > 0 {
            self.evicted += evicted;
            self.dirty = true;
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(job: &str, n: u64) -> JobTally {
        JobTally {
            jobs: vec![(0, job.into(), n)],
            unkeyed: 0,
        }
    }

    fn kept(b: &Book, job: &str, n: u64) -> Kept {
        b.jobs.kept_of(&tally(job, n))
    }

    fn book() -> Book {
        Book {
            queues: vec![QueueBook::default()],
            ..Book::default()
        }
    }

    /// Scenario: two records are received and delivered out of order; the queue's watermark
    /// passes the first only, then both; the second is delivered again (a redelivery after a
    /// restart would look like this).
    /// Guarantees: live counts at once; settled counts and `settled_below` follow the
    /// watermark but never pass a pending batch; a delivery of a settled record is ignored.
    #[test]
    fn deliveries_settle_behind_the_queue_watermark() {
        let mut b = book();
        b.received(&tally("a", 4), 1);
        b.delivered(0, &[(11, kept(&b, "a", 2))], 2);
        b.delivered(0, &[(10, kept(&b, "a", 2))], 2);
        assert_eq!(b.jobs["a"].live.delivered, 4);
        b.fold(0, 11);
        assert_eq!(b.jobs["a"].settled.delivered, 2);
        assert_eq!(b.queues[0].settled_below, 11);
        b.fold(0, 12);
        assert_eq!(b.jobs["a"].settled.delivered, 4);
        assert_eq!(b.jobs["a"].settled.received, 4);
        b.delivered(0, &[(11, kept(&b, "a", 2))], 3);
        assert_eq!(
            b.jobs["a"].live.delivered, 4,
            "settled record counted twice"
        );
    }

    /// Scenario: a record is dropped (an exception above the watermark), then the queue
    /// hands it out again; a partial success of 1 on a single-job record.
    /// Guarantees: counted once as dropped, settled at once, its id kept until the watermark
    /// passes it; the partial success splits the record into delivered and rejected.
    #[test]
    fn exceptions_settle_at_once_and_once() {
        let mut b = book();
        b.received(&tally("a", 6), 1);
        b.settle(0, Outcome::DroppedFull, &[(5, kept(&b, "a", 3))], 0, 2);
        b.settle(0, Outcome::DroppedFull, &[(5, kept(&b, "a", 3))], 0, 2);
        assert_eq!(b.jobs["a"].live.dropped_full, 3);
        assert_eq!(b.jobs["a"].settled.dropped_full, 3);
        assert!(b.queues[0].exceptions.contains(&5));
        b.settle(0, Outcome::Delivered, &[(6, kept(&b, "a", 3))], 1, 3);
        assert_eq!(b.jobs["a"].live.delivered, 2);
        assert_eq!(b.jobs["a"].live.rejected, 1);
        assert_eq!(b.jobs["a"].live.queued(), 0);
        b.fold(0, 7);
        assert!(b.queues[0].exceptions.is_empty());
        assert_eq!(b.queues[0].settled_below, 7);
    }

    /// Scenario: three jobs with a limit of two: one complete and old, one open and old, one
    /// open and new.
    /// Guarantees: the complete job goes first, even though an open one is older; the
    /// eviction is counted.
    #[test]
    fn complete_jobs_are_evicted_first() {
        let mut b = book();
        b.received(&tally("open-old", 1), 1_000);
        b.received(&tally("done", 1), 2_000);
        b.delivered(0, &[(1, kept(&b, "done", 1))], 2_000);
        b.received(&tally("open-new", 1), 9_000);
        let evicted = b.evict(10_000, 2, Duration::from_secs(3600), Duration::from_secs(1));
        assert_eq!(evicted, 1);
        assert!(!b.jobs.contains_key("done"));
        assert!(b.jobs.contains_key("open-old") && b.jobs.contains_key("open-new"));
        assert_eq!(b.evicted, 1);
    }
}
