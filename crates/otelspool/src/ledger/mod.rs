//! The job ledger (`extensions.job_ledger`): per job (a value of a configured attribute key,
//! looked up on the item, then its scope, then its resource), how many records were received
//! (durably queued and acknowledged to the client), delivered (the backend accepted them),
//! rejected (permanent errors, partial success) and dropped (`drop_oldest`, expiry), and a
//! flush that waits until a job's records have all had an outcome. Hand-written: no crate
//! counts OTLP records per attribute value across a durable queue.
//!
//! # Where the counts come from
//! Job keys are found only by walking the encoded bytes (`pipeline::wire::walk` with a
//! [`tally::TallyVisitor`]), once per request, in the receive walk that also validates it (the
//! tally rides in the `Payload`; a processor that changes the data makes the pipeline walk
//! its output instead, so a rewritten key is followed). When a request is durably appended to
//! a tracked queue, [`JobLedger::queued`] counts it received and keeps its counts by queue
//! id ([`recent`], bounded), naming each job by its slot in the job table ([`jobs`]), not by
//! value; a delivery, rejection or drop takes the counts from there, and walks only the
//! records it holds none for (queued before a restart, or past the bound in a
//! long backlog). Nothing is kept per record beyond that bound.
//! The ledger follows one queue per signal: the first exporter of the first pipeline of that
//! signal (with several exporters, each gets the same records; the first one's delivery is
//! the one reported).
//!
//! # Durability (exact across `kill -9`)
//! Counts live in memory; a snapshot file ([`snapshot`]) holds, per job, the *settled*
//! counts, and per tracked queue an id `settled_below` plus a set of *exception* ids: every
//! record below `settled_below`, and every exception, is counted in the settled counts (for
//! received and for its outcome), and no other record is. Rules that keep that true:
//! 1. Plain deliveries are counted live at once and kept as a pending batch; a batch becomes
//!    settled only once the queue's own watermark (every id below it acknowledged or dropped)
//!    is past its largest id, and `settled_below` never passes a pending batch's smallest id.
//! 2. Outcomes that are not plain deliveries (permanent rejection, partial success, expiry,
//!    `drop_oldest`) are settled at once as exceptions, and the snapshot is written
//!    *before* the queue acknowledges or deletes the records (they are rare; a delivery never
//!    waits for an fsync).
//! 3. The queue keeps the files of acknowledged segments until the snapshot covers them
//!    (`QueueObserver::retain_from` = the persisted `settled_below`); `drop_oldest` hands the
//!    records to the ledger before deleting them (rule 2).
//!
//! At start, before a queue opens, the ledger reads the snapshot, then the queue's folder
//! (`otelspool_queue::peek_dir`): the queue's ack watermark `W` and every intact record at
//! or above `settled_below`. A record that is an exception is skipped (already settled).
//! Below `W` it was acknowledged, and not as an exception, so it was delivered (rule 2): it is
//! added to the settled received and delivered counts. At or above `W` it is still queued:
//! counted received (live). Then `settled_below` becomes `max(settled_below, W)` and the
//! snapshot is written before the queue may delete anything. Every record counted before the
//! crash is therefore either settled or still on disk (rule 3), and counted once: a record
//! the queue hands out again after the restart (acknowledged after its last ack-ledger write)
//! is ignored at delivery when it is settled already, and counted then otherwise.
//!
//! Known limits: a crash while an in-flight record that `drop_oldest` dropped is being resent
//! can lose that record's counts (its segment is gone and the queue's watermark is past it);
//! an in-memory queue (no `file_storage`) neither keeps counts across restarts nor reports
//! `drop_oldest` to the ledger; items rejected by partial
//! success in a batch holding several jobs are not attributed to a job (counted in
//! `unattributed_rejected`). Received is counted when the record is durably in the tracked
//! queue: with one exporter (the sidecar's case) that is what the client was acknowledged;
//! with several, a request refused because another exporter's append failed is in the
//! tracked queue and counted received (and later delivered) once per time it was sent.
//!
//! # Bounds
//! At most `max_jobs` jobs: complete jobs older than `retention` go first, then the
//! complete jobs seen longest ago, then open ones; each eviction is counted
//! (`otelspool_job_ledger_evicted_jobs`). The snapshot holds only kept jobs.
//!
//! Files: [`tally`] (per-request counts), [`jobs`] (the job table and counts by job
//! reference), [`recent`] (counts kept from append to delivery), [`book`] (state and rules), [`snapshot`] (the file), [`view`] (what the API
//! answers), [`flush`] (waiting for a job).

