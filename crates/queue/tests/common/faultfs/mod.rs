//! A `QueueIo` for tests that fails chosen filesystem calls, can hold one until released, and
//! models what a power cut would keep of the queue folder.
//!
//! Faults: [`FaultFs::arm`] makes matching calls fail (after letting `skip` of them through,
//! `times` times). A failed `write` may first write part of its buffer (`partial`), as a disk
//! filling up does.
//!
//! Durability model (the worst POSIX allows, as ext4 or xfs may behave on a power loss):
//! - a file's bytes are durable as of its last successful `sync`;
//! - a folder's entries (files created, renamed, deleted) are durable as of its last
//!   successful `sync_dir`;
//! - a failed `sync` loses the bytes written since the file's last successful one, and they
//!   stay lost when a later `sync` of the file succeeds unless they are written again (Linux
//!   marks the failed pages clean: "fsyncgate"). With [`FaultFs::drop_on_failed_sync`] they are
//!   also zeroed in the live file, as when the kernel evicts those pages and reads the disk.
//!
//! [`FaultFs::power_cut`] writes the durable image of the folder elsewhere, to be opened as the
//! queue would find it after the power came back.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Condvar, Mutex, MutexGuard};

use otelspool_queue::RealIo;

mod io_impl;

/// EIO: what a failing device answers.
pub const EIO: i32 = 5;
/// ENOSPC: the disk is full.
pub const ENOSPC: i32 = 28;

/// A filesystem call of [`QueueIo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Create,
    CreateOrTruncate,
    OpenWrite,
    OpenRead,
    Read,
    ReadAt,
    Write,
    WriteAt,
    Sync,
    SetLen,
    FileLen,
    Rename,
    RemoveFile,
    SyncDir,
    CreateDirAll,
    ListDir,
    OpenLock,
    TryLock,
}

/// Which file a fault applies to, by name (a rename by its source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Any,
    Segment,
    Ledger,
    LedgerTmp,
}

impl Target {
    fn matches(self, path: Option<&Path>) -> bool {
        let name = path
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or("");
        match self {
            Target::Any => true,
            Target::Segment => name.ends_with(".seg"),
            Target::Ledger => name == "ledger",
            Target::LedgerTmp => name == "ledger.tmp",
        }
    }
}

/// One injected fault.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    op: Op,
    target: Target,
    skip: u32,
    times: u32,
    errno: i32,
    partial: Option<usize>,
    hold: bool,
}

impl Fault {
    /// Fails the next matching call once, with EIO.
    pub fn new(op: Op, target: Target) -> Self {
        Fault {
            op,
            target,
            skip: 0,
            times: 1,
            errno: EIO,
            partial: None,
            hold: false,
        }
    }
    /// Lets `n` matching calls through first.
    pub fn skip(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }
    /// Fails every matching call until [`FaultFs::clear`].
    pub fn always(mut self) -> Self {
        self.times = u32::MAX;
        self
    }
    /// Fails with ENOSPC instead of EIO.
    pub fn enospc(mut self) -> Self {
        self.errno = ENOSPC;
        self
    }
    /// A failing `write` first writes this many bytes of its buffer.
    pub fn partial(mut self, bytes: usize) -> Self {
        self.partial = Some(bytes);
        self
    }
    /// Blocks the matching call (instead of failing it) until [`FaultFs::release`].
    pub fn hold(mut self) -> Self {
        self.hold = true;
        self
    }
}

#[derive(Debug, Default)]
struct Model {
    faults: Vec<Fault>,
    calls: HashMap<Op, u64>,
    failures: u64,
    held: bool,
    next_id: u64,
    /// Inode number -> model file id (a new id per file created).
    ids: HashMap<u64, u64>,
    durable_names: BTreeMap<String, u64>,
    durable_data: HashMap<u64, Vec<u8>>,
    /// Byte ranges lost by a failed sync, until written again.
    lost: HashMap<u64, Vec<(u64, u64)>>,
}

impl Model {
    fn id_of(&mut self, ino: u64) -> u64 {
        if let Some(&id) = self.ids.get(&ino) {
            return id;
        }
        self.next_id += 1;
        self.ids.insert(ino, self.next_id);
        self.next_id
    }
    fn new_file(&mut self, ino: u64) -> u64 {
        self.next_id += 1;
        self.ids.insert(ino, self.next_id);
        self.next_id
    }
}

