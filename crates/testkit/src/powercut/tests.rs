//! The model's rules, one test each, without mounting: operate on a [`Disk`], cut, open the
//! backing directory again, and look at what survived (through a new `Disk`, as the mount
//! would, and in the backing directory itself).

use std::ffi::OsStr;
use std::fs;
use std::path::Path;

use super::PowercutError;
use super::disk::{Disk, Ino, Kind, ROOT};

const OWNER: (u32, u32) = (0, 0);

fn new_file(disk: &mut Disk, dir: Ino, name: &str) -> Ino {
    disk.create(dir, OsStr::new(name), Kind::File, 0o644, OWNER)
        .expect("create")
        .ino
}

fn new_dir(disk: &mut Disk, dir: Ino, name: &str) -> Ino {
    disk.create(dir, OsStr::new(name), Kind::Dir, 0o755, OWNER)
        .expect("mkdir")
        .ino
}

/// Cuts the power and starts again on what the backing directory holds.
fn cut_and_restart(disk: &mut Disk, backing: &Path) -> Disk {
    disk.cut();
    Disk::open(backing).expect("reopen")
}

/// The bytes at `path` (slash-separated from the root), or `None` if it does not exist.
fn contents(disk: &Disk, path: &str) -> Option<Vec<u8>> {
    let mut ino = ROOT;
    for part in path.split('/') {
        ino = disk.lookup(ino, OsStr::new(part)).ok()?.ino;
    }
    Some(disk.read(ino, 0, u32::MAX).ok()?.to_vec())
}

/// Scenario: a file is created, written and fsynced, but its directory is never synced;
/// the power is cut.
/// Guarantees: the file does not exist after the cut (its name was never durable), neither
/// through the model nor in the backing directory.
#[test]
fn a_synced_file_in_an_unsynced_directory_is_gone() {
    let backing = tempfile::tempdir().expect("tempdir");
    let mut disk = Disk::open(backing.path()).expect("open");
    let f = new_file(&mut disk, ROOT, "seg");
    disk.write(f, 0, b"acked").expect("write");
    disk.sync_file(f).expect("fsync");
    assert_eq!(
        contents(&disk, "seg").as_deref(),
        Some(&b"acked"[..]),
        "visible before the cut"
    );
    let disk = cut_and_restart(&mut disk, backing.path());
    assert_eq!(contents(&disk, "seg"), None);
    assert!(!backing.path().join("seg").exists());
}

/// Scenario: a file is created and written, its directory is synced, the file is not; cut.
/// Guarantees: the name survives with the file's last synced size: empty.
#[test]
fn a_synced_name_with_unsynced_bytes_is_an_empty_file() {
    let backing = tempfile::tempdir().expect("tempdir");
    let mut disk = Disk::open(backing.path()).expect("open");
    let f = new_file(&mut disk, ROOT, "seg");
    disk.write(f, 0, b"not synced").expect("write");
    disk.sync_dir(ROOT).expect("fsync dir");
    let disk = cut_and_restart(&mut disk, backing.path());
    assert_eq!(contents(&disk, "seg").as_deref(), Some(&b""[..]));
}

/// Scenario: a file and its directory are synced, then more is appended and written over
/// without a sync; cut.
/// Guarantees: exactly the synced bytes survive (the later writes and the growth are undone),
/// and the backing file holds the same bytes.
#[test]
fn only_synced_bytes_survive() {
    let backing = tempfile::tempdir().expect("tempdir");
    let mut disk = Disk::open(backing.path()).expect("open");
    let f = new_file(&mut disk, ROOT, "seg");
    disk.write(f, 0, b"one two ").expect("write");
    disk.sync_dir(ROOT).expect("fsync dir");
    disk.sync_file(f).expect("fsync");
    disk.write(f, 8, b"three").expect("append");
    disk.write(f, 0, b"ONE").expect("overwrite");
    assert_eq!(
        contents(&disk, "seg").as_deref(),
        Some(&b"ONE two three"[..])
    );
    let disk = cut_and_restart(&mut disk, backing.path());
    assert_eq!(contents(&disk, "seg").as_deref(), Some(&b"one two "[..]));
    assert_eq!(
        fs::read(backing.path().join("seg")).expect("backing"),
        b"one two "
    );
}

