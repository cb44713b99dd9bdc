//! Model-based property test of the disk queue (after vector's `disk_v2/tests/model`).
//!
//! Random sequences of operations run against the real queue in a temporary directory (small
//! segments so they roll and get deleted, a small byte limit so appends get refused, with and
//! without a payload cache) and against a model: the payloads appended with `Ok` and not yet
//! acknowledged, in append order, each unread or in flight.
//!
//! Operations: append, take a batch (limits drawn at random), acknowledge or release some
//! entries in flight, acknowledge an already acknowledged entry again, reopen cleanly
//! (`shutdown` + `open`), and crash: the directory is copied as a killed process would leave it
//! (no shutdown, the ledger as last written), optionally with the last record torn in half,
//! and the copy is opened.
//!
//! At-least-once makes the queue's contents after a reopen not exactly predictable: entries
//! acknowledged since the last ledger write (after a crash) or acknowledged out of order above
//! an unacknowledged one (the ledger is a watermark) may come back. The model keeps those as
//! *ghosts*: they may be delivered, and when delivered become ordinary entries again. What is
//! checked after every step:
//! - a batch is the oldest unread entries, in append order, with the payloads and item counts
//!   appended, within its limits, and as large as the limits allow;
//! - nothing acknowledged is delivered again before a reopen, nothing never appended (or torn)
//!   is ever delivered, and nothing appended with `Ok` and not acknowledged goes missing;
//! - `stats()` entries, items, payload bytes and in-flight count match the model (up to the
//!   ghosts), an append is refused as full only when it would not fit;
//! - the files in the directory never exceed `max_bytes` plus the ledger.
//!
//! At the end everything is drained: every live entry must be delivered.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use otelspool_queue::{AppendError, BatchLimits, Entry, Queue, QueueOptions, QueueStats};
use proptest::prelude::*;
use tempfile::TempDir;

/// Segments roll after a few records, so rolling and whole-segment deletion happen often.
const SEGMENT_BYTES: u64 = 512;
/// Small enough that long runs without acknowledgements hit the limit.
const MAX_BYTES: u64 = 4096;
/// Frame header bytes before each payload on disk.
const FRAME_HEADER: u64 = 32;
/// Segment header bytes.
const SEGMENT_HEADER: u64 = 16;
/// Files besides the counted segments: `ledger` and a `ledger.tmp` being replaced (20 B each).
const DISK_SLACK: u64 = 64;
/// A batch that should be ready right away but has not come within this is a hang.
const HANG: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
enum Op {
    /// Append a payload of `10 + len` bytes holding `items` items.
    Append { items: u32, len: usize },
    /// Take one batch (`max_items` 0 = no item limit).
    Take { max_items: u64, max_bytes: u64 },
    /// Acknowledge the in-flight entries picked by the bits of `pick`.
    Ack { pick: u64 },
    /// Acknowledge an entry that is already acknowledged.
    AckAgain { pick: usize },
    /// Release the in-flight entries picked by the bits of `pick`.
    Release { pick: u64 },
    /// `shutdown` and open again.
    Reopen,
    /// Copy the directory as a crash would leave it and open the copy; with `torn`, cut the
    /// last appended record at that offset within its frame first.
    Crash { torn: Option<u16> },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1u32..5, 0usize..200).prop_map(|(items, len)| Op::Append { items, len }),
        5 => (0u64..6, prop_oneof![Just(u64::MAX), 1u64..600])
            .prop_map(|(max_items, max_bytes)| Op::Take { max_items, max_bytes }),
        4 => any::<u64>().prop_map(|pick| Op::Ack { pick }),
        1 => any::<usize>().prop_map(|pick| Op::AckAgain { pick }),
        1 => any::<u64>().prop_map(|pick| Op::Release { pick }),
        1 => Just(Op::Reopen),
        1 => proptest::option::of(any::<u16>()).prop_map(|torn| Op::Crash { torn }),
    ]
}

/// A record the model knows.
#[derive(Debug, Clone)]
struct Rec {
    payload: Bytes,
    items: u32,
    /// The queue's id, once known (ids survive reopens).
    id: u64,
}

