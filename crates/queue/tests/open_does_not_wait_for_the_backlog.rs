//! `Queue::open_background` returns, and appends are acknowledged, before any segment found on
//! disk is read; consumers get the backlog in order once the background indexer reads it; a
//! crash while it is reading loses nothing.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;
use common::*;
use otelspool_queue::{Queue, QueueIo, WhenFull};

/// Holds every whole-file read of a segment (what the indexer does) while `held` is set, and
/// counts the ones that went through.
#[derive(Debug, Default)]
struct GatedIo {
    held: AtomicBool,
    gate: Mutex<()>,
    opened: Condvar,
    segment_reads: AtomicU64,
}

impl QueueIo for GatedIo {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        if path.extension().is_some_and(|x| x == "seg") {
            let mut g = self.gate.lock().expect("gate");
            while self.held.load(Ordering::SeqCst) {
                g = self.opened.wait(g).expect("gate");
            }
            self.segment_reads.fetch_add(1, Ordering::SeqCst);
        }
        std::fs::read(path)
    }
}

impl GatedIo {
    fn held() -> Arc<Self> {
        let io = Arc::new(GatedIo::default());
        io.held.store(true, Ordering::SeqCst);
        io
    }

    fn release(&self) {
        let _g = self.gate.lock().expect("gate");
        self.held.store(false, Ordering::SeqCst);
        self.opened.notify_all();
    }
}

/// Writes `n` records (ids 0..n) over many small segments and stops cleanly.
async fn fill(dir: &Path, n: u64) {
    let (q, _) = Queue::open(opts(dir)).expect("open");
    for i in 0..n {
        assert_eq!(q.append(1, payload(i)).await.expect("append"), i);
    }
    q.shutdown();
}

/// Scenario: a folder holds 200 records in several segments; it is opened with every read of
/// a segment file blocked; one record is appended; the folder is copied as a crash would leave
/// it; a consumer starts; then the reads are let through.
/// Guarantees: open returns and the append is acknowledged (with an id above every id on disk)
/// while no segment has been read; the queue counts at least the records it holds meanwhile;
/// the consumer gets the 200 old records and then the new one, in order; the final recovery
/// report counts the 200; reopening the crash copy delivers the same 201 records in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_and_appends_do_not_wait_for_old_segments_and_order_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    fill(dir.path(), 200).await;
    let old_segments = segment_files(dir.path()).len();
    assert!(old_segments > 3, "{old_segments} segments");

    let io = GatedIo::held();
    let mut o = opts(dir.path());
    o.io = io.clone();
    let q = Queue::open_background(o).expect("open without reading segments");
    let new = Bytes::from_static(b"appended while the backlog is unread");
    let id = q.append(1, new.clone()).await.expect("append acknowledged");
    assert_eq!(
        io.segment_reads.load(Ordering::SeqCst),
        0,
        "a segment was read"
    );
    assert!(id >= 200, "id {id} may reuse an id on disk");
    assert!(q.recovery_finished().is_none());
    assert_eq!(q.index_stats().unscanned_segments, old_segments as u64);
    assert!(q.stats().entries >= 201, "{:?}", q.stats());
    let crashed = crash_copy(dir.path());

    let consumer = {
        let q = q.clone();
        tokio::spawn(async move { drain(&q).await })
    };
    tokio::task::yield_now().await;
    io.release();
    let got: Vec<(u64, Bytes)> = consumer
        .await
        .expect("consumer")
        .into_iter()
        .map(|e| (e.id, e.payload))
        .collect();
    let mut want: Vec<(u64, Bytes)> = (0..200).map(|i| (i, payload(i))).collect();
    want.push((id, new.clone()));
    assert_eq!(got, want);
    let report = q.recovered().await;
    assert_eq!(
        (report.segments, report.entries),
        (old_segments as u64, 200)
    );
    assert!(!report.found_damage(), "{report:?}");
    let stats = q.stats();
    assert_eq!((stats.entries, stats.items), (201, 201));
    q.shutdown();

    let (q2, report) = Queue::open(opts(crashed.path())).expect("reopen the crash copy");
    let got: Vec<(u64, Bytes)> = drain(&q2)
        .await
        .into_iter()
        .map(|e| (e.id, e.payload))
        .collect();
    assert_eq!(got, want, "after a crash while indexing ({report:?})");
    q2.shutdown();
}

/// Scenario: the newest segment found at open has a torn tail, and the folder is opened with
/// `open_background`.
/// Guarantees: the background scan cuts and reports the tail exactly as the blocking open does,
/// and every whole record is delivered in order.
#[tokio::test]
async fn the_background_scan_cuts_a_torn_tail_and_reports_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    fill(dir.path(), 50).await;
    let last = segment_files(dir.path()).pop().expect("a segment");
    let mut bytes = std::fs::read(&last).expect("read");
    bytes.extend_from_slice(b"OSQR torn frame");
    std::fs::write(&last, bytes).expect("tear");
    let q = Queue::open_background(opts(dir.path())).expect("open");
    let got: Vec<Bytes> = drain(&q).await.into_iter().map(|e| e.payload).collect();
    assert_eq!(got, (0..50).map(payload).collect::<Vec<_>>());
    let report = q.recovered().await;
    assert_eq!(report.truncated_bytes, 15, "{report:?}");
    assert_eq!(report.entries, 50);
    assert_eq!(q.stats().disk_bytes, segment_bytes(dir.path()));
    q.shutdown();
}

/// Scenario: a full queue with `when_full: drop_oldest` is opened in the background with every
/// segment read blocked, and a record is appended that needs room.
/// Guarantees: the append is acknowledged by dropping whole oldest segments that were never
/// read, counted as dropped entries; once the reads go through, exactly the records not
/// dropped come back, in order, then the new one, and every record is either delivered or
/// counted as dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_oldest_drops_segments_not_read_yet_and_counts_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    fill(dir.path(), 200).await;
    let io = GatedIo::held();
    let mut o = opts(dir.path());
    o.io = io.clone();
    o.when_full = WhenFull::DropOldest;
    o.max_bytes = segment_bytes(dir.path()) + 200;
    o.segment_bytes = 4096;
    let q = Queue::open_background(o).expect("open");
    let new = Bytes::from(vec![b'n'; 1000]);
    let id = q
        .append(1, new.clone())
        .await
        .expect("room made by dropping");
    assert_eq!(
        io.segment_reads.load(Ordering::SeqCst),
        0,
        "a segment was read"
    );
    let dropped = q.counters().dropped_entries;
    assert!(dropped > 0, "nothing dropped");
    io.release();
    let got: Vec<(u64, Bytes)> = drain(&q)
        .await
        .into_iter()
        .map(|e| (e.id, e.payload))
        .collect();
    let first = 200 - (got.len() as u64 - 1);
    let mut want: Vec<(u64, Bytes)> = (first..200).map(|i| (i, payload(i))).collect();
    want.push((id, new));
    assert_eq!(got, want);
    assert_eq!(
        dropped + got.len() as u64,
        201,
        "a record neither delivered nor counted"
    );
    q.shutdown();
}
