//! Append, read, acknowledge and reopen: the queue's delivery contract.

mod common;

use common::*;
use otelspool_queue::{AppendError, BatchLimits, Queue, QueueOptions, WhenFull};
use std::time::Duration;

/// Scenario: records are appended and read back in order, then acknowledged.
/// Guarantees: payloads come back intact and in order; acknowledged records are gone from stats.
#[tokio::test]
async fn appended_records_come_back_in_order_and_ack_removes_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, report) = Queue::open(opts(dir.path())).expect("open");
    assert_eq!(report.entries, 0);
    for n in 0..50 {
        q.append(2, payload(n)).await.expect("append");
    }
    assert_eq!((q.stats().entries, q.stats().items), (50, 100));
    let got = drain(&q).await;
    let bodies: Vec<_> = got.iter().map(|e| e.payload.clone()).collect();
    assert_eq!(bodies, (0..50).map(payload).collect::<Vec<_>>());
    q.ack(&got.iter().map(|e| e.id).collect::<Vec<_>>());
    let s = q.stats();
    assert_eq!((s.entries, s.items, s.in_flight), (0, 0, 0));
    q.shutdown();
}

/// Scenario: the process stops (or dies) with records read but not acknowledged.
/// Guarantees: after reopening, every unacknowledged record is delivered again; acknowledged
/// ones are not.
#[tokio::test]
async fn unacknowledged_records_survive_reopen_and_acknowledged_ones_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (q, _) = Queue::open(opts(dir.path())).expect("open");
        for n in 0..100 {
            q.append(1, payload(n)).await.expect("append");
        }
        let got = drain(&q).await;
        let acked: Vec<u64> = got.iter().take(40).map(|e| e.id).collect();
        q.ack(&acked);
        q.shutdown();
    }
    let (q, report) = Queue::open(opts(dir.path())).expect("reopen");
    assert_eq!(report.entries, 60, "{report:?}");
    let got = drain(&q).await;
    let bodies: Vec<_> = got.iter().map(|e| e.payload.clone()).collect();
    assert_eq!(bodies, (40..100).map(payload).collect::<Vec<_>>());
    // Ids keep rising across restarts.
    let id = q.append(1, payload(999)).await.expect("append");
    assert!(id >= 100, "id {id} reused an old id");
    q.shutdown();
}

/// Scenario: a queue is dropped without shutdown, like a killed process.
/// Guarantees: every append that returned Ok is there after reopen.
#[tokio::test]
async fn appends_that_returned_ok_survive_an_abrupt_drop() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (q, _) = Queue::open(opts(dir.path())).expect("open");
        for n in 0..30 {
            q.append(1, payload(n)).await.expect("append");
        }
        std::mem::forget(q); // no shutdown, no ledger flush, lock left to the OS
    }
    // The advisory lock belongs to the leaked handle; a real kill releases it. Copy the files.
    let copy = tempfile::tempdir().expect("tempdir");
    for f in std::fs::read_dir(dir.path()).expect("read_dir") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, copy.path().join(f.file_name().expect("name"))).expect("copy");
    }
    let (q, report) = Queue::open(opts(copy.path())).expect("reopen");
    assert_eq!(report.entries, 30);
    assert_eq!(drain(&q).await.len(), 30);
    q.shutdown();
}

/// Scenario: many tasks append at once.
/// Guarantees: group commit gives every append a distinct id and keeps every payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_commits_and_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = opts(dir.path());
    o.segment_bytes = 64 * 1024;
    let (q, _) = Queue::open(o).expect("open");
    let mut tasks = Vec::new();
    for n in 0..500u64 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move { q.append(1, payload(n)).await }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.expect("join").expect("append"));
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 500);
    let mut bodies: Vec<_> = drain(&q).await.into_iter().map(|e| e.payload).collect();
    bodies.sort();
    let mut want: Vec<_> = (0..500).map(payload).collect();
    want.sort();
    assert_eq!(bodies, want);
    q.shutdown();
}

