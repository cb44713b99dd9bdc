//! Memory follows the index window, not the backlog: only the oldest segments with live
//! records hold per-record entries; every other segment is a summary, and the counts stay exact.

mod common;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use otelspool_queue::{BatchLimits, Queue, QueueOptions};

/// Options with the smallest window: the two oldest segments with live records.
fn windowed(dir: &Path) -> QueueOptions {
    let mut o = opts(dir);
    o.index_window_bytes = 1;
    o
}

/// Records (frames) in a segment file.
fn frames_in(path: &Path) -> u64 {
    let b = std::fs::read(path).expect("read");
    let (mut pos, mut n) = (16usize, 0);
    while pos + 32 <= b.len() {
        pos += 32 + u32::from_le_bytes(b[pos + 4..pos + 8].try_into().expect("4 bytes")) as usize;
        n += 1;
    }
    n
}

/// Small batches, so that a drain crosses many segments one window at a time.
fn small_batches() -> BatchLimits {
    BatchLimits {
        max_bytes: 300,
        ..now_limits()
    }
}

/// Scenario: 600 records over a dozen segments or more are reopened with the smallest index window;
/// a consumer then drains them batch by batch, acknowledging each, while 200 more records are
/// appended (the writer rolls new segments meanwhile).
/// Guarantees: after open only 2 segments (other than the one appended to) hold entries, as
/// many entries as those two segments' records, every other segment is summarized, and the
/// entry and item counts are exact; throughout the drain no more than 2 segments are indexed
/// between batches once the indexer has caught up with the writer (plus, while a batch is in
/// flight, the segments it emptied); all 800 records arrive once each, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_window_is_indexed_and_everything_arrives_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (q, _) = Queue::open(opts(dir.path())).expect("open");
        for i in 0..600u64 {
            q.append((i % 3 + 1) as u32, payload(i))
                .await
                .expect("append");
        }
        q.shutdown();
    }
    let files = segment_files(dir.path());
    assert!(files.len() > 10, "{} segments", files.len());
    let (q, report) = Queue::open(windowed(dir.path())).expect("reopen");
    assert_eq!(report.entries, 600);
    let s = q.index_stats();
    assert_eq!(s.indexed_segments, 2, "{s:?}");
    assert_eq!(s.summarized_segments, files.len() as u64 - 2, "{s:?}");
    assert_eq!(s.unscanned_segments, 0, "{s:?}");
    assert_eq!(
        s.indexed_entries,
        frames_in(&files[0]) + frames_in(&files[1])
    );
    let stats = q.stats();
    let items: u64 = (0..600u64).map(|i| i % 3 + 1).sum();
    assert_eq!((stats.entries, stats.items), (600, items));

    let mut got = Vec::new();
    let mut appended = 0u64;
    while got.len() < 800 {
        if appended < 200 && got.len() >= 100 {
            for i in 600..800u64 {
                q.append((i % 3 + 1) as u32, payload(i))
                    .await
                    .expect("append");
            }
            appended = 200;
            let settled = wait_until(Duration::from_secs(10), || {
                q.index_stats().indexed_segments <= 2
            })
            .await;
            assert!(
                settled,
                "rolled segments stay indexed: {:?}",
                q.index_stats()
            );
        }
        let batch = tokio::time::timeout(Duration::from_secs(10), q.next_batch(small_batches()))
            .await
            .expect("a batch within 10 s")
            .expect("queue open");
        // Segments the batch in flight emptied stay indexed too, outside the window.
        let s = q.index_stats();
        assert!(
            s.indexed_segments - s.in_flight_segments <= 2,
            "with a batch in flight: {s:?}"
        );
        q.ack(&batch.iter().map(|e| e.id).collect::<Vec<_>>());
        let s = q.index_stats();
        assert!(s.indexed_segments <= 2, "{s:?}");
        got.extend(batch.into_iter().map(|e| e.payload));
    }
    let want: Vec<Bytes> = (0..800).map(payload).collect();
    assert_eq!(got, want);
    let stats = q.stats();
    assert_eq!((stats.entries, stats.items), (0, 0));
    q.shutdown();
}

/// Scenario: with the smallest window, a consumer takes and acknowledges part of the backlog,
/// more records are appended, and the process dies (the folder is copied as it is); the copy
/// is reopened the same way, three times over.
/// Guarantees: each reopen delivers exactly the records not yet acknowledged (at-least-once:
/// acknowledgements the ledger had not recorded come back too), in order, with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_with_a_small_window_lose_and_reorder_nothing() {
    let mut dir = tempfile::tempdir().expect("tempdir");
    let mut next = 0u64;
    let mut acked_below = 0u64;
    for round in 0..3 {
        let q = Queue::open_background(windowed(dir.path())).expect("open");
        for _ in 0..150 {
            q.append(1, payload(next)).await.expect("append");
            next += 1;
        }
        // Take and acknowledge about a third of what is queued, in order.
        let mut taken = Vec::new();
        while taken.len() < ((next - acked_below) / 3) as usize {
            let batch =
                tokio::time::timeout(Duration::from_secs(10), q.next_batch(small_batches()))
                    .await
                    .expect("a batch within 10 s")
                    .expect("queue open");
            taken.extend(batch);
        }
        let taken_payloads: Vec<Bytes> = taken.iter().map(|e| e.payload.clone()).collect();
        let oldest: Vec<Bytes> = (acked_below..acked_below + taken.len() as u64)
            .map(payload)
            .collect();
        assert_eq!(
            taken_payloads, oldest,
            "round {round}: not the oldest, in order"
        );
        q.ack(&taken.iter().map(|e| e.id).collect::<Vec<_>>());
        let copy = crash_copy(dir.path());
        q.shutdown();
        let (q2, _) = Queue::open(windowed(copy.path())).expect("reopen the crash copy");
        let got: Vec<Bytes> = drain(&q2).await.into_iter().map(|e| e.payload).collect();
        q2.shutdown();
        let redelivered = got.len() as u64;
        let from = next - redelivered;
        assert!(
            (acked_below..=acked_below + taken.len() as u64).contains(&from),
            "round {round}: redelivery starts at {from}"
        );
        let want: Vec<Bytes> = (from..next).map(payload).collect();
        assert_eq!(got, want, "round {round}");
        acked_below = from;
        dir = copy;
    }
}
