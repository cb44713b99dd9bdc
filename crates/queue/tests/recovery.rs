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

/// The frames of a segment file as (first byte, end) offsets, in order.
fn frames(segment: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 16;
    while pos + 32 <= segment.len() {
        let len = u32::from_le_bytes(segment[pos + 4..pos + 8].try_into().expect("4 bytes"));
        let end = pos + 32 + len as usize;
        out.push((pos, end));
        pos = end;
    }
    assert_eq!(
        pos,
        segment.len(),
        "a clean segment ends with a whole frame"
    );
    out
}

/// The first record id of a segment, from its file name.
fn first_id(path: &std::path::Path) -> u64 {
    path.file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("segment name")
}

/// Scenario: the last write was torn: the newest segment is cut at offsets all through it.
/// Guarantees: open never fails or panics; exactly the records whose frames end before the
/// cut are delivered, in order and intact; the cut-off bytes are reported as truncated.
#[tokio::test]
async fn torn_tail_is_cut_and_everything_before_it_is_delivered() {
    let src = tempfile::tempdir().expect("tempdir");
    fill(src.path(), 120).await;
    let segs = segment_files(src.path());
    let last = segs.last().expect("segments").clone();
    let full = std::fs::read(&last).expect("read");
    let last_frames = frames(&full);
    // Ids are the record numbers: the fresh queue started at 0.
    let before_last = first_id(&last);
    assert_eq!(before_last + last_frames.len() as u64, 120);
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
        let whole = last_frames.iter().filter(|(_, end)| *end <= cut).count();
        let kept_to = last_frames[..whole].last().map_or(16, |f| f.1);
        let want: Vec<_> = (0..before_last + whole as u64).map(payload).collect();
        let (q, report) = Queue::open(opts(dir.path())).expect("open must survive a torn tail");
        let got: Vec<_> = drain(&q).await.into_iter().map(|e| e.payload).collect();
        assert_eq!(got, want, "cut at {cut}");
        assert_eq!(report.entries, want.len() as u64, "cut at {cut}");
        assert_eq!(
            report.truncated_bytes,
            (cut - kept_to) as u64,
            "cut at {cut}"
        );
        assert_eq!(report.skipped_bytes, 0, "cut at {cut}");
        q.shutdown();
    }
}

/// Scenario: random bytes in the middle of segments (all but the newest) are flipped.
/// Guarantees: exactly the records whose frames hold a flipped byte are skipped (and the damage
/// reported); every other record is delivered, intact and in order.
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
    let mut damaged = std::collections::BTreeSet::new();
    for s in &segs[..segs.len() - 1] {
        let mut b = std::fs::read(s).expect("read");
        let frames = frames(&b);
        for _ in 0..3 {
            let i = 16 + (next() as usize % (b.len() - 16));
            b[i] ^= 0xFF;
            let k = frames
                .iter()
                .position(|&(start, end)| start <= i && i < end);
            damaged.insert(first_id(s) + k.expect("a byte inside a frame") as u64);
        }
        std::fs::write(s, b).expect("write");
    }
    let (q, report) = Queue::open(opts(dir.path())).expect("open must survive damage");
    assert!(report.found_damage(), "{report:?}");
    let got: Vec<_> = drain(&q).await.into_iter().map(|e| e.payload).collect();
    let want: Vec<_> = (0..200)
        .filter(|n| !damaged.contains(n))
        .map(payload)
        .collect();
    assert!(!damaged.is_empty());
    assert_eq!(got, want, "damaged records: {damaged:?}");
    assert_eq!(report.entries, want.len() as u64);
    q.shutdown();
}

/// Scenario: a file named like a segment, between two real ones, is not a segment at all
/// (wrong header).
/// Guarantees: it is set aside as `.bad` and reported; every record of the real segments is
/// delivered, intact and in order.
#[tokio::test]
async fn a_foreign_segment_file_is_set_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    fill(dir.path(), 100).await;
    assert!(segment_files(dir.path()).len() >= 2);
    let foreign = dir.path().join("00000000000000000001.seg");
    std::fs::write(&foreign, b"garbage, not a segment").expect("write");
    let (q, report) = Queue::open(opts(dir.path())).expect("open");
    assert_eq!(report.bad_segments, 1);
    assert!(dir.path().join("00000000000000000001.seg.bad").exists());
    assert!(!foreign.exists());
    let got: Vec<_> = drain(&q).await.into_iter().map(|e| e.payload).collect();
    assert_eq!(got, (0..100).map(payload).collect::<Vec<_>>());
    q.shutdown();
}

/// Scenario: the ack ledger is damaged.
/// Guarantees: treated as "nothing acknowledged": every record, the acknowledged one too, is
/// delivered again, intact and in order; none is lost.
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
    let got: Vec<_> = drain(&q).await.into_iter().map(|e| e.payload).collect();
    assert_eq!(got, (0..20).map(payload).collect::<Vec<_>>());
    q.shutdown();
}
