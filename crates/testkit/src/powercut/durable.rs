//! Durability: what `fsync` of a file and of a directory make durable, and how the backing
//! directory is kept equal to the durable tree after each of them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::PowercutError;
use super::backing;
use super::disk::{Disk, Ino, Node, ROOT, Result};

impl Disk {
    /// `fsync`/`fdatasync` of file `ino`: its bytes and size become durable (and are written
    /// to the backing file wherever the durable tree links it). Its name does not.
    pub fn sync_file(&mut self, ino: Ino) -> Result<()> {
        self.stats.file_syncs += 1;
        let Node::File {
            data,
            durable,
            dirty_from,
        } = &mut self.inode_mut(ino)?.node
        else {
            return Err(PowercutError::IsDir);
        };
        let Some(from) = dirty_from.take() else {
            return Ok(());
        };
        durable.truncate(from);
        durable.extend_from_slice(&data[from..]);
        let paths = self.durable_paths(ino);
        if let Some(Node::File { durable, .. }) = self.inodes.get(&ino).map(|i| &i.node) {
            for path in paths {
                backing::write_file(&self.backing.join(path), durable, from)?;
            }
        }
        Ok(())
    }

    /// `fsync` of directory `dir`: its entries as they are now become durable (creates,
    /// renames and unlinks in it, whatever the state of the inodes they name).
    pub fn sync_dir(&mut self, dir: Ino) -> Result<()> {
        self.stats.dir_syncs += 1;
        let Node::Dir {
            entries, durable, ..
        } = &mut self.inode_mut(dir)?.node
        else {
            return Err(PowercutError::NotDir);
        };
        if entries == durable {
            return Ok(());
        }
        let old = std::mem::replace(durable, entries.clone());
        let new = entries.clone();
        for path in self.durable_paths(dir) {
            let at = self.backing.join(path);
            for (name, ino) in &old {
                if new.get(name) != Some(ino) {
                    backing::remove(&at.join(name))?;
                }
            }
            for (name, ino) in &new {
                if old.get(name) != Some(ino) {
                    self.project(*ino, &at.join(name), &mut HashSet::new())?;
                }
            }
        }
        for (_, ino) in old {
            self.reap(ino);
        }
        Ok(())
    }

    /// Writes the durable subtree of `ino` at `path` in the backing directory.
    fn project(&self, ino: Ino, path: &Path, seen: &mut HashSet<Ino>) -> Result<()> {
        match self.inodes.get(&ino).map(|i| &i.node) {
            Some(Node::File { durable, .. }) => backing::replace_file(path, durable)?,
            Some(Node::Dir { durable, .. }) if seen.insert(ino) => {
                backing::replace_dir(path)?;
                for (name, child) in durable {
                    self.project(*child, &path.join(name), seen)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Where `ino` sits in the durable tree (relative paths; none if it is not durably linked).
    fn durable_paths(&self, ino: Ino) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![(ROOT, PathBuf::new())];
        let mut seen = HashSet::new();
        while let Some((dir, path)) = stack.pop() {
            if dir == ino {
                found.push(path.clone());
            }
            if !seen.insert(dir) {
                continue;
            }
            if let Some(Node::Dir { durable, .. }) = self.inodes.get(&dir).map(|i| &i.node) {
                for (name, child) in durable {
                    stack.push((*child, path.join(name)));
                }
            }
        }
        found
    }
}
