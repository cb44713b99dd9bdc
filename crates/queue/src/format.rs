//! The on-disk byte layout: segment headers, record frames and the ack ledger.
//!
//! Everything is little-endian. See the crate doc for the picture; this module is the only
//! place that knows the offsets.

use bytes::Bytes;

/// First 8 bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"OSPQSEG1";
/// Length of the segment header: magic (8) + format version (4) + reserved (4).
pub const SEGMENT_HEADER_LEN: u64 = 16;
/// The segment format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Sync marker that starts every record frame; lets recovery find the next frame after damage.
pub const FRAME_MAGIC: [u8; 4] = *b"OSQR";
/// Frame header: magic 4, len 4, crc 4, id 8, appended_at 8, items 4 = 32 bytes.
pub const FRAME_HEADER_LEN: usize = 32;
/// Largest payload a frame may carry (guards against a corrupt length field).
pub const MAX_PAYLOAD_LEN: u32 = 256 * 1024 * 1024;
/// Ledger file, version 2: magic 8, watermark 8, next id 8, crc 4.
pub const LEDGER_MAGIC: [u8; 8] = *b"OSPQLED2";
/// Length of a version 2 ledger file.
pub const LEDGER_LEN: usize = 28;
/// Version 1 ledger (watermark only), still read.
const LEDGER_V1_MAGIC: [u8; 8] = *b"OSPQLED1";
const LEDGER_V1_LEN: usize = 20;

/// What the ledger records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ledger {
    /// Every id below this is acknowledged.
    pub watermark: u64,
    /// No id below this will be handed out again.
    pub next_id: u64,
}

/// The header of one record frame, as read back from disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length in bytes.
    pub len: u32,
    /// CRC-32 over `len`, `id`, `appended_at`, `items` and the payload.
    pub crc: u32,
    /// Monotonic record id, unique for the life of the queue directory.
    pub id: u64,
    /// Wall-clock time of the append, nanoseconds since the Unix epoch.
    pub appended_at: u64,
    /// Number of telemetry items (log records, spans, points) in the payload.
    pub items: u32,
}

/// The segment header bytes.
pub fn segment_header() -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h
}