/// The model: what the queue must hold, keyed by append sequence number.
#[derive(Debug, Default)]
struct Model {
    /// Appended with `Ok`, not acknowledged, not read.
    unread: BTreeMap<u64, Rec>,
    /// Appended with `Ok`, not acknowledged, handed out.
    in_flight: BTreeMap<u64, Rec>,
    /// Acknowledged.
    acked: BTreeMap<u64, Rec>,
    /// Acknowledged entries that may be back in the queue (unread) after a reopen.
    ghosts: BTreeMap<u64, Rec>,
    next_seq: u64,
    /// The last append that returned `Ok`.
    last_append: Option<u64>,
    /// The highest id handed out (lowered only when a torn write removes that record).
    max_id: Option<u64>,
}

fn make_payload(seq: u64, len: usize) -> Bytes {
    let mut p = format!("p{seq:08}:").into_bytes();
    p.resize(p.len() + len, b'x');
    Bytes::from(p)
}

fn seq_of(payload: &[u8]) -> u64 {
    std::str::from_utf8(payload.get(1..9).expect("payload has a sequence number"))
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("delivered a payload never appended: {payload:?}"))
}

fn options(dir: &Path, cache_bytes: u64) -> QueueOptions {
    let mut o = QueueOptions::new("model", Some(dir.to_path_buf()));
    o.segment_bytes = SEGMENT_BYTES;
    o.max_bytes = MAX_BYTES;
    o.cache_bytes = cache_bytes;
    o.fsync = false; // a process crash, not a power loss, is simulated
    o
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read queue dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Copies the queue's files as a killed process would leave them, while its I/O thread may
/// still be at work. Files it deletes meanwhile are skipped, as a crash a moment later would
/// have. The copy is not one instant, so it follows the thread's order: segments first, the
/// ledger last (by name, as it is then). The thread writes the ledger before it deletes a
/// segment, so a segment gone from the copy is covered by the ledger copied after; copying in
/// directory order instead could pair a ledger from before that write with a segment list from
/// after the delete, a state no crash can leave (and one that reuses ids).
fn crash_copy(from: &Path, to: &Path) {
    let copy = |name: &std::ffi::OsStr| match std::fs::read(from.join(name)) {
        Ok(bytes) => std::fs::write(to.join(name), bytes).expect("copy file"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("copy {name:?}: {e}"),
    };
    for entry in std::fs::read_dir(from).expect("read queue dir") {
        let name = entry.expect("dir entry").file_name();
        if name != "lock" && name != "ledger" {
            copy(&name);
        }
    }
    copy(std::ffi::OsStr::new("ledger"));
}

/// Cuts the last record inside its frame when the newest segment ends with it; returns whether
/// it did.
fn tear_last_record(dir: &Path, last: &Rec, torn: u16) -> bool {
    let newest = std::fs::read_dir(dir)
        .expect("read queue dir")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .max();
    let Some(path) = newest else { return false };
    let bytes = std::fs::read(&path).expect("read segment");
    let frame = FRAME_HEADER as usize + last.payload.len();
    let len = bytes.len();
    let ends_with_last = len >= SEGMENT_HEADER as usize + frame
        && bytes[len - frame..].starts_with(b"OSQR")
        && bytes.ends_with(&last.payload);
    if !ends_with_last {
        return false;
    }
    let cut = len - frame + usize::from(torn) % frame;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open segment");
    file.set_len(cut as u64).expect("cut segment");
    true
}

struct Harness {
    model: Model,
    dir: TempDir,
    queue: Queue,
    cache_bytes: u64,
}

impl Harness {
    /// Checks stats against the model and resolves ghosts when the counts leave no doubt.
    fn check(&mut self, step: &str) {
        let s: QueueStats = self.queue.stats();
        let m = &mut self.model;
        let sum = |r: &BTreeMap<u64, Rec>| {
            r.values().fold((0u64, 0u64), |(i, b), r| {
                (i + u64::from(r.items), b + r.payload.len() as u64)
            })
        };
        assert_eq!(s.in_flight, m.in_flight.len() as u64, "{step}: in flight");
        let unread_q = s.entries - s.in_flight;
        let (lo, ghosts) = (m.unread.len() as u64, m.ghosts.len() as u64);
        assert!(
            (lo..=lo + ghosts).contains(&unread_q),
            "{step}: queue holds {unread_q} unread entries, model {lo} (+{ghosts} ghosts)"
        );
        if unread_q == lo {
            m.ghosts.clear();
        } else if unread_q == lo + ghosts {
            let ghosts = std::mem::take(&mut m.ghosts);
            for (seq, rec) in ghosts {
                m.acked.remove(&seq);
                m.unread.insert(seq, rec);
            }
        }
        let (ui, ub) = sum(&m.unread);
        let (fi, fb) = sum(&m.in_flight);
        let (gi, gb) = sum(&m.ghosts);
        assert!(
            (ui + fi..=ui + fi + gi).contains(&s.items),
            "{step}: {} items, model {} (+{gi} ghost items)",
            s.items,
            ui + fi
        );
        assert!(
            (ub + fb..=ub + fb + gb).contains(&s.payload_bytes),
            "{step}: {} payload bytes, model {} (+{gb})",
            s.payload_bytes,
            ub + fb
        );
        assert!(
            s.disk_bytes <= MAX_BYTES,
            "{step}: counted {} bytes",
            s.disk_bytes
        );
        let on_disk = dir_bytes(self.dir.path());
        assert!(
            on_disk <= MAX_BYTES + DISK_SLACK,
            "{step}: {on_disk} bytes on disk, limit {MAX_BYTES}"
        );
    }

    async fn append(&mut self, items: u32, len: usize) {
        let seq = self.model.next_seq;
        self.model.next_seq += 1;
        let payload = make_payload(seq, len);
        let before = self.queue.stats();
        match self.queue.append(items, payload.clone()).await {
            Ok(id) => {
                let m = &mut self.model;
                assert!(
                    m.unread
                        .values()
                        .chain(m.in_flight.values())
                        .all(|r| r.id != id),
                    "append got id {id}, which an entry in the queue already has"
                );
                // Ids rise and are never reused, even across restarts and crashes.
                assert!(
                    m.max_id.is_none_or(|max| id > max),
                    "append got id {id}, not above {:?} handed out before",
                    m.max_id
                );
                m.max_id = Some(id);
                let rec = Rec { payload, items, id };
                self.model.unread.insert(seq, rec);
                self.model.last_append = Some(seq);
            }
            Err(AppendError::Full { reason, .. }) => {
                let need = FRAME_HEADER + payload.len() as u64 + SEGMENT_HEADER;
                assert!(
                    before.disk_bytes + need > MAX_BYTES,
                    "refused as full ({reason}) with {} of {MAX_BYTES} bytes used, {need} needed",
                    before.disk_bytes
                );
            }
            Err(e) => panic!("append failed: {e}"),
        }
    }

    async fn take(&mut self, max_items: u64, max_bytes: u64) {
        let s = self.queue.stats();
        if s.entries == s.in_flight {
            assert!(
                self.model.unread.is_empty(),
                "queue has nothing unread, model does"
            );
            return;
        }
        let limits = BatchLimits {
            min_items: 1,
            linger: Duration::ZERO,
            max_items,
            max_bytes,
        };
        let batch: Vec<Entry> = tokio::time::timeout(HANG, self.queue.next_batch(limits))
            .await
            .expect("next_batch hangs with unread entries")
            .expect("queue closed");
        assert!(!batch.is_empty(), "empty batch");
        let m = &mut self.model;
        let mut last = None;
        let (mut items, mut bytes) = (0u64, 0u64);
        for e in &batch {
            let seq = seq_of(&e.payload);
            assert!(last < Some(seq), "batch out of order at seq {seq}");
            // Every known unread entry older than this one must have come before it.
            if let Some((&older, _)) = m.unread.range(last.map_or(0, |l| l + 1)..seq).next() {
                panic!("seq {older} skipped: batch went on to {seq}");
            }
            // Ghosts between the previous entry and this one are not in the queue.
            m.ghosts.retain(|&g, _| !(Some(g) > last && g < seq));
            let rec = match (m.unread.remove(&seq), m.ghosts.remove(&seq)) {
                (Some(r), _) => r,
                (None, Some(r)) => {
                    m.acked.remove(&seq);
                    r
                }
                (None, None) => panic!(
                    "seq {seq} delivered but it is {}",
                    if m.acked.contains_key(&seq) {
                        "acknowledged"
                    } else if m.in_flight.contains_key(&seq) {
                        "already in flight"
                    } else {
                        "not in the queue (torn or never appended)"
                    }
                ),
            };
            assert_eq!(e.payload, rec.payload, "seq {seq}: payload");
            assert_eq!(e.items, rec.items, "seq {seq}: items");
            items += u64::from(e.items);
            bytes += e.payload.len() as u64;
            m.in_flight.insert(seq, Rec { id: e.id, ..rec });
            last = Some(seq);
        }
        let max_items = if max_items == 0 { u64::MAX } else { max_items };
        if batch.len() > 1 {
            assert!(
                items <= max_items,
                "batch of {items} items, limit {max_items}"
            );
            assert!(
                bytes <= max_bytes,
                "batch of {bytes} bytes, limit {max_bytes}"
            );
        }
        // As large as the limits allow: the next entry, when certainly present, did not fit.
        let last = last.expect("non-empty batch");
        let next = m.unread.range(last + 1..).next();
        if let Some((&seq, rec)) = next
            && !m.ghosts.range(last + 1..seq).any(|_| true)
        {
            assert!(
                items + u64::from(rec.items) > max_items
                    || bytes + rec.payload.len() as u64 > max_bytes,
                "batch stopped before seq {seq} although it fits ({items} items, {bytes} bytes)"
            );
        }
    }

    fn picked(&self, pick: u64) -> Vec<u64> {
        self.model
            .in_flight
            .keys()
            .enumerate()
            .filter(|(i, _)| pick & (1 << (i % 64)) != 0)
            .map(|(_, &seq)| seq)
            .collect()
    }

    fn ack(&mut self, pick: u64) {
        let seqs = self.picked(pick);
        let m = &mut self.model;
        let ids: Vec<u64> = seqs.iter().map(|s| m.in_flight[s].id).collect();
        self.queue.ack(&ids);
        for seq in seqs {
            let rec = m.in_flight.remove(&seq).expect("picked from in flight");
            m.acked.insert(seq, rec);
        }
    }

    fn ack_again(&mut self, pick: usize) {
        let m = &self.model;
        let candidates: Vec<u64> = m
            .acked
            .keys()
            .filter(|s| !m.ghosts.contains_key(s))
            .copied()
            .collect();
        if candidates.is_empty() {
            return;
        }
        let seq = candidates[pick % candidates.len()];
        let before = self.queue.stats();
        self.queue.ack(&[m.acked[&seq].id]);
        let after = self.queue.stats();
        assert_eq!(
            (before.entries, before.items, before.in_flight),
            (after.entries, after.items, after.in_flight),
            "acknowledging seq {seq} twice changed the queue"
        );
    }

    fn release(&mut self, pick: u64) {
        let seqs = self.picked(pick);
        let m = &mut self.model;
        let ids: Vec<u64> = seqs.iter().map(|s| m.in_flight[s].id).collect();
        self.queue.release(&ids);
        for seq in seqs {
            let rec = m.in_flight.remove(&seq).expect("picked from in flight");
            m.unread.insert(seq, rec);
        }
    }

    /// After any reopen everything in flight is unread again.
    fn reopened(&mut self, recovered: u64, step: &str) {
        let m = &mut self.model;
        let in_flight = std::mem::take(&mut m.in_flight);
        m.unread.extend(in_flight);
        let (lo, ghosts) = (m.unread.len() as u64, m.ghosts.len() as u64);
        assert!(
            (lo..=lo + ghosts).contains(&recovered),
            "{step}: recovered {recovered} entries, model {lo} (+{ghosts} ghosts)"
        );
    }

    fn reopen(&mut self) {
        self.queue.shutdown();
        // The ledger is a watermark: acknowledged entries above the oldest one left may return.
        let m = &mut self.model;
        if let Some(&oldest) = m
            .unread
            .keys()
            .chain(m.in_flight.keys())
            .chain(m.ghosts.keys())
            .min()
        {
            let back: Vec<(u64, Rec)> = m
                .acked
                .range(oldest..)
                .map(|(s, r)| (*s, r.clone()))
                .collect();
            m.ghosts.extend(back);
        }
        let (queue, report) =
            Queue::open(options(self.dir.path(), self.cache_bytes)).expect("reopen");
        self.queue = queue;
        self.reopened(report.entries, "reopen");
    }

    fn crash(&mut self, torn: Option<u16>) {
        let copy = tempfile::tempdir().expect("tempdir");
        crash_copy(self.dir.path(), copy.path());
        self.queue.shutdown();
        let m = &mut self.model;
        // The ledger on disk may be older than any acknowledgement.
        let back: Vec<(u64, Rec)> = m.acked.iter().map(|(s, r)| (*s, r.clone())).collect();
        m.ghosts.extend(back);
        if let (Some(torn), Some(seq)) = (torn, m.last_append) {
            let rec = m
                .unread
                .get(&seq)
                .or_else(|| m.in_flight.get(&seq))
                .or_else(|| m.acked.get(&seq))
                .cloned();
            if let Some(rec) = rec
                && tear_last_record(copy.path(), &rec, torn)
            {
                // A torn write: that append never returned to its caller. Its id may be
                // given to the next append.
                m.unread.remove(&seq);
                m.in_flight.remove(&seq);
                m.acked.remove(&seq);
                m.ghosts.remove(&seq);
                m.last_append = None;
                m.max_id = rec.id.checked_sub(1);
            }
        }
        self.dir = copy;
        let (queue, report) =
            Queue::open(options(self.dir.path(), self.cache_bytes)).expect("open after crash");
        self.queue = queue;
        self.reopened(report.entries, "crash");
    }

    /// Takes and acknowledges everything; every live entry must come out.
    async fn drain(&mut self) {
        self.release(u64::MAX);
        for _ in 0..10_000 {
            let s = self.queue.stats();
            if s.entries == 0 {
                break;
            }
            self.take(0, u64::MAX).await;
            self.ack(u64::MAX);
            self.check("drain");
        }
        assert!(
            self.model.unread.is_empty(),
            "never delivered: {:?}",
            self.model.unread.keys()
        );
        assert!(self.model.in_flight.is_empty());
        assert_eq!(self.queue.stats().entries, 0);
    }
}

fn run(cache_bytes: u64, ops: Vec<Op>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (queue, _) = Queue::open(options(dir.path(), cache_bytes)).expect("open");
        let mut h = Harness {
            model: Model::default(),
            dir,
            queue,
            cache_bytes,
        };
        for (i, op) in ops.into_iter().enumerate() {
            let step = format!("step {i} {op:?}");
            match op {
                Op::Append { items, len } => h.append(items, len).await,
                Op::Take {
                    max_items,
                    max_bytes,
                } => h.take(max_items, max_bytes).await,
                Op::Ack { pick } => h.ack(pick),
                Op::AckAgain { pick } => h.ack_again(pick),
                Op::Release { pick } => h.release(pick),
                Op::Reopen => h.reopen(),
                Op::Crash { torn } => h.crash(torn),
            }
            h.check(&step);
        }
        h.drain().await;
        h.queue.shutdown();
    });
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Scenario: random appends, batch reads, acknowledgements, releases, clean reopens and
    /// crashes (some tearing the last write) against a small disk queue, without a payload
    /// cache and with one.
    /// Guarantees: delivery follows the model (in order, intact, at least once, nothing
    /// acknowledged delivered again before a reopen, nothing lost), stats match it, and disk
    /// use stays under the limit.
    #[test]
    fn disk_queue_behaves_like_its_model(
        cache_bytes in prop_oneof![Just(0u64), Just(300u64)],
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        run(cache_bytes, ops);
    }
}

