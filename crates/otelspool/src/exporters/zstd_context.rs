//! zstd with one compression context kept per thread, as `gzip` keeps its deflate state.
//!
//! `zstd::bulk::compress` makes a new `ZSTD_CCtx` for every body and frees it after: an
//! allocation of the context and its tables (hundreds of KB at the fast levels) per export.
//! `zstd::bulk::Compressor` can be kept; here one lives in a thread local, remade only when
//! the level changes. libzstd resets the context's session at the start of each frame, so a
//! kept context writes the same bytes as a new one.

use std::cell::RefCell;
use std::io;

use zstd::bulk::Compressor;

thread_local! {
    /// This thread's context and the level it was made for.
    static CONTEXT: RefCell<Option<(i32, Compressor<'static>)>> = const { RefCell::new(None) };
}

/// `body` as one zstd frame at `level`.
pub fn compress(body: &[u8], level: i32) -> io::Result<Vec<u8>> {
    CONTEXT.with(|cell| {
        let mut slot = cell.borrow_mut();
        let compressor = match slot.as_mut() {
            Some((l, c)) if *l == level => c,
            _ => &mut slot.insert((level, Compressor::new(level)?)).1,
        };
        compressor.compress(body)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::exporters::gzip::tests::body;

    /// Scenario: one thread compresses bodies of different sizes at level 1, then 3, then 1
    /// again (the kept context is reused, remade, reused), and an empty body.
    /// Guarantees: each frame decodes to its body, and matches what a new context writes
    /// (`zstd::bulk::compress`) byte for byte.
    #[test]
    fn a_kept_context_writes_what_a_new_one_writes() {
        for (i, (n, level)) in [(10_000, 1), (300, 1), (50_000, 3), (0, 3), (20_000, 1)]
            .into_iter()
            .enumerate()
        {
            let b = body(n, i);
            let z = compress(&b, level).unwrap();
            assert_eq!(zstd::decode_all(&z[..]).unwrap(), b, "body {i}");
            assert_eq!(z, zstd::bulk::compress(&b, level).unwrap(), "body {i}");
        }
    }
}