/// Checks a segment header; returns the reason it is unusable, if it is.
pub fn check_segment_header(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < SEGMENT_HEADER_LEN as usize {
        return Err(format!("segment header truncated ({} bytes)", bytes.len()));
    }
    if bytes[..8] != SEGMENT_MAGIC {
        return Err("not an otelspool queue segment (bad magic)".to_string());
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != FORMAT_VERSION {
        return Err(format!("unsupported segment format version {version}"));
    }
    Ok(())
}

fn frame_crc(len: u32, id: u64, appended_at: u64, items: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(&id.to_le_bytes());
    h.update(&appended_at.to_le_bytes());
    h.update(&items.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Appends one encoded frame to `out`.
pub fn encode_frame(out: &mut Vec<u8>, id: u64, appended_at: u64, items: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    let crc = frame_crc(len, id, appended_at, items, payload);
    out.reserve(FRAME_HEADER_LEN + payload.len());
    out.extend_from_slice(&FRAME_MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&appended_at.to_le_bytes());
    out.extend_from_slice(&items.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Parses a frame header; `None` when the magic or the length field is implausible.
pub fn decode_header(bytes: &[u8]) -> Option<FrameHeader> {
    if bytes.len() < FRAME_HEADER_LEN || bytes[..4] != FRAME_MAGIC {
        return None;
    }
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let header = FrameHeader {
        len: u32_at(4),
        crc: u32_at(8),
        id: u64_at(12),
        appended_at: u64_at(20),
        items: u32_at(28),
    };
    (header.len <= MAX_PAYLOAD_LEN).then_some(header)
}

/// True when `payload` matches the checksum in `header`.
pub fn payload_matches(header: &FrameHeader, payload: &[u8]) -> bool {
    payload.len() == header.len as usize
        && frame_crc(
            header.len,
            header.id,
            header.appended_at,
            header.items,
            payload,
        ) == header.crc
}

/// Decodes a whole frame (header + payload) at the start of `bytes`.
pub fn decode_frame(bytes: &[u8]) -> Option<(FrameHeader, Bytes)> {
    let header = decode_header(bytes)?;
    let end = FRAME_HEADER_LEN.checked_add(header.len as usize)?;
    let payload = bytes.get(FRAME_HEADER_LEN..end)?;
    payload_matches(&header, payload).then(|| (header, Bytes::copy_from_slice(payload)))
}

/// Encodes the ack ledger.
pub fn encode_ledger(ledger: Ledger) -> [u8; LEDGER_LEN] {
    let mut out = [0u8; LEDGER_LEN];
    out[..8].copy_from_slice(&LEDGER_MAGIC);
    out[8..16].copy_from_slice(&ledger.watermark.to_le_bytes());
    out[16..24].copy_from_slice(&ledger.next_id.to_le_bytes());
    let crc = crc32fast::hash(&out[..24]);
    out[24..28].copy_from_slice(&crc.to_le_bytes());
    out
}

fn u64_at(bytes: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[i..i + 8]);
    u64::from_le_bytes(w)
}

/// Decodes the ack ledger (version 2, or version 1 whose next id is its watermark); `None`
/// when it is damaged (treated as "nothing acknowledged").
pub fn decode_ledger(bytes: &[u8]) -> Option<Ledger> {
    let (magic, body) = match bytes.len() {
        LEDGER_LEN => (LEDGER_MAGIC, 24),
        LEDGER_V1_LEN => (LEDGER_V1_MAGIC, 16),
        _ => return None,
    };
    if bytes[..8] != magic {
        return None;
    }
    let crc = u32::from_le_bytes([
        bytes[body],
        bytes[body + 1],
        bytes[body + 2],
        bytes[body + 3],
    ]);
    if crc32fast::hash(&bytes[..body]) != crc {
        return None;
    }
    let watermark = u64_at(bytes, 8);
    let next_id = if body == 24 {
        u64_at(bytes, 16)
    } else {
        watermark
    };
    Some(Ledger { watermark, next_id })
}

/// The file name of the segment whose first record id is `first_id`.
pub fn segment_file_name(first_id: u64) -> String {
    format!("{first_id:020}.seg")
}

/// The first record id encoded in a segment file name, if it is one.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".seg")?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trips_and_detects_flipped_bits() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, 42, 7, 3, b"hello");
        let (h, p) = decode_frame(&buf).expect("valid frame");
        assert_eq!(
            (h.id, h.appended_at, h.items, &p[..]),
            (42, 7, 3, &b"hello"[..])
        );
        for i in 4..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x01;
            assert!(
                decode_frame(&bad).is_none(),
                "flip at byte {i} not detected"
            );
        }
    }

    #[test]
    fn ledger_round_trips_and_rejects_damage() {
        let ledger = Ledger {
            watermark: 123,
            next_id: 456,
        };
        let l = encode_ledger(ledger);
        assert_eq!(decode_ledger(&l), Some(ledger));
        let mut v1 = Vec::from(*b"OSPQLED1");
        v1.extend_from_slice(&77u64.to_le_bytes());
        v1.extend_from_slice(&crc32fast::hash(&v1).to_le_bytes());
        assert_eq!(
            decode_ledger(&v1),
            Some(Ledger {
                watermark: 77,
                next_id: 77
            })
        );
        let mut bad = l;
        bad[9] ^= 1;
        assert_eq!(decode_ledger(&bad), None);
    }

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(parse_segment_file_name(&segment_file_name(99)), Some(99));
        assert_eq!(parse_segment_file_name("12.seg"), None);
        assert_eq!(parse_segment_file_name("ledger"), None);
    }
}
