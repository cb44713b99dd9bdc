//! A filesystem call on the append path fails in the middle of a group commit (fsync, write,
//! create, directory sync, reader open, truncate): the group is refused with a retryable error,
//! nothing acknowledged before is lost (after a clean reopen or a power cut), ids are never
//! reused, `disk_bytes` stays true, and the queue serves again once the fault clears.

mod common;

use common::faultfs::{Fault, Op, Target};
use common::rig::Rig;
use common::segment_files;
use otelspool_queue::AppendError;

/// Records that fit in the active segment before a group rolls over to a new one.
const FILL: u64 = 25;
/// A group large enough to roll over from a segment holding `FILL + 8` records.
const ROLLING_GROUP: u64 = 40;

/// Runs `group` appends with `fault` armed and checks everything a fault test checks.
async fn refused_group_loses_nothing(mut rig: Rig, group: u64, fault: Fault) {
    let results = rig.group(group, fault).await;
    assert!(rig.fs.failures() >= 1, "the fault never fired");
    assert!(
        results.iter().all(|r| matches!(r, Err(AppendError::Io(_)))),
        "every append of the failed group gets a retryable error: {results:?}"
    );
    assert_eq!(rig.q.counters().refused_io, group);
    assert!(rig.q.stats().write_error.is_some());
    rig.check_accounting().await;
    // The fault has cleared: the queue serves again.
    rig.append(10).await;
    assert!(rig.q.stats().write_error.is_none());
    rig.check_live().await;
    rig.check_accounting().await;
    rig.check_power_cut().await;
    rig.check_clean_reopen().await;
}

/// Scenario: fsync of the active segment fails (EIO) once, and the kernel drops the unsynced
/// bytes of that file (fsyncgate: they read back as zeros); more appends follow.
/// Guarantees: the group is refused; the next group goes to a fresh segment that is synced
/// along with the folder before any acknowledgement; after a clean reopen and after a power
/// cut every acknowledged record is there and none of the refused group is.
#[tokio::test]
async fn a_failed_fsync_abandons_the_segment_and_loses_nothing_acknowledged() {
    let rig = Rig::new(&[]).await;
    rig.fs
        .drop_on_failed_sync
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let before = segment_files(rig.path()).len();
    let dir_syncs = rig.fs.calls(Op::SyncDir);
    let mut rig = rig;
    let results = rig.group(8, Fault::new(Op::Sync, Target::Segment)).await;
    assert!(results.iter().all(|r| matches!(r, Err(AppendError::Io(_)))));
    rig.append(10).await;
    assert_eq!(
        segment_files(rig.path()).len(),
        before + 1,
        "the next group must open a fresh segment"
    );
    assert!(
        rig.fs.calls(Op::SyncDir) > dir_syncs,
        "the new segment's folder entry was not synced"
    );
    rig.check_live().await;
    rig.check_accounting().await;
    rig.check_power_cut().await;
    rig.check_clean_reopen().await;
}

/// Scenario: a group rolls over to a new segment and the fsync of the segment it rolled away
/// from fails, the kernel dropping those pages.
/// Guarantees: the refused group's frames in both segments are cut; nothing acknowledged is
/// lost; no refused record appears after a reopen.
#[tokio::test]
async fn a_failed_fsync_of_the_segment_rolled_away_from_loses_nothing() {
    let mut rig = Rig::new(&[]).await;
    rig.fs
        .drop_on_failed_sync
        .store(true, std::sync::atomic::Ordering::SeqCst);
    rig.append(FILL).await;
    // Sync 1 of the group is the new segment's header; sync 2 the old segment's frames.
    let fault = Fault::new(Op::Sync, Target::Segment).skip(1);
    refused_group_loses_nothing(rig, ROLLING_GROUP, fault).await;
}

/// Scenario: the disk fills up in the middle of a group: the write takes 400 bytes (whole
/// frames and part of one) and then fails with ENOSPC.
/// Guarantees: the group is refused and its frames cut; the queue serves again afterwards.
#[tokio::test]
async fn a_full_disk_in_the_middle_of_a_group_refuses_it_whole() {
    let rig = Rig::new(&[]).await;
    let fault = Fault::new(Op::Write, Target::Segment).enospc().partial(400);
    refused_group_loses_nothing(rig, 20, fault).await;
}

/// Scenario: a group rolls over; its frames for the old segment are written, then the disk
/// fills up while writing the new segment's frames.
/// Guarantees: the frames already written to the old segment are cut too: no refused record
/// comes back after a reopen, and `disk_bytes` matches the files.
#[tokio::test]
async fn a_full_disk_after_a_group_rolled_over_cuts_both_segments() {
    let mut rig = Rig::new(&[]).await;
    rig.append(FILL).await;
    // Writes of the group: old segment's frames, new segment's header, new segment's frames.
    let fault = Fault::new(Op::Write, Target::Segment)
        .skip(2)
        .enospc()
        .partial(300);
    refused_group_loses_nothing(rig, ROLLING_GROUP, fault).await;
}

/// Scenario: creating the next segment fails (ENOSPC) as a group rolls over.
/// Guarantees: the group is refused, the old segment is cut back, nothing is lost.
#[tokio::test]
async fn a_failed_segment_create_refuses_the_group() {
    let mut rig = Rig::new(&[]).await;
    rig.append(FILL).await;
    let fault = Fault::new(Op::Create, Target::Segment).enospc();
    refused_group_loses_nothing(rig, ROLLING_GROUP, fault).await;
}

/// Scenario: the folder sync after creating the next segment fails.
/// Guarantees: the group is refused (its segment's name may not survive a power cut); the new
/// file is removed, so `disk_bytes` matches the files; nothing is lost.
#[tokio::test]
async fn a_failed_directory_sync_after_a_segment_create_refuses_the_group() {
    let mut rig = Rig::new(&[]).await;
    rig.append(FILL).await;
    refused_group_loses_nothing(rig, ROLLING_GROUP, Fault::new(Op::SyncDir, Target::Any)).await;
}

/// Scenario: opening the reader of a newly created segment fails.
/// Guarantees: the group is refused, the new file removed, nothing lost.
#[tokio::test]
async fn a_failed_reader_open_refuses_the_group() {
    let mut rig = Rig::new(&[]).await;
    rig.append(FILL).await;
    let fault = Fault::new(Op::OpenRead, Target::Segment);
    refused_group_loses_nothing(rig, ROLLING_GROUP, fault).await;
}

/// Scenario: a write fails partway (ENOSPC) and cutting the unsynced tail off then fails too.
/// Guarantees: `disk_bytes` counts the uncut tail while it is there; the cut is retried and
/// succeeds once the fault clears, so no refused record comes back after a reopen.
#[tokio::test]
async fn a_failed_truncate_after_a_failed_write_is_retried() {
    let rig = Rig::new(&[]).await;
    rig.fs.arm(Fault::new(Op::SetLen, Target::Segment));
    let fault = Fault::new(Op::Write, Target::Segment).enospc().partial(400);
    refused_group_loses_nothing(rig, 20, fault).await;
}
