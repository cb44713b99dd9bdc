//! A filesystem call off the append path fails: the ack ledger's write, sync, rename or folder
//! sync, a drained segment's unlink, a record's read, and the calls `open` makes. Nothing
//! acknowledged is lost, ids are never reused (even after a power cut), `disk_bytes` stays
//! true, and the queue catches up by itself once the fault clears.

mod common;

use std::sync::Arc;

use common::faultfs::{Fault, FaultFs, Op, Target};
use common::rig::{Rig, SOON, drain_all, fault_opts};
use common::{opts, payload, segment_files, wait_until};
use otelspool_queue::{OpenError, Queue};

/// Appends and consumes three segments' worth while `fault` keeps failing, then clears it.
/// Checks that drained segments stay (and stay counted) while the ledger cannot record the
/// ids they held, survive a power cut without id reuse, and go once the fault clears.
async fn drained_segments_wait_for_the_ledger(mut rig: Rig) {
    rig.append(100).await;
    rig.consume_all().await;
    // A round trip through the I/O thread: the deletes sent by the acks were handled.
    rig.append(1).await;
    assert!(rig.fs.failures() >= 1, "the fault never fired");
    assert!(
        segment_files(rig.path()).len() >= 3,
        "drained segments were deleted although the ledger could not record their ids: {:?}",
        segment_files(rig.path())
    );
    rig.check_accounting().await;
    rig.check_power_cut().await;
    rig.fs.clear();
    let dir = rig.path().to_path_buf();
    assert!(
        wait_until(SOON, || segment_files(&dir).len() <= 1).await,
        "drained segments not deleted after the fault cleared: {:?}",
        segment_files(&dir)
    );
    rig.append(5).await;
    rig.check_live().await;
    rig.check_accounting().await;
    rig.check_power_cut().await;
    rig.check_clean_reopen().await;
}

/// Scenario: writing the ledger in place fails for a while (EIO) as segments drain.
/// Guarantees: see `drained_segments_wait_for_the_ledger`.
#[tokio::test]
async fn a_failing_ledger_write_defers_segment_deletion() {
    let rig = Rig::new(&[]).await;
    rig.fs.arm(Fault::new(Op::WriteAt, Target::Ledger).always());
    drained_segments_wait_for_the_ledger(rig).await;
}

/// Scenario: syncing the ledger fails for a while.
/// Guarantees: see `drained_segments_wait_for_the_ledger`.
#[tokio::test]
async fn a_failing_ledger_sync_defers_segment_deletion() {
    let rig = Rig::new(&[]).await;
    rig.fs.arm(Fault::new(Op::Sync, Target::Ledger).always());
    drained_segments_wait_for_the_ledger(rig).await;
}

/// Scenario: the disk is full and even the ledger's write in place fails (ENOSPC, as on a
/// copy-on-write filesystem) while every record is consumed.
/// Guarantees: drained segments are deleted anyway, so the space comes back and the queue can
/// drain a full disk; nothing acknowledged is lost.
#[tokio::test]
async fn a_full_disk_that_refuses_the_ledger_still_gets_its_space_back() {
    let mut rig = Rig::new(&[]).await;
    rig.fs
        .arm(Fault::new(Op::WriteAt, Target::Ledger).enospc().always());
    rig.append(100).await;
    rig.consume_all().await;
    let dir = rig.path().to_path_buf();
    assert!(
        wait_until(SOON, || segment_files(&dir).len() <= 1).await,
        "drained segments kept on a full disk: {:?}",
        segment_files(&dir)
    );
    assert!(rig.fs.failures() >= 1, "the fault never fired");
    rig.check_accounting().await;
    rig.append(3).await;
    rig.check_live().await;
    rig.fs.clear();
    rig.check_clean_reopen().await;
}

/// Scenario: renaming `ledger.tmp` over `ledger` fails from the start, so no ledger exists.
/// Guarantees: see `drained_segments_wait_for_the_ledger`.
#[tokio::test]
async fn a_failing_ledger_rename_defers_segment_deletion() {
    let rig = Rig::new(&[Fault::new(Op::Rename, Target::LedgerTmp).always()]).await;
    drained_segments_wait_for_the_ledger(rig).await;
}

