//! The in-memory core of the power-cut filesystem: the volatile view that reads see, the
//! durable state that survives a cut, and the rules that move changes from one to the other.
//! No FUSE here, so the model is tested without mounting (see `tests.rs`).
//!
//! Every inode carries two states. A file has `data` (what reads see) and `durable` (its bytes
//! and size as of its last `fsync`/`fdatasync`); a directory has `entries` (name to inode, what
//! lookups see) and `durable` (its entries as of its last `fsync` of the directory). The
//! durable tree is the one reached from the root through durable entries only, with each file
//! holding its durable bytes; [`super::backing`] keeps the backing directory equal to it after
//! every operation, so a cut only has to stop serving.
//!
//! This file holds the state, the cut and file data; names are in `tree.rs`, syncs in
//! `durable.rs`.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use super::PowercutError;
use super::backing::{self, Loaded};

/// An inode number; [`ROOT`] is the mount's root directory.
pub type Ino = u64;

/// The root directory's inode number (FUSE's).
pub const ROOT: Ino = 1;

/// A file's or directory's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// What `stat` shows of an inode (the volatile view).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Inode number.
    pub ino: Ino,
    /// File or directory.
    pub kind: Kind,
    /// Size in bytes (files), number of entries (directories).
    pub size: u64,
    /// Permission bits.
    pub perm: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Last change of contents.
    pub mtime: SystemTime,
}

/// Counters since mount, served by the control API.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct DiskStats {
    /// `write` calls.
    pub writes: u64,
    /// Bytes written (volatile until synced).
    pub bytes_written: u64,
    /// `fsync`/`fdatasync` calls on files.
    pub file_syncs: u64,
    /// `fsync` calls on directories.
    pub dir_syncs: u64,
}

/// What a power cut threw away.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct CutReport {
    /// Files whose bytes or size differed from their durable state.
    pub files_unsynced: u64,
    /// Directories whose entries differed from their durable entries.
    pub dirs_unsynced: u64,
    /// The counters up to the cut.
    pub stats: DiskStats,
}

#[derive(Debug)]
pub(super) enum Node {
    File {
        data: Vec<u8>,
        durable: Vec<u8>,
        /// Lowest offset changed since the last sync (`None`: data == durable). Always at most
        /// `durable.len()` and `data.len()`.
        dirty_from: Option<usize>,
    },
    Dir {
        entries: BTreeMap<OsString, Ino>,
        durable: BTreeMap<OsString, Ino>,
        parent: Ino,
    },
}

#[derive(Debug)]
pub(super) struct Inode {
    pub(super) node: Node,
    pub(super) perm: u16,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) mtime: SystemTime,
    /// Open handles: an unnamed inode lives on until they are released.
    pub(super) open: u32,
}

/// The model: every inode's volatile and durable state, and the backing directory that holds
/// the durable tree. After [`Disk::cut`] every operation fails with
/// [`PowercutError::PoweredOff`].
#[derive(Debug)]
pub struct Disk {
    pub(super) backing: PathBuf,
    pub(super) inodes: HashMap<Ino, Inode>,
    pub(super) next_ino: Ino,
    powered: bool,
    pub(super) stats: DiskStats,
}

pub(super) type Result<T> = std::result::Result<T, PowercutError>;

impl Disk {
    /// Starts on what the backing directory holds: that is the durable state, and the volatile
    /// view starts equal to it.
    pub fn open(backing: &Path) -> Result<Disk> {
        let loaded = backing::load(backing)?;
        let mut disk = Disk {
            backing: backing.to_path_buf(),
            inodes: HashMap::new(),
            next_ino: ROOT,
            powered: true,
            stats: DiskStats::default(),
        };
        disk.add_loaded(loaded, ROOT);
        Ok(disk)
    }

