//! Hooks for a record-level observer of the queue (otelspool's job ledger), off by default.
//!
//! With an observer, the queue (1) keeps the files of acknowledged segments until the observer
//! releases their ids ([`QueueObserver::retain_from`]), so an observer that persists its own
//! counts less often than records are acknowledged can re-read, after a crash, what was
//! acknowledged since its last snapshot; (2) hands the observer the records `drop_oldest` is
//! about to delete, before their file goes ([`QueueObserver::dropping`]); and (3) lets it read
//! a queue folder before it is opened ([`peek_dir`]), to learn what is still there.
//!
//! Without an observer nothing changes: no retention, no extra reads.

use std::path::Path;

use bytes::Bytes;

use crate::format;
use crate::io::QueueIo;

/// Watches records leave the queue. Called from the queue's I/O thread; must not call back
/// into the queue's append.
pub trait QueueObserver: Send + Sync + std::fmt::Debug {
    /// Segment files holding any id at or above this are kept after they are fully
    /// acknowledged, until this value rises past them.
    fn retain_from(&self) -> u64;
    /// `when_full: drop_oldest` is about to delete these unread records (id, payload). When
    /// this returns, the observer has made what it needs durable.
    fn dropping(&self, records: &[(u64, Bytes)]);
}

/// What [`peek_dir`] found in a queue folder.
#[derive(Debug, Default)]
pub struct Peek {
    /// The ack ledger's watermark: every id below it was acknowledged (or dropped).
    pub watermark: u64,
    /// Intact records with ids at or above the asked-for id, in id order (id, payload).
    pub records: Vec<(u64, Bytes)>,
}

/// Reads a queue folder that is not open: the ack ledger's watermark, and every intact record
/// (magic, length and checksum right) whose id is at least `from`. A missing folder is empty.
/// Damaged bytes are skipped to the next frame magic, as recovery does.
pub fn peek_dir(io: &dyn QueueIo, dir: &Path, from: u64) -> std::io::Result<Peek> {
    let mut peek = Peek::default();
    let paths = match io.list_dir(dir) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(peek),
        Err(e) => return Err(e),
    };
    if let Ok(bytes) = io.read(&dir.join("ledger")) {
        peek.watermark = format::decode_ledger(&bytes).map_or(0, |l| l.watermark);
    }
    let mut segments: Vec<(u64, &Path)> = paths
        .iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            Some((format::parse_segment_file_name(name)?, p.as_path()))
        })
        .collect();
    segments.sort_unstable_by_key(|s| s.0);
    for (_, path) in segments {
        let bytes = io.read(path)?;
        if format::check_segment_header(&bytes).is_err() {
            continue;
        }
        let mut at = format::SEGMENT_HEADER_LEN as usize;
        while at + format::FRAME_HEADER_LEN <= bytes.len() {
            match format::decode_frame(&bytes[at..]) {
                Some((h, payload)) => {
                    at += format::FRAME_HEADER_LEN + h.len as usize;
                    let newer = peek.records.last().is_none_or(|r| r.0 < h.id);
                    if h.id >= from && newer {
                        peek.records.push((h.id, payload));
                    }
                }
                None => {
                    at += 1;
                    while at + 4 <= bytes.len() && bytes[at..at + 4] != format::FRAME_MAGIC {
                        at += 1;
                    }
                }
            }
        }
    }
    Ok(peek)
}