/// Scenario: records are appended (one segment, created before the first ledger write),
/// twenty are consumed and acknowledged, and the power is cut once a ledger showing them is
/// durable.
/// Guarantees: the ledger created by a rename survives the power cut (the folder is synced
/// after the rename): the twenty are not delivered again, the others all are.
#[tokio::test]
async fn the_ledger_survives_a_power_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fs = Arc::new(FaultFs::new(dir.path()));
    let mut o = fault_opts(dir.path(), &fs);
    o.segment_bytes = 1 << 20; // one segment: no later segment create syncs the folder
    let (q, _) = Queue::open(o).expect("open");
    for n in 0..50 {
        q.append(1, payload(n)).await.expect("append");
    }
    let got = drain_all(&q).await;
    q.ack(&got[..20].iter().map(|e| e.id).collect::<Vec<_>>());
    // Durable: what a power cut would keep, not only what the page cache shows.
    let shows_20 = || {
        fs.durable("ledger")
            .is_some_and(|b| b.len() == 28 && b[8..16] == 20u64.to_le_bytes())
    };
    assert!(
        wait_until(SOON, shows_20).await,
        "the acks never reached a ledger that survives a power cut"
    );
    let image = tempfile::tempdir().expect("tempdir");
    fs.power_cut(image.path());
    let (q2, _) = Queue::open(opts(image.path())).expect("open after a power cut");
    let ids: Vec<u64> = drain_all(&q2).await.iter().map(|e| e.id).collect();
    assert_eq!(ids, (20..50).collect::<Vec<_>>());
    q2.shutdown();
    q.shutdown();
}

/// Scenario: the folder sync after the first ledger rename fails once.
/// Guarantees: the next ledger write renames again and syncs the folder (a write in place would
/// leave the name not known durable); a power cut then keeps the ledger.
#[tokio::test]
async fn a_failed_directory_sync_after_the_ledger_rename_renames_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fs = Arc::new(FaultFs::new(dir.path()));
    // Open syncs the folder and each of its parents first (their names must survive a power
    // cut); the fault is for the first folder sync after that, the one after the ledger rename.
    let syncs_at_open = dir.path().ancestors().count() as u32;
    fs.arm(Fault::new(Op::SyncDir, Target::Any).skip(syncs_at_open));
    let (q, _) = Queue::open(fault_opts(dir.path(), &fs)).expect("open");
    // What a power cut would keep, not only what was called.
    let f = fs.clone();
    assert!(
        wait_until(SOON, || f.durable("ledger").is_some()).await,
        "the ledger's name never became durable ({} renames, {} folder syncs)",
        fs.calls(Op::Rename),
        fs.calls(Op::SyncDir)
    );
    assert!(
        fs.calls(Op::Rename) >= 2,
        "the ledger was not renamed again"
    );
    assert_eq!(fs.failures(), 1);
    q.shutdown();
}

/// Scenario: unlinking drained segments fails for a while.
/// Guarantees: they stay counted in `disk_bytes` while they exist, and are deleted once the
/// fault clears (not only at the next start).
#[tokio::test]
async fn a_failed_unlink_is_retried() {
    let mut rig = Rig::new(&[]).await;
    rig.fs
        .arm(Fault::new(Op::RemoveFile, Target::Segment).always());
    drained_segments_wait_for_unlink(&mut rig).await;
    rig.check_clean_reopen().await;
}

async fn drained_segments_wait_for_unlink(rig: &mut Rig) {
    rig.append(100).await;
    rig.consume_all().await;
    rig.append(1).await;
    assert!(rig.fs.failures() >= 1, "the fault never fired");
    rig.check_accounting().await;
    rig.fs.clear();
    let dir = rig.path().to_path_buf();
    assert!(
        wait_until(SOON, || segment_files(&dir).len() <= 1).await,
        "drained segments not deleted after the fault cleared: {:?}",
        segment_files(&dir)
    );
    rig.check_accounting().await;
    rig.append(3).await;
    rig.check_live().await;
}

