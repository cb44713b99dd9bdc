//! The ack log: one acknowledged record id per line, written by a dedicated thread.
//!
//! Jobs hand over the ids of each acknowledged request as one buffer; the thread appends it
//! with a single `write_all` on an unbuffered file, so every line is in the kernel's hands as
//! soon as it is written and a request's ids are never split by another request's.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use anyhow::Context as _;

/// Handle to the writer thread; clone [`AckLog::sender`] into every job.
#[derive(Debug)]
pub struct AckLog {
    sender: Option<mpsc::Sender<Vec<u8>>>,
    thread: Option<JoinHandle<std::io::Result<u64>>>,
}

/// Where jobs send acknowledged ids (a no-op when there is no ack log).
#[derive(Clone, Debug)]
pub struct AckSender(Option<mpsc::Sender<Vec<u8>>>);

impl AckSender {
    /// Appends these ids, one per line.
    pub fn acked(&self, ids: &[String]) {
        if let Some(sender) = &self.0 {
            let mut buffer = Vec::with_capacity(ids.iter().map(|id| id.len() + 1).sum());
            for id in ids {
                buffer.extend_from_slice(id.as_bytes());
                buffer.push(b'\n');
            }
            // A send fails only if the writer thread died; its error is reported by `finish`.
            let _ = sender.send(buffer);
        }
    }
}

impl AckLog {
    /// Creates (truncating) the ack log at `path`, or a no-op log for `None`.
    pub fn create(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(AckLog {
                sender: None,
                thread: None,
            });
        };
        let mut file: File = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
            .with_context(|| format!("creating the ack log {}", path.display()))?;
        let (sender, receiver) = mpsc::channel::<Vec<u8>>();
        let thread = std::thread::Builder::new()
            .name("ack-log".into())
            .spawn(move || {
                let mut lines = 0u64;
                for buffer in receiver {
                    file.write_all(&buffer)?;
                    lines += bytecount(&buffer);
                }
                file.sync_all()?;
                Ok(lines)
            })
            .context("starting the ack log thread")?;
        Ok(AckLog {
            sender: Some(sender),
            thread: Some(thread),
        })
    }

    /// A sender for one job.
    pub fn sender(&self) -> AckSender {
        AckSender(self.sender.clone())
    }

    /// Closes the log once every sender is gone and returns the number of lines written.
    pub fn finish(mut self) -> anyhow::Result<u64> {
        drop(self.sender.take());
        match self.thread.take() {
            None => Ok(0),
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow::anyhow!("the ack log thread panicked"))?
                .context("writing the ack log"),
        }
    }
}

fn bytecount(buffer: &[u8]) -> u64 {
    buffer.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_id_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acks");
        let log = AckLog::create(Some(&path)).unwrap();
        let a = log.sender();
        a.acked(&["r-0001-0".into(), "r-0001-1".into()]);
        log.sender().acked(&["r-0002-0".into()]);
        drop(a);
        assert_eq!(log.finish().unwrap(), 3);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "r-0001-0\nr-0001-1\nr-0002-0\n"
        );
    }
}
