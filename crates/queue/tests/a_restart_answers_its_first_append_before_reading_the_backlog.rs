//! After `Queue::open_background`, the first segment read of the backlog waits for the first
//! append to be answered (for a short grace at most), so that a restart's first
//! acknowledgement does not queue its fsync behind a cold multi-megabyte read.

mod common;

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use otelspool_queue::{Queue, QueueIo};

/// The real filesystem, recording segment reads and file syncs in order.
#[derive(Debug, Default)]
struct OrderIo {
    events: Mutex<Vec<&'static str>>,
}

impl QueueIo for OrderIo {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        if path.extension().is_some_and(|x| x == "seg") {
            self.events.lock().expect("events").push("backlog read");
        }
        std::fs::read(path)
    }

    fn sync(&self, file: &std::fs::File) -> std::io::Result<()> {
        self.events.lock().expect("events").push("sync");
        file.sync_data()
    }
}

/// Scenario: a folder holds 100 records; it is opened with `open_background` and, 20 ms
/// later (as a client that was refused during the restart comes back), one record is appended.
/// Guarantees: the append's syncs come before any read of the backlog, and the backlog is
/// read and handed out afterwards (nothing waits on the grace once the append is answered).
#[tokio::test]
async fn the_first_append_is_synced_before_the_backlog_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (q, _) = Queue::open(opts(dir.path())).expect("open");
        for i in 0..100 {
            q.append(1, payload(i)).await.expect("append");
        }
        q.shutdown();
    }
    let io = std::sync::Arc::new(OrderIo::default());
    let mut o = opts(dir.path());
    o.io = io.clone();
    let q = Queue::open_background(o).expect("open");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let id = q.append(1, payload(100)).await.expect("append");
    assert!(id >= 100, "an id above every id on disk: {id}");
    q.recovered().await;
    let events = io.events.lock().expect("events").clone();
    let first_read = events
        .iter()
        .position(|e| *e == "backlog read")
        .expect("the backlog was read");
    let last_sync_before = events[..first_read]
        .iter()
        .filter(|e| **e == "sync")
        .count();
    assert!(
        last_sync_before >= 1,
        "the backlog was read before the append was synced: {events:?}"
    );
    let batch = q.next_batch(now_limits()).await.expect("read");
    assert_eq!(batch.first().map(|e| e.id), Some(0), "backlog first");
    q.shutdown();
}