/// See the module doc.
#[derive(Debug)]
pub struct FaultFs {
    dir: PathBuf,
    real: RealIo,
    m: Mutex<Model>,
    released: Condvar,
    /// Zero the bytes a failed sync lost in the live file too.
    pub drop_on_failed_sync: AtomicBool,
}

fn fd_path(file: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

fn live_bytes(file: &File) -> Vec<u8> {
    std::fs::read(fd_path(file)).expect("read a file through /proc/self/fd")
}

fn ino(file: &File) -> u64 {
    file.metadata().expect("metadata").ino()
}

impl FaultFs {
    /// A layer over the real filesystem for the queue folder `dir`; whatever `dir` holds now
    /// counts as durable.
    pub fn new(dir: &Path) -> Self {
        let fs = FaultFs {
            dir: dir.to_path_buf(),
            real: RealIo,
            m: Mutex::new(Model::default()),
            released: Condvar::new(),
            drop_on_failed_sync: AtomicBool::new(false),
        };
        if dir.is_dir() {
            let mut m = fs.model();
            for (name, path) in Self::entries(dir) {
                let id = m.id_of(std::fs::metadata(&path).expect("metadata").ino());
                m.durable_data
                    .insert(id, std::fs::read(&path).expect("read"));
                m.durable_names.insert(name, id);
            }
        }
        fs
    }

    fn entries(dir: &Path) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let e = e.expect("dir entry");
            let name = e.file_name().to_string_lossy().into_owned();
            if name != "lock" {
                out.push((name, e.path()));
            }
        }
        out
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        self.m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a fault.
    pub fn arm(&self, fault: Fault) {
        self.model().faults.push(fault);
    }

    /// Removes every fault and releases a held call.
    pub fn clear(&self) {
        self.model().faults.clear();
        self.release();
    }

    /// Lets a held call go on.
    pub fn release(&self) {
        let mut m = self.model();
        m.faults.retain(|f| !f.hold);
        m.held = false;
        self.released.notify_all();
    }

    /// True while a call is held.
    pub fn holding(&self) -> bool {
        self.model().held
    }

    /// Calls of `op` so far.
    pub fn calls(&self, op: Op) -> u64 {
        self.model().calls.get(&op).copied().unwrap_or(0)
    }

    /// Calls failed so far.
    pub fn failures(&self) -> u64 {
        self.model().failures
    }

    /// Counts the call; holds it or returns the fault to inject, if one matches.
    fn check(&self, op: Op, path: Option<&Path>) -> Option<Fault> {
        let mut m = self.model();
        *m.calls.entry(op).or_default() += 1;
        let idx = m
            .faults
            .iter()
            .position(|f| f.op == op && f.target.matches(path))?;
        if m.faults[idx].skip > 0 {
            m.faults[idx].skip -= 1;
            return None;
        }
        let fault = m.faults[idx];
        if fault.hold {
            m.held = true;
            while m.held {
                m = self.released.wait(m).unwrap_or_else(|p| p.into_inner());
            }
            return None;
        }
        if fault.times != u32::MAX {
            m.faults[idx].times -= 1;
            if m.faults[idx].times == 0 {
                m.faults.remove(idx);
            }
        }
        m.failures += 1;
        Some(fault)
    }

    fn check_fd(&self, op: Op, file: &File) -> Option<Fault> {
        let path = std::fs::read_link(fd_path(file)).ok();
        self.check(op, path.as_deref())
    }

    /// Marks `[from, to)` of `file` as written again: no longer lost.
    fn rewritten(&self, file: &File, from: u64, to: u64) {
        let mut m = self.model();
        let id = m.id_of(ino(file));
        if let Some(ranges) = m.lost.get_mut(&id) {
            let mut kept = Vec::new();
            for &(a, b) in ranges.iter() {
                if a < from {
                    kept.push((a, b.min(from)));
                }
                if b > to {
                    kept.push((a.max(to), b));
                }
            }
            *ranges = kept;
        }
    }

    /// What a power cut now would leave of the file `name` in the folder.
    pub fn durable(&self, name: &str) -> Option<Vec<u8>> {
        let m = self.model();
        let id = m.durable_names.get(name)?;
        Some(m.durable_data.get(id).cloned().unwrap_or_default())
    }

    /// Writes what a power cut would leave of the folder into `to`.
    pub fn power_cut(&self, to: &Path) {
        let m = self.model();
        for (name, id) in &m.durable_names {
            let data = m.durable_data.get(id).cloned().unwrap_or_default();
            std::fs::write(to.join(name), data).expect("write the durable image");
        }
    }
}