    fn add_loaded(&mut self, loaded: Loaded, parent: Ino) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        let (node, meta) = match loaded {
            Loaded::File { bytes, meta } => {
                let node = Node::File {
                    durable: bytes.clone(),
                    data: bytes,
                    dirty_from: None,
                };
                (node, meta)
            }
            Loaded::Dir { children, meta } => {
                let dir = Node::Dir {
                    entries: BTreeMap::new(),
                    durable: BTreeMap::new(),
                    parent,
                };
                self.inodes
                    .insert(ino, Inode::new(dir, meta.perm, meta.uid, meta.gid));
                let mut entries = BTreeMap::new();
                for (name, child) in children {
                    entries.insert(name, self.add_loaded(child, ino));
                }
                if let Some(Node::Dir {
                    entries: e,
                    durable,
                    ..
                }) = self.inodes.get_mut(&ino).map(|i| &mut i.node)
                {
                    *durable = entries.clone();
                    *e = entries;
                }
                return ino;
            }
        };
        self.inodes
            .insert(ino, Inode::new(node, meta.perm, meta.uid, meta.gid));
        ino
    }

    /// The counters since mount.
    pub fn stats(&self) -> DiskStats {
        self.stats.clone()
    }

    /// Whether the power is on (no cut yet).
    pub fn powered(&self) -> bool {
        self.powered
    }

    /// Cuts the power: everything not durable is gone (the backing directory already holds
    /// exactly the durable state), and every later operation fails.
    pub fn cut(&mut self) -> CutReport {
        let mut report = CutReport {
            stats: self.stats.clone(),
            ..CutReport::default()
        };
        for inode in self.inodes.values() {
            match &inode.node {
                Node::File {
                    dirty_from: Some(_),
                    ..
                } => report.files_unsynced += 1,
                Node::Dir {
                    entries, durable, ..
                } if entries != durable => report.dirs_unsynced += 1,
                _ => {}
            }
        }
        self.powered = false;
        self.inodes.clear();
        report
    }

    pub(super) fn on(&self) -> Result<()> {
        if self.powered {
            Ok(())
        } else {
            Err(PowercutError::PoweredOff)
        }
    }

    pub(super) fn inode(&self, ino: Ino) -> Result<&Inode> {
        self.on()?;
        self.inodes.get(&ino).ok_or(PowercutError::NotFound)
    }

    pub(super) fn inode_mut(&mut self, ino: Ino) -> Result<&mut Inode> {
        self.on()?;
        self.inodes.get_mut(&ino).ok_or(PowercutError::NotFound)
    }

    pub(super) fn entries(&self, dir: Ino) -> Result<&BTreeMap<OsString, Ino>> {
        match &self.inode(dir)?.node {
            Node::Dir { entries, .. } => Ok(entries),
            Node::File { .. } => Err(PowercutError::NotDir),
        }
    }

    pub(super) fn entries_mut(&mut self, dir: Ino) -> Result<&mut BTreeMap<OsString, Ino>> {
        match &mut self.inode_mut(dir)?.node {
            Node::Dir { entries, .. } => Ok(entries),
            Node::File { .. } => Err(PowercutError::NotDir),
        }
    }

    /// The attributes of `ino`.
    pub fn getattr(&self, ino: Ino) -> Result<Attr> {
        let inode = self.inode(ino)?;
        let (kind, size) = match &inode.node {
            Node::File { data, .. } => (Kind::File, data.len() as u64),
            Node::Dir { entries, .. } => (Kind::Dir, entries.len() as u64),
        };
        Ok(Attr {
            ino,
            kind,
            size,
            perm: inode.perm,
            uid: inode.uid,
            gid: inode.gid,
            mtime: inode.mtime,
        })
    }

    /// Looks `name` up in directory `parent`.
    pub fn lookup(&self, parent: Ino, name: &OsStr) -> Result<Attr> {
        let ino = *self
            .entries(parent)?
            .get(name)
            .ok_or(PowercutError::NotFound)?;
        self.getattr(ino)
    }

    /// The parent of directory `dir` (itself for the root).
    pub fn parent(&self, dir: Ino) -> Result<Ino> {
        match &self.inode(dir)?.node {
            Node::Dir { parent, .. } => Ok(*parent),
            Node::File { .. } => Err(PowercutError::NotDir),
        }
    }

    /// The entries of directory `dir`, in name order.
    pub fn readdir(&self, dir: Ino) -> Result<Vec<(OsString, Ino, Kind)>> {
        let mut out = Vec::new();
        for (name, ino) in self.entries(dir)? {
            out.push((name.clone(), *ino, self.getattr(*ino)?.kind));
        }
        Ok(out)
    }

    /// Up to `size` bytes of file `ino` from `offset`, as reads see them (unsynced writes
    /// included).
    pub fn read(&self, ino: Ino, offset: u64, size: u32) -> Result<&[u8]> {
        match &self.inode(ino)?.node {
            Node::File { data, .. } => {
                let start = usize::try_from(offset).map_or(data.len(), |o| o.min(data.len()));
                let end = start.saturating_add(size as usize).min(data.len());
                Ok(&data[start..end])
            }
            Node::Dir { .. } => Err(PowercutError::IsDir),
        }
    }

    /// Writes `buf` at `offset` in file `ino` (volatile until the file is synced).
    pub fn write(&mut self, ino: Ino, offset: u64, buf: &[u8]) -> Result<u32> {
        let offset = usize::try_from(offset).map_err(|_| PowercutError::TooLarge)?;
        let end = offset
            .checked_add(buf.len())
            .ok_or(PowercutError::TooLarge)?;
        let len = u32::try_from(buf.len()).map_err(|_| PowercutError::TooLarge)?;
        let inode = self.inode_mut(ino)?;
        let Node::File {
            data, dirty_from, ..
        } = &mut inode.node
        else {
            return Err(PowercutError::IsDir);
        };
        let from = offset.min(data.len());
        if end > data.len() {
            data.resize(end, 0);
        }
        data[offset..end].copy_from_slice(buf);
        *dirty_from = Some(dirty_from.map_or(from, |d| d.min(from)));
        inode.mtime = SystemTime::now();
        self.stats.writes += 1;
        self.stats.bytes_written += buf.len() as u64;
        Ok(len)
    }

    /// Sets the size of file `ino` (volatile until the file is synced).
    pub fn truncate(&mut self, ino: Ino, size: u64) -> Result<()> {
        let size = usize::try_from(size).map_err(|_| PowercutError::TooLarge)?;
        let inode = self.inode_mut(ino)?;
        let Node::File {
            data, dirty_from, ..
        } = &mut inode.node
        else {
            return Err(PowercutError::IsDir);
        };
        if size != data.len() {
            let from = size.min(data.len());
            data.resize(size, 0);
            *dirty_from = Some(dirty_from.map_or(from, |d| d.min(from)));
            inode.mtime = SystemTime::now();
        }
        Ok(())
    }

    /// Sets the permission bits of `ino` (kept in memory only: not part of the model).
    pub fn chmod(&mut self, ino: Ino, perm: u16) -> Result<()> {
        self.inode_mut(ino)?.perm = perm;
        Ok(())
    }
}

impl Inode {
    pub(super) fn new(node: Node, perm: u16, uid: u32, gid: u32) -> Inode {
        Inode {
            node,
            perm,
            uid,
            gid,
            mtime: SystemTime::now(),
            open: 0,
        }
    }
}