pub mod book;
pub mod cli;
pub mod flush;
pub mod jobs;
pub mod recent;
pub mod snapshot;
pub mod tally;
pub mod view;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use otelspool_queue::{Entry, Queue, QueueObserver, RealIo, peek_dir};

use crate::delivery::DeliveryStatus;
use crate::pipeline::Signal;
use book::{Book, Counts, JobState, Outcome, QueueBook};
pub use flush::FlushOutcome;
use jobs::Kept;
use tally::{JobTally, TallyVisitor};
pub use view::JobView;

/// The ledger's settings at run time.
#[derive(Debug, Clone)]
pub struct LedgerSettings {
    /// Attribute keys naming jobs.
    pub keys: Vec<String>,
    /// Most jobs kept.
    pub max_jobs: usize,
    /// Complete jobs older than this are evicted.
    pub retention: Duration,
    /// Idle time after which a job with nothing queued is complete.
    pub complete_after: Duration,
    /// How often the snapshot is written when something changed.
    pub snapshot_interval: Duration,
    /// The folder of the snapshot file.
    pub dir: PathBuf,
}

/// A queue the ledger follows.
#[derive(Debug)]
struct Tracked {
    name: String,
    signal: Signal,
    dir: Option<PathBuf>,
    queue: OnceLock<Queue>,
    status: OnceLock<Arc<DeliveryStatus>>,
    retain_from: Arc<AtomicU64>,
}

