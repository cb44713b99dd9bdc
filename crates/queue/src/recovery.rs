//! Start-up scan of one segment file: find its valid frames, cut a torn tail, set aside a file
//! that is not a segment. The background indexer (`crate::index`) runs it on every segment
//! found at open; `read_frames` re-reads a segment already scanned, with no side effects.
//!
//! Rules: a frame counts only if its magic, length and checksum are all right and its id is
//! above the previous one (and not below the segment's first id, which its name gives). Damage
//! in the middle of a segment is skipped by searching for the next valid frame (the frame magic
//! is a sync marker); damage with no valid frame after it is a torn tail and is cut off the
//! file. A file whose header is wrong is renamed `*.bad` and left for an operator. Nothing here
//! panics on any input.

use std::path::{Path, PathBuf};

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

/// One segment file as listed at open: its first id (from its name), path and size.
#[derive(Debug, Clone)]
pub(crate) struct ListedSegment {
    pub first_id: u64,
    pub path: PathBuf,
    pub file_len: u64,
}

/// What scanning one segment found.
#[derive(Debug)]
pub(crate) struct ScannedSegment {
    /// The file's length after any cut.
    pub file_len: u64,
    /// Frames with ids at or above the watermark, in order.
    pub frames: Vec<FoundFrame>,
    /// The highest id of any valid frame, acknowledged or not.
    pub max_id: Option<u64>,
}

/// Lists the segment files in `dir` (names and sizes only; nothing is read), oldest first.
pub(crate) fn list_segments(io: &dyn QueueIo, dir: &Path) -> std::io::Result<Vec<ListedSegment>> {
    let mut out = Vec::new();
    for path in io.list_dir(dir)? {
        if let Some(first_id) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(format::parse_segment_file_name)
        {
            let file_len = io.file_size(&path)?;
            out.push(ListedSegment {
                first_id,
                path,
                file_len,
            });
        }
    }
    out.sort_by_key(|s| s.first_id);
    Ok(out)
}

/// Scans one segment as recovery always has: counts what it finds in `report`, cuts a torn
/// tail, renames a file with a bad header to `*.seg.bad` (then returns `None`). Frames with
/// ids below `watermark` are already acknowledged and are not returned.
pub(crate) fn scan_segment(
    io: &dyn QueueIo,
    seg: &ListedSegment,
    watermark: u64,
    report: &mut RecoveryReport,
) -> std::io::Result<Option<ScannedSegment>> {
    let path = &seg.path;
    let bytes = io.read(path)?;
    if let Err(reason) = format::check_segment_header(&bytes) {
        tracing::error!(path = %path.display(), %reason, "queue segment is unreadable; renamed to .bad and skipped");
        report.bad_segments += 1;
        io.rename(path, &path.with_extension("seg.bad"))?;
        return Ok(None);
    }
    let mut frames = Vec::new();
    let mut last_id = seg.first_id.checked_sub(1);
    let cut_at = scan_frames(&bytes, path, &mut last_id, &mut frames, Some(report));
    let mut file_len = bytes.len() as u64;
    if let Some(cut_at) = cut_at {
        let cut = file_len - cut_at;
        tracing::warn!(path = %path.display(), offset = cut_at, bytes = cut, "queue segment has a torn or damaged tail; cut it off");
        report.truncated_bytes += cut;
        let file = io.open_write(path)?;
        io.set_len(&file, cut_at)?;
        io.sync(&file)?;
        file_len = cut_at;
    }
    let max_id = frames.last().map(|f| f.id);
    frames.retain(|f| {
        let acked = f.id < watermark;
        report.already_acked += u64::from(acked);
        !acked
    });
    report.entries += frames.len() as u64;
    report.items += frames.iter().map(|f| u64::from(f.items)).sum::<u64>();
    Ok(Some(ScannedSegment {
        file_len,
        frames,
        max_id,
    }))
}

/// Re-reads the valid frames with ids in `from..end` of a segment scanned before; counts,
/// cuts and renames nothing (a scan already did, and the writer never touches old segments).
pub(crate) fn read_frames(
    io: &dyn QueueIo,
    path: &Path,
    first_id: u64,
    from: u64,
    end: u64,
) -> std::io::Result<Vec<FoundFrame>> {
    let bytes = io.read(path)?;
    let mut frames = Vec::new();
    if format::check_segment_header(&bytes).is_ok() {
        let mut last_id = first_id.checked_sub(1);
        scan_frames(&bytes, path, &mut last_id, &mut frames, None);
    }
    frames.retain(|f| (from..end).contains(&f.id));
    Ok(frames)
}

/// Walks the frames of one segment; returns the offset to cut the file at, if its tail is bad.
/// Damage skipped is counted in `report` when there is one.
fn scan_frames(
    bytes: &[u8],
    path: &Path,
    last_id: &mut Option<u64>,
    frames: &mut Vec<FoundFrame>,
    mut report: Option<&mut RecoveryReport>,
) -> Option<u64> {
    let mut pos = SEGMENT_HEADER_LEN as usize;
    while pos < bytes.len() {
        if let Some(frame) = valid_frame_at(bytes, pos, *last_id) {
            *last_id = Some(frame.id);
            pos += FRAME_HEADER_LEN + frame.len as usize;
            frames.push(frame);
            continue;
        }
        match next_valid_frame(bytes, pos + 1, *last_id) {
            Some(next) => {
                if let Some(report) = report.as_deref_mut() {
                    tracing::warn!(path = %path.display(), offset = pos, bytes = next - pos, "damaged bytes in queue segment; skipped to the next valid record");
                    report.skipped_bytes += (next - pos) as u64;
                }
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