/// Scenario: after a restart the newest segment is fully acknowledged, and so deleted, while
/// an older record is not; the queue restarts again and takes a new append.
/// Guarantees: the new record's id is above every id handed out before: ids are never reused,
/// even across restarts (the crate's format doc promises it; a consumer or a dead-letter file
/// keyed by id would otherwise confuse two records).
#[tokio::test]
async fn ids_are_never_reused_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, _) = Queue::open(options(dir.path(), 0)).expect("open");
    let mut last = 0;
    for seq in 0..10 {
        last = q.append(1, make_payload(seq, 100)).await.expect("append");
    }
    q.shutdown();
    let (q, _) = Queue::open(options(dir.path(), 0)).expect("reopen");
    let limits = BatchLimits {
        min_items: 1,
        linger: Duration::ZERO,
        max_items: 0,
        max_bytes: u64::MAX,
    };
    let batch = tokio::time::timeout(HANG, q.next_batch(limits))
        .await
        .expect("batch")
        .expect("open queue");
    assert_eq!(batch.len(), 10);
    // Everything but the oldest record: the newer segments drain and are deleted.
    q.ack(&batch[1..].iter().map(|e| e.id).collect::<Vec<_>>());
    q.shutdown();
    let (q, _) = Queue::open(options(dir.path(), 0)).expect("reopen");
    let id = q.append(1, make_payload(10, 100)).await.expect("append");
    q.shutdown();
    assert!(
        id > last,
        "new record got id {id}, but ids up to {last} were already used"
    );
}
