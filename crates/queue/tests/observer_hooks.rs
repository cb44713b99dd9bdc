//! The observer hooks the job ledger uses: acknowledged segments are kept until the observer
//! releases their ids, `drop_oldest` hands over every record it deletes (bytes and ids, each
//! once), and `peek_dir` reads a closed queue folder. Without an observer nothing is kept.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use otelspool_queue::{Queue, QueueObserver, RealIo, WhenFull, peek_dir};

#[derive(Debug, Default)]
struct Recorder {
    retain_from: AtomicU64,
    dropped: Mutex<Vec<(u64, Bytes)>>,
}

impl QueueObserver for Recorder {
    fn retain_from(&self) -> u64 {
        self.retain_from.load(Ordering::SeqCst)
    }
    fn dropping(&self, records: &[(u64, Bytes)]) {
        self.dropped
            .lock()
            .expect("lock")
            .extend(records.iter().cloned());
    }
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Scenario: 200 records over many segments are read and acknowledged with an observer
/// that releases nothing, then releases everything.
/// Guarantees: the drained segments stay on disk (and `peek_dir` reads their records and the
/// ack watermark) until released; then they are deleted.
#[tokio::test]
async fn acknowledged_segments_stay_until_released() {
    let dir = tempfile::tempdir().expect("tempdir");
    let obs = Arc::new(Recorder::default());
    let mut o = opts(dir.path());
    o.observer = Some(obs.clone());
    let (q, _) = Queue::open(o).expect("open");
    for n in 0..200 {
        q.append(1, payload(n)).await.expect("append");
    }
    let got = drain(&q).await;
    q.ack(&got.iter().map(|e| e.id).collect::<Vec<_>>());
    assert_eq!(q.done_below(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        segment_files(dir.path()).len() > 3,
        "acknowledged segments kept"
    );

    let peek = peek_dir(&RealIo, dir.path(), 150).expect("peek");
    assert_eq!(peek.watermark, 200);
    let ids: Vec<u64> = peek.records.iter().map(|r| r.0).collect();
    assert_eq!(ids, (150..200).collect::<Vec<_>>());
    assert_eq!(peek.records[0].1, payload(150));

    obs.retain_from.store(u64::MAX, Ordering::SeqCst);
    q.release_retained();
    wait_until("released segments to go", || {
        segment_files(dir.path()).len() <= 1
    })
    .await;
    q.shutdown();
}

/// Scenario: the same acknowledgements without an observer.
/// Guarantees: drained segments are deleted as before (no retention).
#[tokio::test]
async fn without_an_observer_nothing_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, _) = Queue::open(opts(dir.path())).expect("open");
    for n in 0..200 {
        q.append(1, payload(n)).await.expect("append");
    }
    let got = drain(&q).await;
    q.ack(&got.iter().map(|e| e.id).collect::<Vec<_>>());
    wait_until("drained segments to go", || {
        segment_files(dir.path()).len() <= 1
    })
    .await;
    q.shutdown();
}

/// Scenario: `drop_oldest` on a 20 kB queue with 400 appends and no reader, observed.
/// Guarantees: the observer got exactly the dropped records, each once, with their bytes;
/// their count is the queue's dropped count; with what remains they make up every append.
#[tokio::test]
async fn drop_oldest_hands_every_dropped_record_to_the_observer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let obs = Arc::new(Recorder::default());
    let mut o = opts(dir.path());
    o.max_bytes = 20_000;
    o.when_full = WhenFull::DropOldest;
    o.observer = Some(obs.clone());
    let (q, _) = Queue::open(o).expect("open");
    for n in 0..400 {
        q.append(1, payload(n)).await.expect("accepted");
    }
    let dropped = obs.dropped.lock().expect("lock").clone();
    assert!(!dropped.is_empty());
    assert_eq!(dropped.len() as u64, q.counters().dropped_entries);
    for (id, bytes) in &dropped {
        assert_eq!(bytes, &payload(*id), "record {id}");
    }
    let remaining = drain(&q).await;
    let mut all: Vec<u64> = dropped.iter().map(|d| d.0).collect();
    all.extend(remaining.iter().map(|e| e.id));
    all.sort_unstable();
    assert_eq!(all, (0..400).collect::<Vec<_>>());
    q.shutdown();
}
