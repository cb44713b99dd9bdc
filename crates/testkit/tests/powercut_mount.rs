//! The power-cut filesystem through a real FUSE mount: the kernel's `fsync`, `fdatasync`,
//! directory `fsync`, `rename`, `ftruncate` and `unlink` reach the model as the module doc says,
//! and a cut fails I/O with `EIO`. Needs `/dev/fuse` and root (CI has both); without them the
//! test says so and returns.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use fuser::{Config, MountOption};
use otelspool_testkit::powercut::Disk;
use otelspool_testkit::powercut::fs::PowercutFs;

fn can_mount() -> bool {
    let fuse = Path::new("/dev/fuse").exists();
    let root =
        fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if !fuse || !root {
        eprintln!("SKIPPED: mounting needs /dev/fuse and root (fuse: {fuse}, root: {root})");
        return false;
    }
    true
}

fn sync_dir(path: &Path) {
    File::open(path)
        .expect("open dir")
        .sync_all()
        .expect("fsync dir");
}

/// Scenario: through a real mount, a queue-like sequence: `mkdir -p q/logs`, a segment
/// created and appended, `fdatasync`ed, a second file written and synced, the queue directory
/// synced; then a second append not synced, a ledger written via tmp + `fsync` + rename with
/// no directory sync, and a truncate of the second file without sync. Then the power is cut.
/// Guarantees: reads saw everything before the cut; after it every operation fails with EIO;
/// what the backing directory (and a new model on it) holds is exactly the durable part: the
/// parent chain `q/logs` is gone because neither the root nor `q` was synced; once the
/// same sequence also syncs the parents, the segment holds its synced bytes only, the rename
/// is undone (no ledger), the unsynced truncate is undone.
#[test]
fn kernel_syncs_reach_the_model_and_a_cut_keeps_only_them() {
    if !can_mount() {
        return;
    }
    for sync_parents in [false, true] {
        let backing = tempfile::tempdir().expect("backing");
        let mnt = tempfile::tempdir().expect("mount point");
        let disk = Arc::new(Mutex::new(Disk::open(backing.path()).expect("open")));
        let mut config = Config::default();
        config.mount_options = vec![MountOption::DefaultPermissions];
        let session =
            fuser::spawn_mount(PowercutFs::new(disk.clone()), mnt.path(), &config).expect("mount");

        let q = mnt.path().join("q");
        let logs = q.join("logs");
        fs::create_dir_all(&logs).expect("mkdir -p");
        let seg_path = logs.join("00000001.seg");
        let mut seg = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&seg_path)
            .expect("create");
        seg.write_all(b"record-1;").expect("append");
        seg.sync_data().expect("fdatasync");
        sync_dir(&logs);
        if sync_parents {
            sync_dir(&q);
            sync_dir(mnt.path());
        }
        let trunc = logs.join("trunc");
        fs::write(&trunc, b"0123456789").expect("write");
        File::open(&trunc).expect("open").sync_all().expect("fsync");
        sync_dir(&logs);
        seg.write_all(b"record-2;").expect("append");
        let mut tmp = File::create(logs.join("ledger.tmp")).expect("create tmp");
        tmp.write_all(b"ledger").expect("write tmp");
        tmp.sync_data().expect("fsync tmp");
        fs::rename(logs.join("ledger.tmp"), logs.join("ledger")).expect("rename");
        OpenOptions::new()
            .write(true)
            .open(&trunc)
            .expect("open")
            .set_len(3)
            .expect("truncate");
        assert_eq!(fs::read(&seg_path).expect("read"), b"record-1;record-2;");
        assert_eq!(fs::read(logs.join("ledger")).expect("read"), b"ledger");
        assert_eq!(fs::read(&trunc).expect("read"), b"012");

        let report = disk.lock().unwrap_or_else(PoisonError::into_inner).cut();
        assert!(
            report.stats.file_syncs >= 3 && report.stats.dir_syncs >= 2,
            "{report:?}"
        );
        let after = seg
            .write_all(b"record-3;")
            .expect_err("a write after the cut");
        assert_eq!(after.raw_os_error(), Some(libc::EIO), "{after:?}");
        let listing = fs::read_dir(mnt.path())
            .map(|_| ())
            .expect_err("a listing after the cut");
        assert_eq!(listing.raw_os_error(), Some(libc::EIO), "{listing:?}");
        drop((seg, tmp));
        session.umount_and_join().expect("unmount");

        let survived = Disk::open(backing.path()).expect("reopen");
        let durable_logs = backing.path().join("q/logs");
        if !sync_parents {
            assert!(
                !backing.path().join("q").exists(),
                "q was never durably named"
            );
            assert!(survived.readdir(1).expect("readdir").is_empty());
            continue;
        }
        assert_eq!(
            fs::read(durable_logs.join("00000001.seg")).expect("seg"),
            b"record-1;"
        );
        assert!(
            !durable_logs.join("ledger").exists(),
            "the rename was not synced"
        );
        assert!(
            !durable_logs.join("ledger.tmp").exists(),
            "named only after the last dir sync"
        );
        assert_eq!(
            fs::read(durable_logs.join("trunc")).expect("trunc"),
            b"0123456789"
        );
    }
}