/// Scenario: reading a record back for a consumer fails once (EIO, cache off).
/// Guarantees: the record is not dropped: it is delivered by a later batch, and nothing is
/// counted as corrupt.
#[tokio::test]
async fn a_failed_read_delivers_the_record_later() {
    let mut rig = Rig::new(&[]).await;
    rig.fs.arm(Fault::new(Op::ReadAt, Target::Any));
    let got = drain_all(&rig.q).await;
    assert!(rig.fs.failures() >= 1, "the fault never fired");
    let got: Vec<_> = got.into_iter().map(|e| (e.id, e.payload)).collect();
    let mut sorted = got.clone();
    sorted.sort_by_key(|(id, _)| *id);
    assert_eq!(
        sorted,
        rig.expected(),
        "a record was dropped on a read error"
    );
    assert_eq!(rig.q.counters().corrupt_entries, 0);
    rig.q
        .release(&got.iter().map(|(id, _)| *id).collect::<Vec<_>>());
    rig.append(1).await;
    rig.check_live().await;
    rig.check_clean_reopen().await;
}

/// Fills a queue folder (some records, a torn tail, a foreign segment), then opens it with
/// `fault` armed, expecting `OpenError::Io`, then again without: everything is delivered.
async fn open_fails_then_succeeds(fault: Fault) {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (q, _) = Queue::open(opts(dir.path())).expect("open");
        for n in 0..60 {
            q.append(1, payload(n)).await.expect("append");
        }
        q.shutdown();
    }
    let last = segment_files(dir.path()).pop().expect("a segment");
    let mut bytes = std::fs::read(&last).expect("read");
    bytes.extend_from_slice(b"OSQR torn");
    std::fs::write(&last, bytes).expect("tear");
    std::fs::write(dir.path().join("09999999999999999999.seg"), b"foreign").expect("write");
    let fs = Arc::new(FaultFs::new(dir.path()));
    fs.arm(fault);
    match Queue::open(fault_opts(dir.path(), &fs)) {
        Err(OpenError::Io { .. }) => {}
        other => panic!("{fault:?}: expected OpenError::Io, got {other:?}"),
    }
    assert_eq!(fs.failures(), 1);
    let (q, _) = Queue::open(opts(dir.path())).expect("open once the fault cleared");
    let got: Vec<_> = drain_all(&q).await.into_iter().map(|e| e.payload).collect();
    assert_eq!(got, (0..60).map(payload).collect::<Vec<_>>());
    let id = q.append(1, payload(0)).await.expect("append");
    assert!(id >= 60, "id {id} reused");
    q.shutdown();
}

/// Scenario: each call `open` makes fails once: create the folder, open or lock the lock file,
/// list the folder, read the ledger (an I/O error, not a damaged one) or a segment, set a foreign segment aside, cut a torn tail
/// or sync the cut, open a segment's reader.
/// Guarantees: open fails with `OpenError::Io` (not `Locked`) and changes nothing that loses
/// data: the next open delivers every record and hands out new ids.
#[tokio::test]
async fn a_failed_call_during_open_fails_the_open_and_loses_nothing() {
    for fault in [
        Fault::new(Op::CreateDirAll, Target::Any),
        Fault::new(Op::OpenLock, Target::Any),
        Fault::new(Op::TryLock, Target::Any),
        Fault::new(Op::ListDir, Target::Any),
        Fault::new(Op::Read, Target::Ledger),
        Fault::new(Op::Read, Target::Segment),
        Fault::new(Op::Rename, Target::Segment),
        Fault::new(Op::OpenWrite, Target::Segment),
        Fault::new(Op::SetLen, Target::Segment),
        Fault::new(Op::Sync, Target::Segment),
        Fault::new(Op::OpenRead, Target::Segment),
    ] {
        open_fails_then_succeeds(fault).await;
    }
}