/// Scenario: a durable file is truncated (shorter, then longer with zeros) without a sync;
/// cut. Then the same with a sync.
/// Guarantees: an unsynced truncate is undone; a synced one is kept.
#[test]
fn a_truncate_is_durable_only_after_fsync() {
    let backing = tempfile::tempdir().expect("tempdir");
    let mut disk = Disk::open(backing.path()).expect("open");
    let f = new_file(&mut disk, ROOT, "seg");
    disk.write(f, 0, b"0123456789").expect("write");
    disk.sync_file(f).expect("fsync");
    disk.sync_dir(ROOT).expect("fsync dir");
    disk.truncate(f, 4).expect("truncate");
    disk.truncate(f, 6).expect("grow");
    assert_eq!(contents(&disk, "seg").as_deref(), Some(&b"0123\0\0"[..]));
    let mut disk = cut_and_restart(&mut disk, backing.path());
    assert_eq!(contents(&disk, "seg").as_deref(), Some(&b"0123456789"[..]));
    let f = disk.lookup(ROOT, OsStr::new("seg")).expect("lookup").ino;
    disk.truncate(f, 4).expect("truncate");
    disk.sync_file(f).expect("fsync");
    let disk = cut_and_restart(&mut disk, backing.path());
    assert_eq!(contents(&disk, "seg").as_deref(), Some(&b"0123"[..]));
}

/// Scenario: `ledger.tmp` is written and fsynced and renamed over a durable `ledger`, with no
/// fsync of the directory; cut. Then the same followed by a directory fsync.
/// Guarantees: without the directory fsync the rename is undone: the old `ledger` is back
/// with its old bytes and `ledger.tmp` is gone (never durably named); with it, the new bytes
/// are at `ledger` and there is no `ledger.tmp`.
#[test]
fn a_rename_is_undone_without_a_directory_fsync() {
    let backing = tempfile::tempdir().expect("tempdir");
    let mut disk = Disk::open(backing.path()).expect("open");
    let old = new_file(&mut disk, ROOT, "ledger");
    disk.write(old, 0, b"old").expect("write");
    disk.sync_file(old).expect("fsync");
    disk.sync_dir(ROOT).expect("fsync dir");
    for sync_dir in [false, true] {
        let tmp = new_file(&mut disk, ROOT, "ledger.tmp");
        disk.write(tmp, 0, b"new").expect("write");
        disk.sync_file(tmp).expect("fsync");
        disk.rename(
            ROOT,
            OsStr::new("ledger.tmp"),
            ROOT,
            OsStr::new("ledger"),
            false,
        )
        .expect("rename");
        assert_eq!(contents(&disk, "ledger").as_deref(), Some(&b"new"[..]));
        if sync_dir {
            disk.sync_dir(ROOT).expect("fsync dir");
        }
        disk = cut_and_restart(&mut disk, backing.path());
        let expected: &[u8] = if sync_dir { b"new" } else { b"old" };
        assert_eq!(
            contents(&disk, "ledger").as_deref(),
            Some(expected),
            "dir synced: {sync_dir}"
        );
        assert_eq!(contents(&disk, "ledger.tmp"), None);
    }
}

/// Scenario: a durable file is unlinked without a directory fsync; cut. Then again with one.
/// Guarantees: the unsynced unlink is undone (the file is back with its durable bytes); the
/// synced one is kept, in the backing directory too.
#[test]
fn an_unlink_is_undone_without_a_directory_fsync() {
    let backing = tempfile::tempdir().expect("tempdir");
    let mut disk = Disk::open(backing.path()).expect("open");
    let f = new_file(&mut disk, ROOT, "seg");
    disk.write(f, 0, b"data").expect("write");
    disk.sync_file(f).expect("fsync");
    disk.sync_dir(ROOT).expect("fsync dir");
    disk.unlink(ROOT, OsStr::new("seg")).expect("unlink");
    assert_eq!(contents(&disk, "seg"), None);
    let mut disk = cut_and_restart(&mut disk, backing.path());
    assert_eq!(contents(&disk, "seg").as_deref(), Some(&b"data"[..]));
    disk.unlink(ROOT, OsStr::new("seg")).expect("unlink");
    disk.sync_dir(ROOT).expect("fsync dir");
    let disk = cut_and_restart(&mut disk, backing.path());
    assert_eq!(contents(&disk, "seg"), None);
    assert!(!backing.path().join("seg").exists());
}

