//! The filesystem operations the I/O thread performs on segment files, behind a small trait so
//! tests can inject faults (a full disk, a failing fsync) without a real broken disk.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Segment-file operations. The default methods do the real thing.
pub trait QueueIo: Send + Sync + Debug {
    /// Creates a new segment file for appending (fails if it exists).
    fn create(&self, path: &Path) -> std::io::Result<File> {
        OpenOptions::new().create_new(true).append(true).open(path)
    }

    /// Appends `buf` to `file`.
    fn write(&self, file: &mut File, buf: &[u8]) -> std::io::Result<()> {
        file.write_all(buf)
    }

    /// Makes what was written durable.
    fn sync(&self, file: &File) -> std::io::Result<()> {
        file.sync_data()
    }
}

/// The real filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealIo;

impl QueueIo for RealIo {}
