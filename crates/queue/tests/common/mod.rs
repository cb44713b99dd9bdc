//! Helpers shared by the queue's integration tests.
#![allow(dead_code)]

pub mod faultfs;
pub mod rig;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use otelspool_queue::{BatchLimits, Entry, Queue, QueueOptions};

/// Options for a small disk queue in `dir`.
pub fn opts(dir: &Path) -> QueueOptions {
    let mut o = QueueOptions::new("test", Some(dir.to_path_buf()));
    o.segment_bytes = 4096;
    o.cache_bytes = 0; // force reads from disk so the read path is exercised
    o
}

/// Takes whatever is unread right now (no lingering).
pub fn now_limits() -> BatchLimits {
    BatchLimits {
        min_items: 1,
        linger: Duration::ZERO,
        max_items: 0,
        max_bytes: u64::MAX,
    }
}

/// Reads every entry currently unread (acking none): until the queue's stats show none left
/// unread, each batch within 10 s (a hang fails the test instead of cutting the result short).
pub async fn drain(q: &Queue) -> Vec<Entry> {
    let mut out = Vec::new();
    loop {
        let s = q.stats();
        if s.entries == s.in_flight {
            return out;
        }
        match tokio::time::timeout(Duration::from_secs(10), q.next_batch(now_limits())).await {
            Ok(Some(b)) => out.extend(b),
            Ok(None) => return out,
            Err(_) => panic!(
                "no batch although {} entries are unread",
                s.entries - s.in_flight
            ),
        }
    }
}

/// A payload that names its own sequence number.
pub fn payload(n: u64) -> Bytes {
    Bytes::from(format!("record-{n:08}-{}", "x".repeat((n % 97) as usize)))
}

/// Total bytes of the files in `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Total bytes of the segment files in `dir`: what the queue's `disk_bytes` must count.
pub fn segment_bytes(dir: &Path) -> u64 {
    segment_files(dir)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Polls `cond` every 10 ms until it holds or `within` has passed; returns whether it held.
pub async fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Segment files in `dir`.
pub fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|x| x == "seg"));
    v.sort();
    v
}

/// Copies the queue folder as it is right now: what a `kill -9` would leave.
pub fn crash_copy(dir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("tempdir");
    for f in std::fs::read_dir(dir).expect("read_dir") {
        let f = f.expect("entry").path();
        match std::fs::copy(&f, copy.path().join(f.file_name().expect("name"))) {
            Ok(_) => {}
            // A drained segment deleted meanwhile: as if the copy came after.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("copy {}: {e}", f.display()),
        }
    }
    copy
}