/// Scenario: the backend is down and data piles up against a small byte limit.
/// Guarantees: the folder never exceeds the limit; `block` refuses with a retryable error.
#[tokio::test]
async fn full_queue_blocks_and_disk_use_stays_under_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = opts(dir.path());
    o.max_bytes = 20_000;
    let (q, _) = Queue::open(o).expect("open");
    let mut accepted = 0;
    let mut refused = 0;
    for n in 0..400 {
        match q.append(1, payload(n)).await {
            Ok(_) => accepted += 1,
            Err(AppendError::Full { .. }) => refused += 1,
            Err(e) => panic!("unexpected error {e}"),
        }
        let used = dir_bytes(dir.path());
        assert!(used <= 20_000 + 64, "disk use {used} over the limit"); // + ledger/lock files
    }
    assert!(
        accepted > 0 && refused > 0,
        "accepted {accepted} refused {refused}"
    );
    assert_eq!(q.stats().entries, accepted);
    assert_eq!(q.counters().refused_full, refused);
    // Draining gives the space back and appends work again.
    let got = drain(&q).await;
    q.ack(&got.iter().map(|e| e.id).collect::<Vec<_>>());
    let d = dir.path().to_path_buf();
    assert!(
        wait_until(Duration::from_secs(10), || segment_files(&d).len() <= 1).await,
        "drained segments not deleted: {:?}",
        segment_files(&d)
    );
    q.append(1, payload(1)).await.expect("append after drain");
    assert!(
        segment_files(dir.path()).len() <= 2,
        "{:?}",
        segment_files(dir.path())
    );
    q.shutdown();
}

/// Scenario: `when_full: drop_oldest` with the backend down.
/// Guarantees: new data is accepted, the oldest is dropped and counted, and what remains plus
/// what was dropped adds up to what was accepted.
#[tokio::test]
async fn drop_oldest_drops_whole_old_segments_and_counts_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = opts(dir.path());
    o.max_bytes = 20_000;
    o.when_full = WhenFull::DropOldest;
    let (q, _) = Queue::open(o).expect("open");
    for n in 0..400 {
        q.append(1, payload(n))
            .await
            .expect("drop_oldest always accepts");
        assert!(dir_bytes(dir.path()) <= 20_000 + 64);
    }
    let c = q.counters();
    assert!(c.dropped_items > 0);
    let remaining = drain(&q).await;
    assert_eq!(remaining.len() as u64 + c.dropped_items, 400);
    // What remains is the newest data, in order.
    let last = remaining.last().expect("some").payload.clone();
    assert_eq!(last, payload(399));
    q.shutdown();
}

/// Scenario: an in-memory queue (no `storage`).
/// Guarantees: same interface; entry limit enforced.
#[tokio::test]
async fn in_memory_queue_has_the_same_contract() {
    let mut o = QueueOptions::new("mem", None);
    o.max_entries = 3;
    let (q, _) = Queue::open(o).expect("open");
    for n in 0..3 {
        q.append(1, payload(n)).await.expect("append");
    }
    assert!(matches!(
        q.append(1, payload(3)).await,
        Err(AppendError::Full { .. })
    ));
    let got = drain(&q).await;
    assert_eq!(got.len(), 3);
    q.ack(&[got[0].id]);
    q.append(1, payload(4)).await.expect("room again");
}

/// Scenario: a consumer asks for a batch of at least N items with a linger time.
/// Guarantees: it waits for N items, or for the linger time, whichever comes first.
#[tokio::test]
async fn batches_wait_for_size_or_linger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, _) = Queue::open(opts(dir.path())).expect("open");
    q.append(5, payload(0)).await.expect("append");
    let limits = BatchLimits {
        min_items: 10,
        linger: Duration::from_millis(300),
        max_items: 0,
        max_bytes: u64::MAX,
    };
    let started = std::time::Instant::now();
    let b = q.next_batch(limits).await.expect("batch");
    assert_eq!(b.len(), 1);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "did not linger"
    );
    q.ack(&[b[0].id]);
    for n in 0..4 {
        q.append(3, payload(n)).await.expect("append");
    }
    let b = q.next_batch(limits).await.expect("batch");
    assert_eq!(b.iter().map(|e| e.items).sum::<u32>(), 12);
    q.shutdown();
}

/// Scenario: many segments are written and then fully acknowledged.
/// Guarantees: segment files are deleted as they drain: disk use follows the backlog.
#[tokio::test]
async fn drained_segments_are_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, _) = Queue::open(opts(dir.path())).expect("open");
    for n in 0..300 {
        q.append(1, payload(n)).await.expect("append");
    }
    let before = segment_files(dir.path()).len();
    assert!(before > 5, "expected several segments, got {before}");
    let got = drain(&q).await;
    q.ack(&got.iter().map(|e| e.id).collect::<Vec<_>>());
    let d = dir.path().to_path_buf();
    let drained = || segment_files(&d).len() <= 1 && q.stats().disk_bytes < 4096;
    assert!(
        wait_until(Duration::from_secs(10), drained).await,
        "{} segment files ({} bytes counted) left after draining",
        segment_files(&d).len(),
        q.stats().disk_bytes
    );
    q.shutdown();
}

