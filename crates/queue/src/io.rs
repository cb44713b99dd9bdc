//! Every filesystem call the queue makes, behind one small trait so tests can inject faults (a
//! full disk, a failing fsync, rename, unlink or truncate) and model what a power cut keeps,
//! without a real broken disk (vector's disk_v2 `io.rs` does the same).
//!
//! Invariant: no other module of this crate calls `std::fs` or a `File` method that touches
//! the disk; they all go through [`QueueIo`]. The default methods do the real thing, so an
//! implementation overrides only the calls it wants to fail.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The queue's filesystem operations. The default methods do the real thing.
pub trait QueueIo: Send + Sync + Debug {
    /// Creates a new segment file for appending (fails if it exists).
    fn create(&self, path: &Path) -> std::io::Result<File> {
        OpenOptions::new().create_new(true).append(true).open(path)
    }

    /// Creates or empties a file and opens it for writing (`ledger.tmp`).
    fn create_or_truncate(&self, path: &Path) -> std::io::Result<File> {
        File::create(path)
    }

    /// Opens an existing file for writing in place (the ledger, a segment to cut).
    fn open_write(&self, path: &Path) -> std::io::Result<File> {
        OpenOptions::new().write(true).open(path)
    }

    /// Opens an existing file for reading (a segment's reader).
    fn open_read(&self, path: &Path) -> std::io::Result<File> {
        File::open(path)
    }

    /// Reads a whole file (the ledger, a segment at recovery).
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    /// Fills `buf` from `file` at `offset` (a record read back for a consumer).
    fn read_at(&self, file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        file.read_exact_at(buf, offset)
    }

    /// Appends `buf` to `file` (or writes it at the position of a file opened without append).
    fn write(&self, file: &mut File, buf: &[u8]) -> std::io::Result<()> {
        file.write_all(buf)
    }

    /// Writes `buf` at `offset` (the ledger, in place).
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
        file.write_all_at(buf, offset)
    }

    /// Makes what was written to `file` durable.
    fn sync(&self, file: &File) -> std::io::Result<()> {
        file.sync_data()
    }

    /// Sets the length of `file` (cuts a torn or unsynced tail).
    fn set_len(&self, file: &File, len: u64) -> std::io::Result<()> {
        file.set_len(len)
    }

    /// The current length of `file`.
    fn file_len(&self, file: &File) -> std::io::Result<u64> {
        Ok(file.metadata()?.len())
    }

    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        std::fs::rename(from, to)
    }

    /// Deletes a file.
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        std::fs::remove_file(path)
    }

    /// Makes the entries of `dir` (files created, renamed or deleted in it) durable.
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        File::open(dir)?.sync_all()
    }

    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    /// The size of the file at `path` (a segment listed at open, without reading it).
    fn file_size(&self, path: &Path) -> std::io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }

    /// The paths of the entries in `dir`.
    fn list_dir(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.path()))
            .collect()
    }

    /// Opens (creating if missing) the folder's lock file.
    fn open_lock(&self, path: &Path) -> std::io::Result<File> {
        File::create(path)
    }

    /// Tries to take the exclusive advisory lock on `file`: `Ok(false)` when another process
    /// (or another open file of this one) holds it.
    fn try_lock(&self, file: &File) -> std::io::Result<bool> {
        match file.try_lock() {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// The real filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealIo;

impl QueueIo for RealIo {}
