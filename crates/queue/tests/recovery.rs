//! Recovery from damaged queue files: torn tails, flipped bytes, foreign files.

mod common;

use common::*;
use otelspool_queue::Queue;

async fn fill(dir: &std::path::Path, n: u64) {
    let (q, _) = Queue::open(opts(dir)).expect("open");
    for i in 0..n {
        q.append(1, payload(i)).await.expect("append");
    }
    q.shutdown();
}

/// Scenario: the last write was torn: the newest segment is cut at every possible offset.
/// Guarantees: open never fails or panics, the damage is reported, and every record before
/// the cut is delivered.
#[tokio::test]
async fn torn_tail_is_cut_and_everything_before_it_is_delivered() {
    let src = tempfile::tempdir().expect("tempdir");
    fill(src.path(), 120).await;
    let segs = segment_files(src.path());
    let last = segs.last().expect("segments").clone();
    let full = std::fs::read(&last).expect("read");
    let earlier: usize = {
        let (q, r) = Queue::open(opts(src.path())).expect("open");
        let n = r.entries as usize;
        q.shutdown();
        n
    };
    for cut in (17..full.len()).step_by(37) {
        let dir = tempfile::tempdir().expect("tempdir");
        for s in &segs {
            std::fs::copy(s, dir.path().join(s.file_name().expect("name"))).expect("copy");
        }
        std::fs::write(
            dir.path().join(last.file_name().expect("name")),
            &full[..cut],
        )
        .expect("cut");
        let (q, report) = Queue::open(opts(dir.path())).expect("open must survive a torn tail");
        let got = drain(&q).await;
        // Records are whole or absent, never garbled, and in order.
        for (i, e) in got.iter().enumerate() {
            assert_eq!(e.payload, payload(i as u64), "cut at {cut}");
        }
        assert!(got.len() <= earlier);
        assert_eq!(report.entries as usize, got.len());
        q.shutdown();
    }
}

/// Scenario: random bytes in the middle of segments are flipped.
/// Guarantees: damaged records are skipped and reported; all others are delivered in order.
#[tokio::test]
async fn flipped_bytes_skip_only_the_damaged_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    fill(dir.path(), 200).await;
    let mut rng = 0x2545F4914F6CDD1Du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let segs = segment_files(dir.path());
    for s in &segs[..segs.len() - 1] {
        let mut b = std::fs::read(s).expect("read");
        for _ in 0..3 {
            let i = 16 + (next() as usize % (b.len() - 16));
            b[i] ^= 0xFF;
        }
        std::fs::write(s, b).expect("write");
    }
    let (q, report) = Queue::open(opts(dir.path())).expect("open must survive damage");
    assert!(report.found_damage(), "{report:?}");
    let got = drain(&q).await;
    assert!(
        got.len() >= 200 - 3 * (segs.len() - 1) * 2,
        "only {} delivered",
        got.len()
    );
    assert!(got.len() < 200);
    let mut last = None;
    for e in &got {
        let n: u64 = std::str::from_utf8(&e.payload[7..15])
            .expect("utf8")
            .parse()
            .expect("num");
        assert_eq!(e.payload, payload(n), "garbled payload delivered");
        assert!(last < Some(n), "out of order");
        last = Some(n);
    }
    q.shutdown();
}

/// Scenario: a file in the queue folder is not a segment at all (wrong header).
/// Guarantees: it is set aside as `.bad`, reported, and the other segments are delivered.
#[tokio::test]
async fn a_foreign_segment_file_is_set_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    fill(dir.path(), 50).await;
    std::fs::write(
        dir.path().join("00000000000000000000.seg"),
        b"garbage, not a segment",
    )
    .expect("write");
    let (q, report) = Queue::open(opts(dir.path())).expect("open");
    assert_eq!(report.bad_segments, 1);
    assert!(dir.path().join("00000000000000000000.seg.bad").exists());
    q.shutdown();
}

/// Scenario: the ack ledger is damaged.
/// Guarantees: treated as "nothing acknowledged": records are delivered again, not lost.
#[tokio::test]
async fn a_damaged_ledger_means_redelivery_not_loss() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (q, _) = Queue::open(opts(dir.path())).expect("open");
        for i in 0..20 {
            q.append(1, payload(i)).await.expect("append");
        }
        let got = drain(&q).await;
        q.ack(&[got[0].id]);
        q.shutdown();
    }
    std::fs::write(dir.path().join("ledger"), b"junk").expect("write");
    let (q, _) = Queue::open(opts(dir.path())).expect("open");
    assert_eq!(drain(&q).await.len(), 20);
    q.shutdown();
}