/// Scenario: `mkdir -p a/b`, a file in `b` fsynced, `b` fsynced, but `a` (the parent of `b`)
/// and the root are not; cut. Then the parents are synced in turn.
/// Guarantees: a directory's name is durable only once its parent is synced: first nothing
/// survives; after syncing `a` but not the root, still nothing; after syncing the root too,
/// the whole path with the file's synced bytes.
#[test]
fn a_new_directory_needs_every_parent_synced() {
    let backing = tempfile::tempdir().expect("tempdir");
    let mut disk = Disk::open(backing.path()).expect("open");
    let a = new_dir(&mut disk, ROOT, "a");
    let b = new_dir(&mut disk, a, "b");
    let f = new_file(&mut disk, b, "seg");
    disk.write(f, 0, b"acked").expect("write");
    disk.sync_file(f).expect("fsync");
    disk.sync_dir(b).expect("fsync b");
    let mut disk = cut_and_restart(&mut disk, backing.path());
    assert_eq!(contents(&disk, "a"), None);

    let a = new_dir(&mut disk, ROOT, "a");
    let b = new_dir(&mut disk, a, "b");
    let f = new_file(&mut disk, b, "seg");
    disk.write(f, 0, b"acked").expect("write");
    disk.sync_file(f).expect("fsync");
    disk.sync_dir(b).expect("fsync b");
    disk.sync_dir(a).expect("fsync a");
    let mut disk = cut_and_restart(&mut disk, backing.path());
    assert!(
        disk.lookup(ROOT, OsStr::new("a")).is_err(),
        "the root was not synced"
    );

    let a = new_dir(&mut disk, ROOT, "a");
    let b = new_dir(&mut disk, a, "b");
    let f = new_file(&mut disk, b, "seg");
    disk.write(f, 0, b"acked").expect("write");
    disk.sync_file(f).expect("fsync");
    disk.sync_dir(b).expect("fsync b");
    disk.sync_dir(a).expect("fsync a");
    disk.sync_dir(ROOT).expect("fsync root");
    let disk = cut_and_restart(&mut disk, backing.path());
    assert_eq!(contents(&disk, "a/b/seg").as_deref(), Some(&b"acked"[..]));
    assert_eq!(
        fs::read(backing.path().join("a/b/seg")).expect("backing"),
        b"acked"
    );
}

/// Scenario: a file is named durably while empty, then written and fsynced (no further
/// directory fsync); then a second file is synced before its name is.
/// Guarantees: a file's fsync reaches the backing file wherever it is durably named, and a
/// name made durable later shows the bytes synced before it, not the unsynced ones.
#[test]
fn file_and_name_syncs_combine_in_either_order() {
    let backing = tempfile::tempdir().expect("tempdir");
    let mut disk = Disk::open(backing.path()).expect("open");
    let first = new_file(&mut disk, ROOT, "first");
    disk.sync_dir(ROOT).expect("fsync dir");
    disk.write(first, 0, b"synced after the name")
        .expect("write");
    disk.sync_file(first).expect("fsync");
    assert_eq!(
        fs::read(backing.path().join("first")).expect("backing"),
        b"synced after the name"
    );

    let second = new_file(&mut disk, ROOT, "second");
    disk.write(second, 0, b"synced").expect("write");
    disk.sync_file(second).expect("fsync");
    disk.write(second, 6, b" and more").expect("write");
    disk.sync_dir(ROOT).expect("fsync dir");
    let disk = cut_and_restart(&mut disk, backing.path());
    assert_eq!(
        contents(&disk, "first").as_deref(),
        Some(&b"synced after the name"[..])
    );
    assert_eq!(contents(&disk, "second").as_deref(), Some(&b"synced"[..]));
}

