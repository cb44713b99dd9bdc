//! Fuzzes the queue's start-up recovery with an arbitrary segment file.
//!
//! Input: a flags byte, then the file body. Flag bit 0 prepends a valid segment header
//! (`OSPQSEG1`, version 1, reserved 0) so the fuzzer spends its time on record frames; bits
//! 2..8 pick an ack-ledger watermark (0..63) written next to the segment when bit 1 is set.
//!
//! Invariants: `Queue::open` never fails, panics or hangs on any segment; every recovered entry
//! is delivered exactly once, in rising id order; a new append gets an id above every recovered
//! one; and after everything is acknowledged and the queue shut down cleanly, reopening it
//! finds nothing to resend.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use otelspool_queue::{BatchLimits, Queue, QueueOptions};
use tokio::runtime::Runtime;

const SEGMENT_NAME: &str = "00000000000000000000.seg";

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

fn options(dir: &std::path::Path) -> QueueOptions {
    let mut o = QueueOptions::new("fuzz", Some(dir.to_path_buf()));
    o.fsync = false;
    o.cache_bytes = 0;
    o.segment_bytes = 512;
    o
}

fn ledger(watermark: u64) -> Vec<u8> {
    let mut out = b"OSPQLED1".to_vec();
    out.extend_from_slice(&watermark.to_le_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads and acknowledges everything the queue holds; returns the ids in delivery order.
async fn drain(q: &Queue) -> Vec<u64> {
    let limits = BatchLimits {
        min_items: 0,
        linger: Duration::ZERO,
        max_items: 0,
        max_bytes: u64::MAX,
    };
    let mut ids = Vec::new();
    while q.stats().entries > 0 {
        let batch = tokio::time::timeout(Duration::from_secs(10), q.next_batch(limits))
            .await
            .expect("next_batch hangs while the queue reports unread entries")
            .expect("queue closed while draining");
        let batch_ids: Vec<u64> = batch.iter().map(|e| e.id).collect();
        q.ack(&batch_ids);
        ids.extend(batch_ids);
    }
    ids
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    // On tmpfs when there is one: a disk-backed /tmp makes the renames and unlinks of every
    // open dominate, several times slower.
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("tempdir");
    let mut segment = Vec::with_capacity(16 + body.len());
    if flags & 1 == 1 {
        segment.extend_from_slice(b"OSPQSEG1");
        segment.extend_from_slice(&1u32.to_le_bytes());
        segment.extend_from_slice(&[0; 4]);
    }
    segment.extend_from_slice(body);
    std::fs::write(dir.path().join(SEGMENT_NAME), &segment).expect("write segment");
    if flags & 2 == 2 {
        std::fs::write(dir.path().join("ledger"), ledger(u64::from(flags >> 2))).expect("ledger");
    }

    let (q, report) = Queue::open(options(dir.path())).expect("open must survive any segment");
    runtime().block_on(async {
        let ids = drain(&q).await;
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "ids out of order: {ids:?}"
        );
        let corrupt = q.counters().corrupt_entries;
        assert_eq!(
            ids.len() as u64 + corrupt,
            report.entries,
            "recovered {} entries, delivered {ids:?}, {corrupt} unreadable",
            report.entries
        );
        let id = q
            .append(1, Bytes::from_static(b"after recovery"))
            .await
            .expect("append after recovery");
        assert!(
            ids.iter().all(|&old| old < id),
            "id {id} reused after {ids:?}"
        );
        assert_eq!(drain(&q).await, vec![id]);
    });
    q.shutdown();
    drop(q);

    let (q, report) = Queue::open(options(dir.path())).expect("reopen");
    assert_eq!(
        report.entries, 0,
        "acknowledged data came back after a clean shutdown"
    );
    q.shutdown();
});
