//! A drained active segment is deleted only once it holds enough bytes to be worth it: at low
//! load the consumers drain the queue at every batch, and deleting the segment each time cost a
//! new file, its syncs and a folder sync several times a second.

mod common;

use common::*;
use otelspool_queue::{Queue, QueueOptions};

fn one_mib_segments(dir: &std::path::Path) -> QueueOptions {
    let mut o = QueueOptions::new("test", Some(dir.to_path_buf()));
    o.segment_bytes = 1 << 20;
    o
}

/// Appends `n` entries, reads and acknowledges them all.
async fn append_and_drain(q: &Queue, from: u64, n: u64) {
    for i in from..from + n {
        q.append(1, payload(i)).await.expect("append");
    }
    let got = drain(q).await;
    assert_eq!(got.len() as u64, n);
    q.ack(&got.iter().map(|e| e.id).collect::<Vec<_>>());
}

/// Scenario: 1 MiB segments; ten small entries are appended, delivered and acknowledged, then
/// ten more, three times over.
/// Guarantees: the drained active segment (a few hundred bytes) stays the one appended to:
/// still one segment file, named by the first id ever written, and nothing is handed out
/// twice.
#[tokio::test]
async fn a_small_drained_active_segment_keeps_taking_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, _) = Queue::open(one_mib_segments(dir.path())).expect("open");
    for round in 0..3 {
        append_and_drain(&q, round * 10, 10).await;
    }
    q.append(1, payload(30)).await.expect("append");
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        files[0].file_name().and_then(|n| n.to_str()),
        Some("00000000000000000000.seg")
    );
    let got = drain(&q).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, payload(30));
    q.shutdown();
}

/// Scenario: 1 MiB segments; entries totalling more than a quarter of a segment are appended,
/// delivered and acknowledged, then one more entry is appended.
/// Guarantees: the drained segment is deleted and the new entry starts a new segment, so disk
/// use follows the backlog within a quarter of a segment.
#[tokio::test]
async fn a_drained_active_segment_past_a_quarter_of_its_size_is_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, _) = Queue::open(one_mib_segments(dir.path())).expect("open");
    let big = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
    for _ in 0..5 {
        q.append(1, big.clone()).await.expect("append");
    }
    let got = drain(&q).await;
    q.ack(&got.iter().map(|e| e.id).collect::<Vec<_>>());
    q.append(1, payload(5)).await.expect("append");
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        files[0].file_name().and_then(|n| n.to_str()),
        Some("00000000000000000005.seg")
    );
    assert!(q.stats().disk_bytes < 4096, "{:?}", q.stats());
    q.shutdown();
}
