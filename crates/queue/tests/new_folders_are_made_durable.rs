//! A queue folder created at open must exist after a power cut: its parents are synced.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use otelspool_queue::{Queue, QueueIo, QueueOptions, RealIo};

/// The real filesystem, recording every directory sync.
#[derive(Debug, Default)]
struct RecordingIo {
    synced_dirs: Mutex<Vec<PathBuf>>,
}

impl QueueIo for RecordingIo {
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.synced_dirs
            .lock()
            .expect("lock")
            .push(dir.to_path_buf());
        RealIo.sync_dir(dir)
    }

    fn sync(&self, file: &File) -> std::io::Result<()> {
        RealIo.sync(file)
    }
}

fn open(dir: &Path, fsync: bool) -> (Queue, Arc<RecordingIo>) {
    let io = Arc::new(RecordingIo::default());
    let mut opts = QueueOptions::new("names", Some(dir.to_path_buf()));
    opts.fsync = fsync;
    opts.io = io.clone();
    let (queue, _) = Queue::open(opts).expect("open");
    (queue, io)
}

fn assert_synced(synced: &[PathBuf], wanted: &[PathBuf]) {
    for w in wanted {
        assert!(
            synced.contains(w),
            "{} not synced; synced: {synced:?}",
            w.display()
        );
    }
}

/// Scenario: a queue opens in `<tmp>/storage/exporter/logs`, none of which exists yet, with
/// fsync on; it is opened again; then its `names-synced` file is removed (as if the first
/// start had been killed before it finished syncing) and it is opened a third time.
/// Guarantees: before the first open returns (so before any append can be acknowledged) the
/// folder and every parent up to `<tmp>` are synced, so the new folder names survive a power
/// cut; the second open syncs no folder (an earlier start did); the third syncs them all again.
#[test]
fn a_new_queue_folder_and_its_parents_are_synced_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("storage").join("exporter").join("logs");
    let wanted = [
        dir.clone(),
        tmp.path().join("storage").join("exporter"),
        tmp.path().join("storage"),
        tmp.path().to_path_buf(),
    ];
    let (queue, io) = open(&dir, true);
    assert_synced(&io.synced_dirs.lock().expect("lock"), &wanted);
    queue.shutdown();

    let (queue, io) = open(&dir, true);
    let synced = io.synced_dirs.lock().expect("lock").clone();
    assert!(synced.is_empty(), "synced again: {synced:?}");
    queue.shutdown();

    std::fs::remove_file(dir.join("names-synced")).expect("the marker exists");
    let (queue, io) = open(&dir, true);
    assert_synced(&io.synced_dirs.lock().expect("lock"), &wanted);
    queue.shutdown();
}

/// Scenario: the same open with `fsync: false`.
/// Guarantees: no directory is synced at open (the user chose page-cache durability).
#[test]
fn without_fsync_open_syncs_no_folder() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("a").join("b");
    let (queue, io) = open(&dir, false);
    assert!(io.synced_dirs.lock().expect("lock").is_empty());
    queue.shutdown();
}
