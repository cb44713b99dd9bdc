//! Queue folders written by earlier builds, committed under `tests/fixtures/<version>/`, that
//! every later build must open and deliver exactly (fjall and vector keep such fixtures). A
//! format change must keep these tests passing unchanged, and add fixtures of its own.
//!
//! `v1/basic`: format version 1 (segments `OSPQSEG1`, ledger `OSPQLED2`) as written by the
//! queue itself: 120 records, ids 0..=119, `items` = `n % 5 + 1`, payload [`fixture_payload`];
//! records 0..=49, 60 and 61 acknowledged (so the first segment was deleted and the ledger's
//! watermark is 50), then the process stopped and the last frame was torn (10 bytes cut).
//!
//! `v1/ledger-v1`: the same kind of folder with 60 records whose ledger is the old version 1
//! (`OSPQLED1`, 20 bytes: watermark 20 only), which the code still reads.
//!
//! The generator is the ignored test [`generate_v1_fixtures`]; it documents how they were
//! made. Never run it to "refresh" them: a fixture is frozen the day it is committed.

mod common;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use common::{drain, opts, segment_files};
use otelspool_queue::Queue;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/v1")
        .join(name)
}

/// Record `n`'s payload: its number and a pattern whose length varies with `n`.
fn fixture_payload(n: u64) -> Bytes {
    let mut p = format!("fixture-{n:04}:").into_bytes();
    p.extend((0..(n * 7) % 150).map(|i| b'a' + (i % 26) as u8));
    Bytes::from(p)
}

fn items(n: u64) -> u32 {
    (n % 5 + 1) as u32
}

/// Copies a fixture into a fresh folder, so opening it (which cuts torn tails) changes only
/// the copy.
fn copy_of(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(fixture(name)).expect("fixture exists") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
    }
    dir
}

/// Opens a copy of fixture `name` and checks it delivers exactly `want` (ids, item counts and
/// payloads, in order) and then hands out ids from `next_id` on.
async fn opens_and_delivers(
    name: &str,
    want: &[u64],
    next_id: u64,
) -> otelspool_queue::RecoveryReport {
    let dir = copy_of(name);
    let (q, report) = Queue::open(opts(dir.path())).expect("a frozen fixture opens");
    let got: Vec<(u64, u32, Bytes)> = drain(&q)
        .await
        .into_iter()
        .map(|e| (e.id, e.items, e.payload))
        .collect();
    let want: Vec<(u64, u32, Bytes)> = want
        .iter()
        .map(|&n| (n, items(n), fixture_payload(n)))
        .collect();
    assert_eq!(got, want, "{name}");
    let id = q
        .append(1, Bytes::from_static(b"new"))
        .await
        .expect("append");
    assert_eq!(id, next_id, "{name}: ids continue after the fixture's");
    q.shutdown();
    report
}

/// Scenario: the frozen v1 folder (acknowledged records, a deleted first segment, out-of-order
/// acks above the watermark, a torn last frame) is opened by this build.
/// Guarantees: exactly records 50..=118 come back (60 and 61, acknowledged above the watermark,
/// come back too: at-least-once), with their item counts and payload bytes, in order; the torn
/// frame's remains are cut and reported; new ids start after the last one ever handed out.
#[tokio::test]
async fn the_v1_fixture_opens_and_delivers_exactly() {
    let want: Vec<u64> = (50..=118).collect();
    let report = opens_and_delivers("basic", &want, 120).await;
    // What was left of record 119's frame (32-byte header + payload, less the 10 cut).
    let torn_left = 32 + fixture_payload(119).len() as u64 - 10;
    assert_eq!(report.truncated_bytes, torn_left, "{report:?}");
    assert_eq!(
        (report.skipped_bytes, report.bad_segments),
        (0, 0),
        "{report:?}"
    );
}

/// Scenario: the frozen folder with a version 1 ledger (watermark 20, no next id) is opened.
/// Guarantees: exactly records 20..=59 come back, intact and in order; new ids follow the
/// highest id on disk.
#[tokio::test]
async fn the_v1_fixture_with_a_version_1_ledger_opens_and_delivers_exactly() {
    let want: Vec<u64> = (20..=59).collect();
    let report = opens_and_delivers("ledger-v1", &want, 60).await;
    assert!(!report.found_damage(), "{report:?}");
}

/// Appends `n` fixture records to a fresh queue in `dir`, acknowledges `acked`, shuts down.
async fn write_fixture(dir: &Path, n: u64, acked: impl Fn(u64) -> bool) {
    if dir.exists() {
        std::fs::remove_dir_all(dir).expect("clear the fixture folder");
    }
    let (q, _) = Queue::open(opts(dir)).expect("open");
    for i in 0..n {
        let id = q
            .append(items(i), fixture_payload(i))
            .await
            .expect("append");
        assert_eq!(id, i);
    }
    let ids: Vec<u64> = drain(&q).await.iter().map(|e| e.id).collect();
    q.ack(&ids.into_iter().filter(|&i| acked(i)).collect::<Vec<_>>());
    q.shutdown();
    std::fs::remove_file(dir.join("lock")).expect("drop the lock file");
}

/// How the v1 fixtures were made (see the module doc). Ignored: run it only to create the
/// fixtures of a new version, after pointing it at that version's folder.
/// Scenario: (generator) fresh queues get the fixture records, acks, a torn frame, a v1 ledger.
/// Guarantees: the records get ids 0..n in order, as the fixture tests expect.
#[tokio::test]
#[ignore = "writes the committed fixtures; they are frozen"]
async fn generate_v1_fixtures() {
    let basic = fixture("basic");
    write_fixture(&basic, 120, |i| i < 50 || i == 60 || i == 61).await;
    let last = segment_files(&basic).pop().expect("a segment");
    let len = std::fs::metadata(&last).expect("metadata").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .expect("open");
    file.set_len(len - 10).expect("tear the last frame");

    let old = fixture("ledger-v1");
    write_fixture(&old, 60, |i| i < 20).await;
    let mut ledger = b"OSPQLED1".to_vec();
    ledger.extend_from_slice(&20u64.to_le_bytes());
    let crc = crc32fast::hash(&ledger);
    ledger.extend_from_slice(&crc.to_le_bytes());
    std::fs::write(old.join("ledger"), ledger).expect("write the version 1 ledger");
}