/// Scenario: a second process opens a queue directory that is in use.
/// Guarantees: it is refused instead of corrupting the queue.
#[tokio::test]
async fn a_directory_in_use_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, _) = Queue::open(opts(dir.path())).expect("open");
    assert!(matches!(
        Queue::open(opts(dir.path())),
        Err(otelspool_queue::OpenError::Locked { .. })
    ));
    q.shutdown();
}

/// Scenario: every entry of the active segment is acknowledged, then a burst of concurrent
/// appends is committed as one group that rolls over to a new segment (cache off, so the
/// payloads must be read back from disk).
/// Guarantees: the old segment is not deleted while it holds the burst's first frames: every
/// appended record is delivered and none is reported damaged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_that_rolls_over_an_acknowledged_segment_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, _) = Queue::open(opts(dir.path())).expect("open");
    let mut n = 0u64;
    for round in 0..20 {
        q.append(1, payload(n)).await.expect("append");
        n += 1;
        let got = drain(&q).await;
        q.ack(&got.iter().map(|e| e.id).collect::<Vec<_>>());
        let mut tasks = Vec::new();
        for _ in 0..60 {
            let q = q.clone();
            let p = payload(n);
            n += 1;
            tasks.push(tokio::spawn(async move { q.append(1, p).await }));
        }
        for t in tasks {
            t.await.expect("join").expect("append");
        }
        let got = drain(&q).await;
        assert_eq!(got.len(), 60, "round {round}: {:?}", q.counters());
        q.ack(&got.iter().map(|e| e.id).collect::<Vec<_>>());
        assert_eq!(q.counters().corrupt_entries, 0, "round {round}");
    }
    q.shutdown();
}

/// Scenario: a byte limit far below the default segment size; the queue fills, then the
/// backend drains all of it.
/// Guarantees: the space of the drained (still active) segment comes back: appends succeed
/// again and disk use falls, instead of the queue staying full forever.
#[tokio::test]
async fn a_drained_queue_gives_its_space_back_even_within_one_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = QueueOptions::new("small", Some(dir.path().to_path_buf()));
    o.max_bytes = 200 * 1024;
    let (q, _) = Queue::open(o).expect("open");
    let mut n = 0;
    loop {
        match q.append(1, payload(n)).await {
            Ok(_) => n += 1,
            Err(AppendError::Full { .. }) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(n < 100_000, "never filled up");
    }
    let got = drain(&q).await;
    assert_eq!(got.len() as u64, n);
    q.ack(&got.iter().map(|e| e.id).collect::<Vec<_>>());
    q.append(1, payload(0))
        .await
        .expect("space must come back after a full drain");
    assert!(q.stats().disk_bytes < 20 * 1024, "{:?}", q.stats());
    assert!(dir_bytes(dir.path()) < 20 * 1024);
    q.shutdown();
}

/// Scenario: `drop_oldest`, the backend down, and a consumer holding the whole backlog in one
/// attempt when new data arrives; afterwards half of the held batch is delivered (acked) and
/// half fails (released).
/// Guarantees: the new data is accepted (in-flight data can be dropped too); every entry ends
/// up counted exactly once: delivered, dropped, or still queued.
#[tokio::test]
async fn drop_oldest_can_drop_data_in_flight_and_counts_each_entry_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = opts(dir.path());
    o.max_bytes = 20_000;
    o.when_full = WhenFull::DropOldest;
    let (q, _) = Queue::open(o).expect("open");
    let mut appended = 0u64;
    while q.stats().disk_bytes < 15_000 {
        q.append(1, payload(appended)).await.expect("append");
        appended += 1;
    }
    let held = drain(&q).await; // one consumer holds everything
    assert_eq!(held.len() as u64, appended);
    for _ in 0..100 {
        q.append(1, payload(appended))
            .await
            .expect("drop_oldest must make room");
        appended += 1;
    }
    let (delivered, failed) = held.split_at(held.len() / 2);
    q.ack(&delivered.iter().map(|e| e.id).collect::<Vec<_>>());
    q.release(&failed.iter().map(|e| e.id).collect::<Vec<_>>());
    let rest = drain(&q).await;
    let c = q.counters();
    let queued_ids: std::collections::HashSet<u64> = rest.iter().map(|e| e.id).collect();
    // Released entries that were not dropped came back.
    let came_back = failed.iter().filter(|e| queued_ids.contains(&e.id)).count() as u64;
    assert_eq!(
        delivered.len() as u64 + c.dropped_items + rest.len() as u64,
        appended,
        "delivered + dropped + queued must equal appended ({c:?}, {came_back} came back)"
    );
    assert!(c.dropped_items > 0);
    q.shutdown();
}
