//! One process per queue folder: a second open waits up to `lock_timeout` for the first to let
//! go (otelcol's `file_storage.timeout`), then fails with one clear message.

mod common;

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::faultfs::{FaultFs, Op};
use common::rig::SOON;
use common::{opts, payload, wait_until};
use otelspool_queue::{OpenError, Queue};

/// Scenario: a queue folder is open; a second open with a 10 s lock timeout starts, tries the
/// lock and finds it held; then the first queue shuts down.
/// Guarantees: the second open waits instead of failing at once, takes the folder once it is
/// free, and delivers what the first appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_open_waits_for_the_first_to_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, _) = Queue::open(opts(dir.path())).expect("open");
    first.append(1, payload(1)).await.expect("append");
    let fs = Arc::new(FaultFs::new(dir.path()));
    let mut o = opts(dir.path());
    o.io = fs.clone();
    o.lock_timeout = Duration::from_secs(10);
    let second = tokio::task::spawn_blocking(move || Queue::open(o));
    // The second open has tried the lock at least twice: it found it held and is waiting.
    let tries = fs.clone();
    assert!(
        wait_until(SOON, || tries.calls(Op::TryLock) >= 2).await,
        "the second open did not retry the lock"
    );
    assert!(!second.is_finished(), "the second open gave up at once");
    first.shutdown();
    let (q, _) = second
        .await
        .expect("join")
        .expect("open once the first closed");
    let got = common::rig::drain_all(&q).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, payload(1));
    q.shutdown();
}

/// Scenario: a queue folder stays open while a second open waits with a 300 ms lock timeout.
/// Guarantees: the second open fails with `OpenError::Locked` after waiting at least the
/// timeout; its message names the folder once and says it waited, and it has no source that a
/// chain printer would repeat.
#[tokio::test]
async fn a_second_open_gives_up_after_the_timeout_with_one_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, _) = Queue::open(opts(dir.path())).expect("open");
    let mut o = opts(dir.path());
    o.lock_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = Queue::open(o).expect_err("the folder is in use");
    let waited_at_least = started.elapsed() >= Duration::from_millis(300);
    let OpenError::Locked { dir: named, waited } = &err else {
        panic!("expected OpenError::Locked, got {err:?}");
    };
    assert!(waited_at_least && *waited >= Duration::from_millis(300));
    assert_eq!(named, &dir.path().display().to_string());
    let msg = err.to_string();
    assert_eq!(msg.matches(named.as_str()).count(), 1, "{msg}");
    assert!(msg.contains("in use by another process"), "{msg}");
    assert!(msg.contains("waiting"), "{msg}");
    assert!(err.source().is_none());
    first.shutdown();
}

/// Scenario: the lock timeout is zero and the folder is in use.
/// Guarantees: the open is refused at once (no wait at all).
#[tokio::test]
async fn a_zero_lock_timeout_refuses_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, _) = Queue::open(opts(dir.path())).expect("open");
    let fs = Arc::new(FaultFs::new(dir.path()));
    let mut o = opts(dir.path());
    o.io = fs.clone();
    assert!(matches!(Queue::open(o), Err(OpenError::Locked { .. })));
    assert_eq!(fs.calls(Op::TryLock), 1);
    first.shutdown();
}

/// Renders an error as a chain printer (anyhow's `{:#}`) does: each cause after a colon.
fn chain(e: &dyn Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out = format!("{out}: {s}");
        source = s.source();
    }
    out
}

/// Scenario: the queue folder's path is an existing file, so the folder cannot be created.
/// Guarantees: `OpenError::Io` names the path, and printed with its causes it states the
/// operating system's error once.
#[tokio::test]
async fn an_open_error_prints_its_cause_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").expect("write");
    let err = Queue::open(opts(&file.join("queue"))).expect_err("a file is in the way");
    let OpenError::Io { source, .. } = &err else {
        panic!("expected OpenError::Io, got {err:?}");
    };
    let cause = source.to_string();
    let printed = chain(&err);
    assert_eq!(printed.matches(cause.as_str()).count(), 1, "{printed}");
    assert!(printed.contains("not-a-folder"), "{printed}");
}