/// Scenario: the power is cut with files open.
/// Guarantees: every later operation fails with `PoweredOff` (EIO through the mount),
/// whether it reads, writes, syncs or looks up; the cut report counts the unsynced state.
#[test]
fn after_a_cut_every_operation_fails() {
    let backing = tempfile::tempdir().expect("tempdir");
    let mut disk = Disk::open(backing.path()).expect("open");
    let f = new_file(&mut disk, ROOT, "seg");
    disk.open_handle(f).expect("open handle");
    disk.write(f, 0, b"x").expect("write");
    let report = disk.cut();
    assert_eq!((report.files_unsynced, report.dirs_unsynced), (1, 1));
    assert!(!disk.powered());
    assert!(matches!(disk.read(f, 0, 1), Err(PowercutError::PoweredOff)));
    assert!(matches!(
        disk.write(f, 1, b"y"),
        Err(PowercutError::PoweredOff)
    ));
    assert!(matches!(disk.sync_file(f), Err(PowercutError::PoweredOff)));
    assert!(matches!(
        disk.sync_dir(ROOT),
        Err(PowercutError::PoweredOff)
    ));
    assert!(matches!(
        disk.lookup(ROOT, OsStr::new("seg")),
        Err(PowercutError::PoweredOff)
    ));
    assert!(matches!(
        disk.create(ROOT, OsStr::new("new"), Kind::File, 0o644, OWNER),
        Err(PowercutError::PoweredOff)
    ));
}

/// Scenario: a file is unlinked while still open, written through the open handle, synced.
/// Guarantees: the open handle keeps working (POSIX), and nothing of it comes back after a
/// cut once the unlink was synced.
#[test]
fn an_unlinked_open_file_stays_usable_until_released() {
    let backing = tempfile::tempdir().expect("tempdir");
    let mut disk = Disk::open(backing.path()).expect("open");
    let f = new_file(&mut disk, ROOT, "seg");
    disk.sync_dir(ROOT).expect("fsync dir");
    disk.open_handle(f).expect("open handle");
    disk.unlink(ROOT, OsStr::new("seg")).expect("unlink");
    disk.sync_dir(ROOT).expect("fsync dir");
    disk.write(f, 0, b"still here").expect("write");
    disk.sync_file(f).expect("fsync");
    assert_eq!(disk.read(f, 0, 100).expect("read"), b"still here");
    disk.release(f);
    assert!(
        matches!(disk.getattr(f), Err(PowercutError::NotFound)),
        "forgotten once closed"
    );
    let disk = cut_and_restart(&mut disk, backing.path());
    assert_eq!(contents(&disk, "seg"), None);
}

/// Scenario: the usual POSIX refusals: a name taken, a non-empty directory removed, a file
/// removed with rmdir, a directory moved into itself.
/// Guarantees: each is refused with its own error and changes nothing.
#[test]
fn posix_refusals() {
    let backing = tempfile::tempdir().expect("tempdir");
    let mut disk = Disk::open(backing.path()).expect("open");
    let d = new_dir(&mut disk, ROOT, "d");
    new_file(&mut disk, d, "f");
    let taken = disk.create(ROOT, OsStr::new("d"), Kind::File, 0o644, OWNER);
    assert!(matches!(taken, Err(PowercutError::Exists)));
    assert!(matches!(
        disk.rmdir(ROOT, OsStr::new("d")),
        Err(PowercutError::NotEmpty)
    ));
    assert!(matches!(
        disk.rmdir(d, OsStr::new("f")),
        Err(PowercutError::NotDir)
    ));
    assert!(matches!(
        disk.unlink(ROOT, OsStr::new("d")),
        Err(PowercutError::IsDir)
    ));
    let into_itself = disk.rename(ROOT, OsStr::new("d"), d, OsStr::new("x"), false);
    assert!(matches!(into_itself, Err(PowercutError::Invalid(_))));
    let names: Vec<_> = disk
        .readdir(d)
        .expect("readdir")
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(names, vec![OsStr::new("f").to_os_string()]);
}
