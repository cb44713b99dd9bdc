//! Names: creating, removing and renaming directory entries, and the open handles that keep
//! an unnamed inode alive. Every change here is volatile until its directory is synced
//! ([`Disk::sync_dir`]).

use std::collections::BTreeMap;
use std::ffi::OsStr;

use super::PowercutError;
use super::disk::{Attr, Disk, Ino, Inode, Kind, Node, ROOT, Result};

impl Disk {
    /// Creates an empty file or a directory `name` in `parent` (volatile until `parent` is
    /// synced). Fails with `Exists` if the name is taken.
    pub fn create(
        &mut self,
        parent: Ino,
        name: &OsStr,
        kind: Kind,
        perm: u16,
        owner: (u32, u32),
    ) -> Result<Attr> {
        if self.entries(parent)?.contains_key(name) {
            return Err(PowercutError::Exists);
        }
        let node = match kind {
            Kind::File => Node::File {
                data: Vec::new(),
                durable: Vec::new(),
                dirty_from: None,
            },
            Kind::Dir => Node::Dir {
                entries: BTreeMap::new(),
                durable: BTreeMap::new(),
                parent,
            },
        };
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes
            .insert(ino, Inode::new(node, perm, owner.0, owner.1));
        self.entries_mut(parent)?.insert(name.to_os_string(), ino);
        self.getattr(ino)
    }

    /// Removes the file `name` from `parent` (volatile until `parent` is synced).
    pub fn unlink(&mut self, parent: Ino, name: &OsStr) -> Result<()> {
        let ino = *self
            .entries(parent)?
            .get(name)
            .ok_or(PowercutError::NotFound)?;
        if self.getattr(ino)?.kind == Kind::Dir {
            return Err(PowercutError::IsDir);
        }
        self.entries_mut(parent)?.remove(name);
        self.reap(ino);
        Ok(())
    }

    /// Removes the empty directory `name` from `parent` (volatile until `parent` is synced).
    pub fn rmdir(&mut self, parent: Ino, name: &OsStr) -> Result<()> {
        let ino = *self
            .entries(parent)?
            .get(name)
            .ok_or(PowercutError::NotFound)?;
        if !self.entries(ino)?.is_empty() {
            return Err(PowercutError::NotEmpty);
        }
        self.entries_mut(parent)?.remove(name);
        self.reap(ino);
        Ok(())
    }

    /// Renames `parent/name` to `new_parent/new_name`, replacing a file or an empty directory
    /// there unless `no_replace` (volatile until both directories are synced).
    pub fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<()> {
        let ino = *self
            .entries(parent)?
            .get(name)
            .ok_or(PowercutError::NotFound)?;
        let kind = self.getattr(ino)?.kind;
        if kind == Kind::Dir && self.is_ancestor(ino, new_parent)? {
            return Err(PowercutError::Invalid(
                "a directory cannot move into itself",
            ));
        }
        let replaced = self.entries(new_parent)?.get(new_name).copied();
        if let Some(old) = replaced {
            if old == ino {
                return Ok(());
            }
            if no_replace {
                return Err(PowercutError::Exists);
            }
            match (kind, self.getattr(old)?.kind) {
                (Kind::File, Kind::Dir) => return Err(PowercutError::IsDir),
                (Kind::Dir, Kind::File) => return Err(PowercutError::NotDir),
                (Kind::Dir, Kind::Dir) if !self.entries(old)?.is_empty() => {
                    return Err(PowercutError::NotEmpty);
                }
                _ => {}
            }
        }
        self.entries_mut(parent)?.remove(name);
        self.entries_mut(new_parent)?
            .insert(new_name.to_os_string(), ino);
        if let Node::Dir { parent: p, .. } = &mut self.inode_mut(ino)?.node {
            *p = new_parent;
        }
        if let Some(old) = replaced {
            self.reap(old);
        }
        Ok(())
    }

    fn is_ancestor(&self, dir: Ino, mut of: Ino) -> Result<bool> {
        loop {
            if of == dir {
                return Ok(true);
            }
            if of == ROOT {
                return Ok(false);
            }
            of = self.parent(of)?;
        }
    }

    /// Notes one more open handle on `ino` (it outlives its names until released).
    pub fn open_handle(&mut self, ino: Ino) -> Result<()> {
        self.inode_mut(ino)?.open += 1;
        Ok(())
    }

    /// Notes a handle on `ino` closed.
    pub fn release(&mut self, ino: Ino) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.open = inode.open.saturating_sub(1);
        }
        self.reap(ino);
    }

    /// Forgets `ino` once nothing can reach it: no name now, no durable name, no open handle.
    pub(super) fn reap(&mut self, ino: Ino) {
        if ino == ROOT || self.inodes.get(&ino).is_none_or(|i| i.open > 0) {
            return;
        }
        let named = self.inodes.values().any(|i| match &i.node {
            Node::Dir {
                entries, durable, ..
            } => entries.values().chain(durable.values()).any(|c| *c == ino),
            Node::File { .. } => false,
        });
        if !named {
            self.inodes.remove(&ino);
        }
    }
}
