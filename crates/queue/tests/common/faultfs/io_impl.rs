//! [`QueueIo`] for [`FaultFs`]: each call is counted, checked against the armed faults, done
//! on the real filesystem, and reflected in the durability model.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use otelspool_queue::QueueIo;

use super::{Fault, FaultFs, Op, fd_path, ino, live_bytes};

fn error(f: &Fault) -> std::io::Error {
    std::io::Error::from_raw_os_error(f.errno)
}

impl QueueIo for FaultFs {
    fn create(&self, path: &Path) -> std::io::Result<File> {
        if let Some(f) = self.check(Op::Create, Some(path)) {
            return Err(error(&f));
        }
        let file = self.real.create(path)?;
        self.model().new_file(ino(&file));
        Ok(file)
    }

    fn create_or_truncate(&self, path: &Path) -> std::io::Result<File> {
        if let Some(f) = self.check(Op::CreateOrTruncate, Some(path)) {
            return Err(error(&f));
        }
        let existed = path.exists();
        let file = self.real.create_or_truncate(path)?;
        let mut m = self.model();
        if existed {
            m.id_of(ino(&file));
        } else {
            m.new_file(ino(&file));
        }
        Ok(file)
    }

    fn open_write(&self, path: &Path) -> std::io::Result<File> {
        match self.check(Op::OpenWrite, Some(path)) {
            Some(f) => Err(error(&f)),
            None => self.real.open_write(path),
        }
    }

    fn open_read(&self, path: &Path) -> std::io::Result<File> {
        match self.check(Op::OpenRead, Some(path)) {
            Some(f) => Err(error(&f)),
            None => self.real.open_read(path),
        }
    }

    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        match self.check(Op::Read, Some(path)) {
            Some(f) => Err(error(&f)),
            None => self.real.read(path),
        }
    }

    fn read_at(&self, file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        match self.check_fd(Op::ReadAt, file) {
            Some(f) => Err(error(&f)),
            None => self.real.read_at(file, buf, offset),
        }
    }

    fn write(&self, file: &mut File, buf: &[u8]) -> std::io::Result<()> {
        let start = file.metadata()?.len();
        if let Some(f) = self.check_fd(Op::Write, file) {
            if let Some(n) = f.partial {
                file.write_all(&buf[..n.min(buf.len())])?;
            }
            return Err(error(&f));
        }
        self.real.write(file, buf)?;
        self.rewritten(file, start, start + buf.len() as u64);
        Ok(())
    }

    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
        if let Some(f) = self.check_fd(Op::WriteAt, file) {
            return Err(error(&f));
        }
        self.real.write_at(file, buf, offset)?;
        self.rewritten(file, offset, offset + buf.len() as u64);
        Ok(())
    }

    fn sync(&self, file: &File) -> std::io::Result<()> {
        let fault = self.check_fd(Op::Sync, file);
        let live = live_bytes(file);
        let mut m = self.model();
        let id = m.id_of(ino(file));
        let old = m.durable_data.get(&id).cloned().unwrap_or_default();
        if let Some(f) = fault {
            // Everything from the first byte that differs from the durable copy is lost.
            let first_diff = (0..live.len().max(old.len()))
                .find(|&i| live.get(i) != old.get(i))
                .unwrap_or(live.len());
            if first_diff < live.len() {
                m.lost
                    .entry(id)
                    .or_default()
                    .push((first_diff as u64, live.len() as u64));
                if self.drop_on_failed_sync.load(Ordering::SeqCst) {
                    let zeros = vec![0u8; live.len() - first_diff];
                    OpenOptions::new()
                        .write(true)
                        .open(fd_path(file))
                        .and_then(|w| w.write_all_at(&zeros, first_diff as u64))
                        .expect("drop the lost bytes from the live file");
                }
            }
            return Err(error(&f));
        }
        drop(m);
        self.real.sync(file)?;
        let mut m = self.model();
        let mut durable = live;
        for &(a, b) in m.lost.get(&id).map(Vec::as_slice).unwrap_or(&[]) {
            for i in a as usize..(b as usize).min(durable.len()) {
                durable[i] = old.get(i).copied().unwrap_or(0);
            }
        }
        m.durable_data.insert(id, durable);
        Ok(())
    }

    fn set_len(&self, file: &File, len: u64) -> std::io::Result<()> {
        match self.check_fd(Op::SetLen, file) {
            Some(f) => Err(error(&f)),
            None => self.real.set_len(file, len),
        }
    }

    fn file_len(&self, file: &File) -> std::io::Result<u64> {
        match self.check_fd(Op::FileLen, file) {
            Some(f) => Err(error(&f)),
            None => self.real.file_len(file),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        match self.check(Op::Rename, Some(from)) {
            Some(f) => Err(error(&f)),
            None => self.real.rename(from, to),
        }
    }

    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        match self.check(Op::RemoveFile, Some(path)) {
            Some(f) => Err(error(&f)),
            None => self.real.remove_file(path),
        }
    }

    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        if let Some(f) = self.check(Op::SyncDir, Some(dir)) {
            return Err(error(&f));
        }
        self.real.sync_dir(dir)?;
        if dir == self.dir {
            let entries = Self::entries(dir);
            let mut m = self.model();
            let mut names = BTreeMap::new();
            for (name, path) in entries {
                if let Ok(meta) = std::fs::metadata(&path) {
                    names.insert(name, m.id_of(meta.ino()));
                }
            }
            m.durable_names = names;
        }
        Ok(())
    }

    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        match self.check(Op::CreateDirAll, Some(dir)) {
            Some(f) => Err(error(&f)),
            None => self.real.create_dir_all(dir),
        }
    }

    fn list_dir(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        match self.check(Op::ListDir, Some(dir)) {
            Some(f) => Err(error(&f)),
            None => self.real.list_dir(dir),
        }
    }

    fn open_lock(&self, path: &Path) -> std::io::Result<File> {
        match self.check(Op::OpenLock, Some(path)) {
            Some(f) => Err(error(&f)),
            None => self.real.open_lock(path),
        }
    }

    fn try_lock(&self, file: &File) -> std::io::Result<bool> {
        match self.check_fd(Op::TryLock, file) {
            Some(f) => Err(error(&f)),
            None => self.real.try_lock(file),
        }
    }
}
