//! A filesystem that loses power: the disk the queue's durability claims are tested on.
//!
//! `otelspool-powercutfs` mounts (FUSE) a view of a backing directory that behaves like a disk
//! with a volatile write cache. Everything is visible through the mount at once; only what was
//! made durable survives a power cut. The rules are the weakest that POSIX and Linux
//! filesystems allow, so a program that keeps its data here keeps it anywhere:
//!
//! | operation through the mount                  | durable (survives a cut) once ...       |
//! |----------------------------------------------|-----------------------------------------|
//! | `write`, `truncate`/`ftruncate`, `O_TRUNC`   | that file is `fsync`ed or `fdatasync`ed |
//! | `creat`/`open(O_CREAT)`, `mkdir`             | the parent directory is `fsync`ed       |
//! | `rename`                                     | each directory involved is `fsync`ed    |
//! | `unlink`, `rmdir`                            | the parent directory is `fsync`ed       |
//!
//! - `fsync`/`fdatasync` of a file makes its bytes and its size durable, and nothing else:
//!   not its name, not its directory.
//! - `fsync` of a directory makes its entries as they are now durable (the creates, renames
//!   and unlinks in it), and nothing else: not the bytes of the files they name, not the
//!   entries of its subdirectories, not its own name in its parent.
//!
//! So, after a cut:
//! - a file created (and even fsynced) in a directory that was not synced afterwards does not
//!   exist; a directory made by `mkdir -p` exists only if each parent was synced after it;
//! - a file whose name was synced but whose bytes were not is there with its last synced size,
//!   usually empty;
//! - a rename not followed by an `fsync` of the directory is undone: the old name is back,
//!   and so is the file it had replaced; an unsynced unlink is undone the same way;
//! - a truncate or write not followed by an `fsync` of the file is undone.
//!
//! Each operation is atomic with respect to a cut (a cut falls between two operations), and a
//! cut keeps nothing that was not made durable: no torn writes, no unsynced bytes that a real
//! disk might happen to have written. Permissions, owners and times live in memory only (the
//! backing tree gets 0644 files); hard links, symlinks, extended attributes, `fallocate` and
//! POSIX locks are not offered (`flock` works, kept by the kernel). Journaling filesystems are
//! kinder than this model (ext4 commits a new file's name with its first `fsync`); code that
//! survives this model does not depend on that kindness.
//!
//! # How
//! [`disk::Disk`] is the model: every inode has a volatile and a durable state (see its doc),
//! and after each operation the backing directory equals the durable tree ([`backing`]). A
//! cut ([`control`]: `POST /cut`) throws the volatile state away and fails every later
//! operation with `EIO`, until the process is stopped (`POST /stop`, or `umount`) and started
//! again on the same backing directory: what it then serves is exactly what survived.
//! [`fs`] is the thin FUSE glue (the `fuser` crate, mounted without libfuse).

pub mod backing;
pub mod control;
pub mod disk;
mod durable;
pub mod fs;
#[cfg(test)]
mod tests;
mod tree;

use std::path::{Path, PathBuf};

pub use control::{PowercutConfig, run};
pub use disk::{CutReport, Disk, DiskStats};

/// Why an operation of the model failed.
#[derive(Debug, thiserror::Error)]
pub enum PowercutError {
    /// The power was cut: every operation fails until the filesystem is started again.
    #[error("the power was cut; every operation fails until the filesystem is mounted again")]
    PoweredOff,
    /// No such file or directory.
    #[error("no such file or directory")]
    NotFound,
    /// The name is taken.
    #[error("the name is taken")]
    Exists,
    /// A directory was expected.
    #[error("not a directory")]
    NotDir,
    /// A file was expected.
    #[error("is a directory")]
    IsDir,
    /// The directory still has entries.
    #[error("directory not empty")]
    NotEmpty,
    /// The operation makes no sense here.
    #[error("invalid: {0}")]
    Invalid(&'static str),
    /// An offset or size beyond what memory can hold.
    #[error("offset or size too large")]
    TooLarge,
    /// The backing directory holds something the model has no place for (symlink, device).
    #[error("{}: only regular files and directories can be served", path.display())]
    Unsupported {
        /// The offending path.
        path: PathBuf,
    },
    /// Reading or writing the backing directory failed.
    #[error("backing directory {}: {source}", path.display())]
    Backing {
        /// The path in the backing directory.
        path: PathBuf,
        /// The host's error.
        source: std::io::Error,
    },
}

impl PowercutError {
    fn backing(path: &Path, source: std::io::Error) -> PowercutError {
        PowercutError::Backing {
            path: path.to_path_buf(),
            source,
        }
    }
}
