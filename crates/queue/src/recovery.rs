//! Start-up scan: rebuild the queue's index from its segment files after a clean stop or a crash.
//!
//! Rules: a frame counts only if its magic, length and checksum are all right and its id is
//! above the previous one. Damage in the middle of a segment is skipped by searching for the
//! next valid frame (the frame magic is a sync marker); damage with no valid frame after it is
//! a torn tail and is cut off the file. A file whose header is wrong is renamed `*.bad` and
//! left for an operator. Nothing here panics on any input.

use std::path::{Path, PathBuf};

use crate::error::OpenError;
use crate::format::{self, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};
use crate::io::QueueIo;
use crate::stats::RecoveryReport;

/// One valid frame found on disk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FoundFrame {
    pub id: u64,
    pub appended_at: u64,
    pub items: u32,
    pub len: u32,
    pub offset: u64,
}

/// One segment file as found on disk.
#[derive(Debug)]
pub(crate) struct FoundSegment {
    pub first_id: u64,
    pub path: PathBuf,
    pub file_len: u64,
    pub frames: Vec<FoundFrame>,
}

/// Everything the scan learned.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub segments: Vec<FoundSegment>,
    pub report: RecoveryReport,
    /// The highest record id seen anywhere, acknowledged or not.
    pub max_id: Option<u64>,
}

/// Scans every segment file in `dir`. Frames with ids below `watermark` are already
/// acknowledged and are not returned.
pub(crate) fn scan_dir(io: &dyn QueueIo, dir: &Path, watermark: u64) -> Result<Scan, OpenError> {
    let mut names = Vec::new();
    for path in io.list_dir(dir).map_err(|e| OpenError::io(dir, e))? {
        if let Some(first_id) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(format::parse_segment_file_name)
        {
            names.push((first_id, path));
        }
    }
    names.sort();
    let mut scan = Scan::default();
    let mut last_id: Option<u64> = None;
    for (first_id, path) in names {
        scan.report.segments += 1;
        let bytes = io.read(&path).map_err(|e| OpenError::io(&path, e))?;
        if let Err(reason) = format::check_segment_header(&bytes) {
            tracing::error!(path = %path.display(), %reason, "queue segment is unreadable; renamed to .bad and skipped");
            scan.report.bad_segments += 1;
            let bad = path.with_extension("seg.bad");
            io.rename(&path, &bad)
                .map_err(|e| OpenError::io(&path, e))?;
            continue;
        }
        let mut found = FoundSegment {
            first_id,
            path,
            file_len: bytes.len() as u64,
            frames: vec![],
        };
        let cut_at = scan_frames(&bytes, &mut last_id, &mut found, &mut scan.report);
        if let Some(cut_at) = cut_at {
            let cut = bytes.len() as u64 - cut_at;
            tracing::warn!(path = %found.path.display(), offset = cut_at, bytes = cut, "queue segment has a torn or damaged tail; cut it off");
            scan.report.truncated_bytes += cut;
            let file = io
                .open_write(&found.path)
                .map_err(|e| OpenError::io(&found.path, e))?;
            io.set_len(&file, cut_at)
                .map_err(|e| OpenError::io(&found.path, e))?;
            io.sync(&file).map_err(|e| OpenError::io(&found.path, e))?;
            found.file_len = cut_at;
        }
        found.frames.retain(|f| {
            let acked = f.id < watermark;
            scan.report.already_acked += u64::from(acked);
            !acked
        });
        scan.report.entries += found.frames.len() as u64;
        scan.report.items += found.frames.iter().map(|f| u64::from(f.items)).sum::<u64>();
        scan.segments.push(found);
    }
    scan.max_id = last_id;
    Ok(scan)
}

/// Walks the frames of one segment; returns the offset to cut the file at, if its tail is bad.
fn scan_frames(
    bytes: &[u8],
    last_id: &mut Option<u64>,
    seg: &mut FoundSegment,
    report: &mut RecoveryReport,
) -> Option<u64> {
    let mut pos = SEGMENT_HEADER_LEN as usize;
    while pos < bytes.len() {
        if let Some(frame) = valid_frame_at(bytes, pos, *last_id) {
            *last_id = Some(frame.id);
            pos += FRAME_HEADER_LEN + frame.len as usize;
            seg.frames.push(frame);
            continue;
        }
        match next_valid_frame(bytes, pos + 1, *last_id) {
            Some(next) => {
                tracing::warn!(path = %seg.path.display(), offset = pos, bytes = next - pos, "damaged bytes in queue segment; skipped to the next valid record");
                report.skipped_bytes += (next - pos) as u64;
                pos = next;
            }
            None => return Some(pos as u64),
        }
    }
    None
}

fn valid_frame_at(bytes: &[u8], pos: usize, last_id: Option<u64>) -> Option<FoundFrame> {
    let header = format::decode_header(&bytes[pos..])?;
    let end = pos
        .checked_add(FRAME_HEADER_LEN)?
        .checked_add(header.len as usize)?;
    let payload = bytes.get(pos + FRAME_HEADER_LEN..end)?;
    if !format::payload_matches(&header, payload) || last_id.is_some_and(|l| header.id <= l) {
        return None;
    }
    Some(FoundFrame {
        id: header.id,
        appended_at: header.appended_at,
        items: header.items,
        len: header.len,
        offset: pos as u64,
    })
}

fn next_valid_frame(bytes: &[u8], from: usize, last_id: Option<u64>) -> Option<usize> {
    let mut start = from;
    while start + FRAME_HEADER_LEN <= bytes.len() {
        let rel = bytes[start..]
            .windows(4)
            .position(|w| w == format::FRAME_MAGIC)?;
        let at = start + rel;
        if valid_frame_at(bytes, at, last_id).is_some() {
            return Some(at);
        }
        start = at + 1;
    }
    None
}
