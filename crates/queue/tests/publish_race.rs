//! The window between an append being admitted (its id assigned) and being published (synced
//! and visible): readers and acknowledgements in that window must not skip the entry.

mod common;

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::*;
use otelspool_queue::{Queue, QueueIo};

/// The watermark of the ledger file at `path` (every id below it is acknowledged), if it is a
/// whole version 2 ledger.
fn ledger_watermark(path: &std::path::Path) -> Option<u64> {
    let b = std::fs::read(path).ok()?;
    (b.len() == 28 && &b[..8] == b"OSPQLED2")
        .then(|| u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")))
}

/// Holds every fsync while `hold` is set.
#[derive(Debug, Default)]
struct HoldingIo {
    hold: AtomicBool,
    gate: Mutex<()>,
    released: Condvar,
    entered: AtomicBool,
}

impl QueueIo for HoldingIo {
    fn sync(&self, file: &File) -> std::io::Result<()> {
        let mut g = self.gate.lock().expect("gate");
        while self.hold.load(Ordering::SeqCst) {
            self.entered.store(true, Ordering::SeqCst);
            g = self.released.wait(g).expect("gate");
        }
        drop(g);
        file.sync_data()
    }
}

impl HoldingIo {
    fn release(&self) {
        let _g = self.gate.lock().expect("gate");
        self.hold.store(false, Ordering::SeqCst);
        self.released.notify_all();
    }
}

/// Scenario: while an append is being synced, a consumer polls an empty queue and another
/// entry's acknowledgement empties the index; then the sync completes; then the process dies.
/// Guarantees: the consumer still receives the entry, and after the crash the entry is
/// recovered (the ack ledger never claims it was delivered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_being_synced_is_neither_skipped_by_readers_nor_by_the_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let io = Arc::new(HoldingIo::default());
    let mut o = opts(dir.path());
    o.io = io.clone();
    o.cache_bytes = 1 << 20;
    let (q, _) = Queue::open(o).expect("open");
    q.append(1, payload(0)).await.expect("append a");
    let first = drain(&q).await;
    assert_eq!(first.len(), 1);

    io.hold.store(true, Ordering::SeqCst);
    let appender = {
        let q = q.clone();
        tokio::spawn(async move { q.append(1, payload(1)).await })
    };
    assert!(
        wait_until(Duration::from_secs(10), || io
            .entered
            .load(Ordering::SeqCst))
        .await,
        "the append never reached its sync"
    );
    // In the window: a reader finds nothing, and the last indexed entry is acknowledged.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), q.next_batch(now_limits()))
            .await
            .is_err()
    );
    q.ack(&[first[0].id]);
    io.release();
    appender.await.expect("join").expect("append b is durable");

    let got = tokio::time::timeout(Duration::from_secs(2), q.next_batch(now_limits()))
        .await
        .expect("the synced entry must reach a waiting reader")
        .expect("batch");
    assert_eq!(got[0].payload, payload(1));
    // The ledger written after the acknowledgement (watermark past the first entry): had it
    // counted the entry being synced as acknowledged, the recovery below would miss it.
    let ledger = dir.path().join("ledger");
    assert!(
        wait_until(Duration::from_secs(10), || ledger_watermark(&ledger)
            >= Some(1))
        .await,
        "the ledger never recorded the acknowledgement"
    );

    // Crash: copy the folder as it is and recover from the copy.
    let copy = tempfile::tempdir().expect("tempdir");
    for f in std::fs::read_dir(dir.path()).expect("read_dir") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, copy.path().join(f.file_name().expect("name"))).expect("copy");
    }
    let (q2, report) = Queue::open(opts(copy.path())).expect("reopen");
    let got: Vec<_> = drain(&q2).await.into_iter().map(|e| e.payload).collect();
    assert_eq!(
        got,
        vec![payload(1)],
        "unacknowledged entry lost after a crash ({report:?})"
    );
    q2.shutdown();
    q.shutdown();
}
