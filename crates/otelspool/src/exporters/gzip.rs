//! gzip (RFC 1952) with one deflate state kept per thread and reset between bodies.
//!
//! `flate2::write::GzEncoder` builds a new deflate state for every body: with zlib-rs that is
//! about 300 KB allocated and zeroed each time (half of all user-space instructions when
//! batches are small, 5 % flat out with batches of 1,024 records, by callgrind; and fresh
//! pages for the kernel to fault in). Here the state (`flate2::Compress` in zlib's gzip mode,
//! which writes the header and the CRC-32 and length trailer itself) is kept in a thread
//! local and `reset` between bodies, which only clears its hash table. flate2's gzip writer
//! cannot take a state it did not make, hence this module.

use std::cell::RefCell;
use std::io;

use flate2::{Compress, FlushCompress, Status};

thread_local! {
    /// This thread's deflate state and the level it was made for.
    static STATE: RefCell<Option<(u32, Compress)>> = const { RefCell::new(None) };
}

/// zlib's largest window (32 KiB), as flate2's gzip writer uses.
const WINDOW_BITS: u8 = 15;

/// `body` gzipped at `level` (0-9).
pub fn compress(body: &[u8], level: u32) -> io::Result<Vec<u8>> {
    STATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let compress = match slot.as_mut() {
            Some((l, c)) if *l == level => {
                c.reset();
                c
            }
            _ => {
                let made = Compress::new_gzip(flate2::Compression::new(level), WINDOW_BITS);
                &mut slot.insert((level, made)).1
            }
        };
        deflate_all(compress, body)
    })
}

fn deflate_all(c: &mut Compress, body: &[u8]) -> io::Result<Vec<u8>> {
    // A batch of log records shrinks 10-20x: start with a tenth.
    let mut out = Vec::with_capacity(body.len() / 8 + 64);
    let start_in = c.total_in();
    loop {
        let done = (c.total_in() - start_in) as usize;
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(4096));
        }
        let status = c
            .compress_vec(&body[done..], &mut out, FlushCompress::Finish)
            .map_err(io::Error::other)?;
        if status == Status::StreamEnd {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(super) mod tests {
    use std::io::Read;

    use super::*;

    /// `b` inflated by flate2's gzip reader (which checks the CRC and the length).
    pub(in crate::exporters) fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// `n` short ComfyUI-like log lines, varied by `salt`: a body that compresses as batches do.
    pub(in crate::exporters) fn body(n: usize, salt: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!("job-{} step {i} seed {salt};", i % 7).into_bytes())
            .collect()
    }

    /// Scenario: on one thread, bodies of different sizes (empty, one byte, a few KB, a
    /// 1.5 MB body whose output outgrows the first buffer), at the same level one after the
    /// other (the kept state is reset), then at another level and back.
    /// Guarantees: each output is a whole gzip member that flate2's decoder (and so any
    /// gzip reader) inflates to exactly its body, CRC and length checked; no body leaks
    /// into the next.
    #[test]
    fn each_body_round_trips_through_the_reused_state() {
        let bodies = [
            Vec::new(),
            b"x".to_vec(),
            body(200, 1),
            body(200, 2),
            body(60_000, 3),
        ];
        for level in [1, 6, 1, 0, 9] {
            for b in &bodies {
                let z = compress(b, level).unwrap();
                assert_eq!(&z[..2], &[0x1f, 0x8b]);
                assert_eq!(&gunzip(&z), b, "level {level}, {} bytes", b.len());
            }
        }
    }

    /// Scenario: the same body at level 1 through the kept state and through flate2's own
    /// gzip writer.
    /// Guarantees: the same compressed size within a few bytes (the kept state compresses as
    /// a fresh one does; only the framing is written here).
    #[test]
    fn the_kept_state_compresses_as_a_fresh_one() {
        use std::io::Write;
        let b = body(5_000, 9);
        let mine = compress(&b, 1).unwrap();
        let again = compress(&b, 1).unwrap();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
        enc.write_all(&b).unwrap();
        let theirs = enc.finish().unwrap();
        assert_eq!(mine, again, "a reset state gives the same bytes");
        assert!(
            mine.len().abs_diff(theirs.len()) <= 4,
            "{} vs {}",
            mine.len(),
            theirs.len()
        );
    }
}
