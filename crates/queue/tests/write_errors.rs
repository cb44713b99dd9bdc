//! Write and sync failures (a full disk, a failing device): refuse, keep what was stored,
//! resume by itself.

mod common;

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::*;
use otelspool_queue::{AppendError, Queue, QueueIo};

/// Fails writes (as ENOSPC) and/or syncs (as EIO) while the switches are on.
#[derive(Debug, Default)]
struct FaultyIo {
    fail_writes: AtomicBool,
    fail_syncs: AtomicBool,
    failures: AtomicU64,
}

impl QueueIo for FaultyIo {
    fn create(&self, path: &Path) -> std::io::Result<File> {
        if self.fail_writes.load(Ordering::SeqCst) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)
    }

    fn write(&self, file: &mut File, buf: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        if self.fail_writes.load(Ordering::SeqCst) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            // A real full disk may take part of the write first.
            let _ = file.write_all(&buf[..buf.len() / 2]);
            return Err(std::io::Error::from_raw_os_error(28));
        }
        file.write_all(buf)
    }

    fn sync(&self, file: &File) -> std::io::Result<()> {
        if self.fail_syncs.load(Ordering::SeqCst) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(std::io::Error::from_raw_os_error(5)); // EIO
        }
        file.sync_data()
    }
}

async fn scenario(fault: impl Fn(&FaultyIo, bool)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let io = Arc::new(FaultyIo::default());
    let mut o = opts(dir.path());
    o.io = io.clone();
    let (q, _) = Queue::open(o.clone()).expect("open");
    for n in 0..20 {
        q.append(1, payload(n))
            .await
            .expect("append before the fault");
    }
    fault(&io, true);
    for n in 100..110 {
        match q.append(1, payload(n)).await {
            Err(AppendError::Io(_)) => {}
            other => panic!("expected a retryable I/O refusal, got {other:?}"),
        }
    }
    assert!(io.failures.load(Ordering::SeqCst) > 0);
    assert!(
        q.stats().write_error.is_some(),
        "the failure must be visible in stats"
    );
    assert_eq!(q.counters().refused_io, 10);
    fault(&io, false);
    for n in 20..40 {
        q.append(1, payload(n))
            .await
            .expect("append after the disk recovered");
    }
    assert!(
        q.stats().write_error.is_none(),
        "recovery must clear the error"
    );
    let got: Vec<_> = drain(&q).await.into_iter().map(|e| e.payload).collect();
    assert_eq!(got, (0..40).map(payload).collect::<Vec<_>>());
    q.shutdown();
    // And after a restart, the refused appends are not there, the accepted ones all are.
    let (q, report) = Queue::open(opts(dir.path())).expect("reopen");
    let got: Vec<_> = drain(&q).await.into_iter().map(|e| e.payload).collect();
    let want: Vec<_> = (0..40).map(payload).collect();
    for p in &want {
        assert!(
            got.contains(p),
            "accepted record lost after restart ({report:?})"
        );
    }
    q.shutdown();
}

/// Scenario: the disk fills up (writes fail with ENOSPC, partly written), then space returns.
/// Guarantees: appends are refused with a retryable error while it lasts; the error shows in
/// stats; nothing accepted before is lost; appends succeed again by themselves afterwards.
#[tokio::test]
async fn a_full_disk_refuses_then_recovers_by_itself() {
    scenario(|io, on| io.fail_writes.store(on, Ordering::SeqCst)).await;
}

/// Scenario: fsync fails (EIO), then works again.
/// Guarantees: same as a full disk: refuse, report, resume, lose nothing accepted.
#[tokio::test]
async fn a_failing_fsync_refuses_then_recovers_by_itself() {
    scenario(|io, on| io.fail_syncs.store(on, Ordering::SeqCst)).await;
}
