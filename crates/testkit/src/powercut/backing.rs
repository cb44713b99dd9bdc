//! The backing directory: a plain tree of files and directories that always equals the
//! durable state of the model. Read whole at mount ([`load`]); changed only when something
//! becomes durable ([`write_file`], [`replace_file`], [`replace_dir`], [`remove`]).
//!
//! It lives on the host's real filesystem, whose own power never fails in a test, so these
//! writes are not synced: the host's page cache plays the role of the platters.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use super::PowercutError;

/// Ownership and permission bits of a loaded file or directory.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    /// Permission bits.
    pub perm: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// A tree read from the backing directory.
#[derive(Debug)]
pub enum Loaded {
    /// A regular file and its bytes.
    File {
        /// The whole file.
        bytes: Vec<u8>,
        /// Its metadata.
        meta: Meta,
    },
    /// A directory and its children.
    Dir {
        /// Children by name.
        children: Vec<(OsString, Loaded)>,
        /// Its metadata.
        meta: Meta,
    },
}

/// Reads the tree under `root` (created if missing). Anything but regular files and
/// directories is refused: the model has no symlinks or devices.
pub fn load(root: &Path) -> Result<Loaded, PowercutError> {
    fs::create_dir_all(root).map_err(|e| PowercutError::backing(root, e))?;
    load_at(root)
}

fn load_at(path: &Path) -> Result<Loaded, PowercutError> {
    let md = fs::symlink_metadata(path).map_err(|e| PowercutError::backing(path, e))?;
    let meta = Meta {
        perm: (md.mode() & 0o7777) as u16,
        uid: md.uid(),
        gid: md.gid(),
    };
    if md.is_file() {
        let bytes = fs::read(path).map_err(|e| PowercutError::backing(path, e))?;
        return Ok(Loaded::File { bytes, meta });
    }
    if !md.is_dir() {
        return Err(PowercutError::Unsupported {
            path: path.to_path_buf(),
        });
    }
    let mut children = Vec::new();
    for entry in fs::read_dir(path).map_err(|e| PowercutError::backing(path, e))? {
        let entry = entry.map_err(|e| PowercutError::backing(path, e))?;
        children.push((entry.file_name(), load_at(&entry.path())?));
    }
    Ok(Loaded::Dir { children, meta })
}

/// Makes the file at `path` hold `durable`, writing only what changed from offset `from` on.
pub fn write_file(path: &Path, durable: &[u8], from: usize) -> Result<(), PowercutError> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| PowercutError::backing(path, e))?;
    let tail = durable.get(from..).unwrap_or_default();
    file.write_all_at(tail, from as u64)
        .map_err(|e| PowercutError::backing(path, e))?;
    file.set_len(durable.len() as u64)
        .map_err(|e| PowercutError::backing(path, e))
}

/// Replaces whatever is at `path` with a file holding `durable`.
pub fn replace_file(path: &Path, durable: &[u8]) -> Result<(), PowercutError> {
    remove(path)?;
    fs::write(path, durable).map_err(|e| PowercutError::backing(path, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
        .map_err(|e| PowercutError::backing(path, e))
}

/// Replaces whatever is at `path` with an empty directory.
pub fn replace_dir(path: &Path) -> Result<(), PowercutError> {
    remove(path)?;
    fs::create_dir(path).map_err(|e| PowercutError::backing(path, e))
}

/// Removes the file or directory tree at `path`, if any.
pub fn remove(path: &Path) -> Result<(), PowercutError> {
    let result = match fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(PowercutError::backing(path, e)),
        _ => Ok(()),
    }
}