/// Why the ledger could not start.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The snapshot could not be read.
    #[error(transparent)]
    Snapshot(#[from] snapshot::SnapshotError),
    /// A file of the ledger or a queue folder could not be read or written.
    #[error("job ledger: {what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// The per-job delivery ledger. Shared by the router, the consumers, the queues' observers
/// and the health endpoint.
#[derive(Debug)]
pub struct JobLedger {
    settings: LedgerSettings,
    keys: Arc<[Box<str>]>,
    tracked: Vec<Tracked>,
    book: Mutex<Book>,
    /// Held while a snapshot is encoded and written, so snapshots reach the disk in order.
    persist: Mutex<()>,
    evicted_metric: OnceLock<Arc<crate::telemetry::Metrics>>,
}

impl JobLedger {
    /// A ledger following the queues `tracked` (name, signal, folder).
    pub fn new(
        settings: LedgerSettings,
        tracked: Vec<(String, Signal, Option<PathBuf>)>,
    ) -> Arc<JobLedger> {
        let keys: Arc<[Box<str>]> = settings.keys.iter().map(|k| k.as_str().into()).collect();
        let book = Book {
            queues: tracked.iter().map(|_| QueueBook::default()).collect(),
            ..Book::default()
        };
        Arc::new(JobLedger {
            settings,
            keys,
            tracked: tracked
                .into_iter()
                .map(|(name, signal, dir)| Tracked {
                    name,
                    signal,
                    dir,
                    queue: OnceLock::new(),
                    status: OnceLock::new(),
                    retain_from: Arc::new(AtomicU64::new(0)),
                })
                .collect(),
            book: Mutex::new(book),
            persist: Mutex::new(()),
            evicted_metric: OnceLock::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The configured keys, for the walker.
    pub fn keys(&self) -> &Arc<[Box<str>]> {
        &self.keys
    }

    /// The index of the tracked queue called `name` (`exporter/signal`).
    pub fn tracked_index(&self, name: &str) -> Option<usize> {
        self.tracked.iter().position(|t| t.name == name)
    }

    /// The signals whose receipts the ledger counts.
    pub fn tracks(&self, signal: Signal) -> bool {
        self.tracked.iter().any(|t| t.signal == signal)
    }

    /// Where evictions are counted.
    pub fn set_metrics(&self, metrics: Arc<crate::telemetry::Metrics>) {
        let _ = self.evicted_metric.set(metrics);
    }

    /// Reads the snapshot and the tracked queues' folders (before the queues open) and
    /// writes a snapshot that covers everything they acknowledged (see the module doc).
    /// Blocking.
    pub fn recover(&self) -> Result<(), LedgerError> {
        let dir = &self.settings.dir;
        std::fs::create_dir_all(dir).map_err(|source| LedgerError::Io {
            what: "creating",
            path: dir.clone(),
            source,
        })?;
        let names: Vec<String> = self.tracked.iter().map(|t| t.name.clone()).collect();
        let mut book = self.lock();
        snapshot::load(&dir.join(snapshot::FILE_NAME), &mut book, &names)?;
        let now = view::now_ms();
        for (q, t) in self.tracked.iter().enumerate() {
            let Some(qdir) = &t.dir else { continue };
            let from = book.queues[q].settled_below;
            let peek = peek_dir(&RealIo, qdir, from).map_err(|source| LedgerError::Io {
                what: "reading queue folder",
                path: qdir.clone(),
                source,
            })?;
            let mut acked = Vec::new();
            let mut queued = JobTally::default();
            for (id, payload) in &peek.records {
                if book.queues[q].settled(*id) {
                    continue;
                }
                let Some(tally) = TallyVisitor::tally_of(&self.keys, t.signal, payload) else {
                    continue;
                };
                if *id < peek.watermark {
                    acked.push((*id, tally));
                } else {
                    merge(&mut queued, &tally);
                }
            }
            // Acknowledged, not exceptions: delivered. Received live first, so that settling
            // adds the outcome only.
            let acked: Vec<(u64, Kept)> = acked
                .iter()
                .map(|(id, tally)| (*id, book.received(tally, now)))
                .collect();
            book.settle(q, Outcome::Delivered, &acked, 0, now);
            book.received(&queued, now);
            let qb = &mut book.queues[q];
            qb.settled_below = qb.settled_below.max(peek.watermark);
            let below = qb.settled_below;
            qb.exceptions.retain(|&id| id >= below);
            t.retain_from.store(below, Ordering::SeqCst);
            tracing::info!(queue = %t.name, acknowledged = acked.len(), watermark = peek.watermark, "job ledger recovered its counts from the snapshot and the queue folder");
        }
        book.dirty = true;
        drop(book);
        self.persist().map_err(|source| LedgerError::Io {
            what: "writing snapshot in",
            path: dir.clone(),
            source,
        })
    }

    /// The observer to give the tracked queue `q` when it opens.
    pub fn observer(self: &Arc<Self>, q: usize) -> Arc<dyn QueueObserver> {
        Arc::new(QueueTap {
            ledger: Arc::downgrade(self),
            q,
            retain_from: self.tracked[q].retain_from.clone(),
        })
    }

    /// Attaches the opened queue `q` and its delivery status.
    pub fn attach(&self, q: usize, queue: Queue, status: Arc<DeliveryStatus>) {
        let _ = self.tracked[q].queue.set(queue);
        let _ = self.tracked[q].status.set(status);
    }

    /// The record `id` was durably appended to the tracked queue `q`, with the job counts of
    /// its receive walk: counted received, and its counts kept (by job reference) for its
    /// outcome.
    pub fn queued(&self, q: usize, id: u64, tally: JobTally) {
        let mut book = self.lock();
        let kept = if tally.jobs.is_empty() {
            Kept::with_unkeyed(tally.unkeyed)
        } else {
            book.received(&tally, view::now_ms())
        };
        book.queues[q].recent.insert(id, kept);
        drop(book);
        // The tally is freed here, on the thread that made it.
        drop(tally);
    }

    /// The counts of `records` of queue `q`: kept since their append, or (for records
    /// appended before a restart or past the kept span) walked again, in `book`'s lock
    /// (released for the walk and taken again).
    fn kept<'a, 'b>(
        &'b self,
        mut book: MutexGuard<'b, Book>,
        q: usize,
        records: impl Iterator<Item = (u64, &'a [u8])>,
    ) -> (MutexGuard<'b, Book>, Vec<(u64, Kept)>) {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        let recent = &mut book.queues[q].recent;
        for (id, payload) in records {
            match recent.take(id) {
                Some(k) => found.push((id, k)),
                None => missing.push((id, payload)),
            }
        }
        if missing.is_empty() {
            return (book, found);
        }
        drop(book);
        let signal = self.tracked[q].signal;
        let walked: Vec<(u64, JobTally)> = missing
            .into_iter()
            .filter_map(|(id, p)| Some((id, TallyVisitor::tally_of(&self.keys, signal, p)?)))
            .collect();
        let book = self.lock();
        found.extend(walked.iter().map(|(id, t)| (*id, book.jobs.kept_of(t))));
        (book, found)
    }

    /// A batch of queue `q` the backend accepted, `rejected_items` of it through partial
    /// success. Call before acknowledging it to the queue. Blocking only with a partial
    /// success (the snapshot is written then).
    pub fn delivered(&self, q: usize, entries: &[Entry], rejected_items: u64) {
        let records = entries.iter().map(|e| (e.id, &e.payload[..]));
        let (mut book, records) = self.kept(self.lock(), q, records);
        let now = view::now_ms();
        if rejected_items == 0 {
            book.delivered(q, &records, now);
            return;
        }
        let mut whole = Kept::default();
        records.iter().for_each(|(_, k)| whole.merge(k));
        if whole.single_job(self.keys.len()) {
            book.settle(q, Outcome::Delivered, &records, rejected_items, now);
            drop(book);
            self.persist_or_log();
        } else {
            book.unattributed_rejected += rejected_items;
            book.delivered(q, &records, now);
        }
    }

    /// Records of queue `q` given up on (dead-lettered): rejected, or dropped when `expired`.
    /// Call before acknowledging them to the queue. Blocking (writes the snapshot).
    pub fn gave_up(&self, q: usize, entries: &[Entry], expired: bool) {
        let records = entries.iter().map(|e| (e.id, &e.payload[..]));
        let (mut book, records) = self.kept(self.lock(), q, records);
        let outcome = if expired {
            Outcome::DroppedExpired
        } else {
            Outcome::Rejected
        };
        book.settle(q, outcome, &records, 0, view::now_ms());
        drop(book);
        self.persist_or_log();
    }

    fn dropping(&self, q: usize, records: &[(u64, Bytes)]) {
        let records = records.iter().map(|(id, p)| (*id, &p[..]));
        let (mut book, records) = self.kept(self.lock(), q, records);
        book.settle(q, Outcome::DroppedFull, &records, 0, view::now_ms());
        drop(book);
        self.persist_or_log();
    }

    fn persist_or_log(&self) {
        if let Err(e) = self.persist() {
            tracing::warn!(error = %e, dir = %self.settings.dir.display(), "could not write the job ledger snapshot; retrying at the next tick (queues keep what it does not cover)");
            self.lock().dirty = true;
        }
    }

    /// Writes the snapshot (if something changed), then lets the queues delete the
    /// acknowledged segments it covers.
    pub fn persist(&self) -> std::io::Result<()> {
        let _order = self.persist.lock().unwrap_or_else(|p| p.into_inner());
        let names: Vec<String> = self.tracked.iter().map(|t| t.name.clone()).collect();
        let (bytes, below) = {
            let mut book = self.lock();
            if !book.dirty {
                return Ok(());
            }
            book.dirty = false;
            let below: Vec<u64> = book.queues.iter().map(|q| q.settled_below).collect();
            (snapshot::encode(&book, &names), below)
        };
        if let Err(e) = snapshot::write(&self.settings.dir, &bytes) {
            self.lock().dirty = true;
            return Err(e);
        }
        for (t, b) in self.tracked.iter().zip(below) {
            t.retain_from.store(b, Ordering::SeqCst);
            if let Some(queue) = t.queue.get() {
                queue.release_retained();
            }
        }
        Ok(())
    }

    /// One housekeeping round: settle what the queues have finished, evict, write the
    /// snapshot if something changed.
    pub fn tick(&self) {
        let done: Vec<Option<u64>> = self
            .tracked
            .iter()
            .map(|t| t.queue.get().map(Queue::done_below))
            .collect();
        let evicted = {
            let mut book = self.lock();
            for (q, d) in done.into_iter().enumerate() {
                if let Some(d) = d {
                    book.fold(q, d);
                }
            }
            let s = &self.settings;
            book.evict(view::now_ms(), s.max_jobs, s.retention, s.complete_after)
        };
        if evicted > 0
            && let Some(m) = self.evicted_metric.get()
        {
            m.job_ledger_evicted(evicted);
        }
        self.persist_or_log();
    }

    /// Starts the snapshot thread; it stops (after a last snapshot) when `stop` is dropped
    /// or sent to.
    pub fn start(self: &Arc<Self>) -> LedgerThread {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let ledger = Arc::clone(self);
        let every = self.settings.snapshot_interval;
        let handle = std::thread::Builder::new()
            .name("job-ledger".into())
            .spawn(move || {
                loop {
                    let stop = !matches!(
                        rx.recv_timeout(every),
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                    );
                    ledger.tick();
                    if stop {
                        break;
                    }
                }
            })
            .ok();
        LedgerThread { stop: tx, handle }
    }

    /// The job called `id`, if known.
    pub fn job(&self, id: &str) -> Option<JobView> {
        let book = self.lock();
        let now = view::now_ms();
        book.jobs.get(id).map(|j| {
            let state = j.state(now, self.settings.complete_after);
            JobView::of(id, &self.keys[j.key as usize], j, state)
        })
    }

    /// Jobs last seen at or after `since_ms`, in `state` if given, most recent first, at most
    /// `limit`.
    pub fn jobs(&self, since_ms: u64, state: Option<JobState>, limit: usize) -> Vec<JobView> {
        let book = self.lock();
        let now = view::now_ms();
        let mut out: Vec<JobView> = book
            .jobs
            .iter()
            .filter(|(_, j)| j.last_seen_ms.max(j.last_delivery_ms.unwrap_or(0)) >= since_ms)
            .filter_map(|(v, j)| {
                let s = j.state(now, self.settings.complete_after);
                (state.is_none_or(|want| want == s))
                    .then(|| JobView::of(v, &self.keys[j.key as usize], j, s))
            })
            .collect();
        out.sort_unstable_by(|a, b| b.last_seen_ms.cmp(&a.last_seen_ms).then(a.id.cmp(&b.id)));
        out.truncate(limit);
        out
    }

    /// Ledger-wide figures: jobs kept, evicted, unattributed rejections.
    pub fn totals(&self) -> (usize, u64, u64) {
        let book = self.lock();
        (book.jobs.len(), book.evicted, book.unattributed_rejected)
    }

    /// The last export error of each tracked queue that has one.
    pub fn last_errors(&self) -> Vec<(String, String)> {
        self.tracked
            .iter()
            .filter_map(|t| {
                let e = t.status.get()?.snapshot().last_error?;
                Some((t.name.clone(), e.reason))
            })
            .collect()
    }

    /// The live counts of `id` and its flush notifier (created on first use).
    fn watch(&self, id: &str) -> Option<(Counts, Arc<tokio::sync::Notify>)> {
        let mut book = self.lock();
        let j = book.jobs.get_mut(id)?;
        let n = j
            .notify
            .get_or_insert_with(|| Arc::new(tokio::sync::Notify::new()))
            .clone();
        Some((j.live, n))
    }
}

/// Adds `t`'s items into `into`.
fn merge(into: &mut JobTally, t: &JobTally) {
    into.unkeyed += t.unkeyed;
    for (k, v, n) in &t.jobs {
        match into.jobs.iter_mut().find(|j| j.0 == *k && j.1 == *v) {
            Some(j) => j.2 += n,
            None => into.jobs.push((*k, v.clone(), *n)),
        }
    }
}

/// The snapshot thread; stops with a last snapshot when dropped.
#[derive(Debug)]
pub struct LedgerThread {
    stop: std::sync::mpsc::Sender<()>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl LedgerThread {
    /// Stops the thread after a last snapshot. Blocking.
    pub fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// What a tracked queue calls: retention and `drop_oldest`.
#[derive(Debug)]
struct QueueTap {
    ledger: Weak<JobLedger>,
    q: usize,
    retain_from: Arc<AtomicU64>,
}

impl QueueObserver for QueueTap {
    fn retain_from(&self) -> u64 {
        self.retain_from.load(Ordering::SeqCst)
    }

    fn dropping(&self, records: &[(u64, Bytes)]) {
        if let Some(l) = self.ledger.upgrade() {
            l.dropping(self.q, records);
        }
    }
}
