//! Compression of outgoing export requests and of the backends' responses: gzip (flate2 with
//! its zlib-rs backend, one deflate state kept per thread: `gzip`) or zstd (the `zstd`
//! crate, libzstd, one context kept per thread: `zstd_context`), at the level the operator
//! chose.
//!
//! otelcol spells the choice `compression` plus `compression_params.level` (confighttp's
//! `CompressionParams`; otelcol's gRPC client has no level and always uses gzip's default,
//! otelspool takes the level on both OTLP exporters). `-1` is zlib's default (6), as in
//! otelcol. **Differs from otelcol:** no level (or 0) means gzip level 1, not 6. Measured on
//! a 1 MiB batch of ComfyUI-like records (`compression_1mib` in benches/hot_paths.rs,
//! docs/benchmarks.md), level 6 costs 5.5x the CPU of level 1 for half the bytes (ratio 38
//! vs 19): at the plan's rates that is a few KB/s of egress saved for a CPU share the GPU
//! jobs pay on every machine. zstd with no level is its level 1 (otelcol maps 0 to
//! klauspost's `SpeedFastest`, the same), as cheap as gzip 1 at gzip 6's ratio.
//!
//! Compressing a merged batch (up to 1 MiB) takes milliseconds; bodies above
//! [`INLINE_LIMIT`] are compressed on Tokio's blocking pool so that an export never stalls the
//! receivers' acknowledgements that share the async workers. Small bodies are compressed in
//! place: a thread hop would cost more than the work.
//!
//! At most one large compression per core runs at once (as the receivers' offload does,
//! `receivers/otlp/offload.rs`): otherwise each of the queue consumers (10 by default) gets a
//! blocking thread of its own while a backlog drains, and with it, in glibc, a malloc arena
//! that keeps what the thread freed (a merged batch, its output, a deflate state). More
//! threads than cores compress no faster. A consumer waits for a slot asynchronously, holding
//! no thread. Figures: docs/benchmarks.md, "Flat-out RSS".

use std::io::{self, Read};
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use tokio::sync::Semaphore;

/// Bodies up to this size are compressed on the calling async worker.
pub const INLINE_LIMIT: usize = 64 * 1024;

/// The largest gRPC response accepted, and inflated, from a backend (responses are a few
/// bytes of `partial_success`; a larger one is cut, not trusted).
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
const MAX_RESPONSE: u64 = MAX_RESPONSE_BYTES as u64;

/// gzip's level when none is set (otelspool's choice; see the module doc).
pub const GZIP_DEFAULT_LEVEL: u32 = 1;
/// What gzip's `-1` means: zlib's and Go's `DefaultCompression`.
pub const GZIP_ZLIB_DEFAULT_LEVEL: u32 = 6;
/// zstd's level when none is set (otelcol's default, its fastest).
pub const ZSTD_DEFAULT_LEVEL: i32 = 1;

/// Large compressions running on the blocking pool at once: one per core.
static SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    Arc::new(Semaphore::new(cores))
});

/// How request bodies are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip at a level from 0 (stored) to 9.
    Gzip {
        /// 0-9.
        level: u32,
    },
    /// zstd at a level in libzstd's range (negative: faster than 1).
    Zstd {
        /// libzstd's level.
        level: i32,
    },
    /// Sent as is.
    None,
}

impl Default for Compression {
    /// gzip (otelcol's default compression) at otelspool's default level.
    fn default() -> Self {
        Compression::Gzip {
            level: GZIP_DEFAULT_LEVEL,
        }
    }
}

impl Compression {
    /// gzip at `level` as otelcol takes it: 0 (unset) is otelspool's default (1), -1 zlib's
    /// default (6), 1-9 as is; other values (refused by config validation) are clamped.
    pub fn gzip(level: i32) -> Self {
        let level = match level {
            0 => GZIP_DEFAULT_LEVEL,
            ..0 => GZIP_ZLIB_DEFAULT_LEVEL,
            l => l.min(9) as u32,
        };
        Compression::Gzip { level }
    }

    /// zstd at `level`: 0 is the default (1, the fastest positive level); others are clamped
    /// to libzstd's range.
    pub fn zstd(level: i32) -> Self {
        let range = zstd::compression_level_range();
        let level = match level {
            0 => ZSTD_DEFAULT_LEVEL,
            l => l.clamp(*range.start(), *range.end()),
        };
        Compression::Zstd { level }
    }

    /// The name sent in `Content-Encoding` / `grpc-encoding`, or `None` when uncompressed.
    pub fn encoding(&self) -> Option<&'static str> {
        match self {
            Compression::Gzip { .. } => Some("gzip"),
            Compression::Zstd { .. } => Some("zstd"),
            Compression::None => None,
        }
    }

    /// Compresses `body` in the calling thread.
    pub fn compress(&self, body: &[u8]) -> io::Result<Vec<u8>> {
        match *self {
            Compression::Gzip { level } => super::gzip::compress(body, level),
            Compression::Zstd { level } => super::zstd_context::compress(body, level),
            Compression::None => Ok(body.to_vec()),
        }
    }

    /// Compresses `body`, on the blocking pool when it is larger than [`INLINE_LIMIT`], once
    /// one of the pool's slots (one per core) is free. Uncompressed bodies are returned as
    /// they are, without a copy.
    pub async fn compress_bytes(self, body: Bytes) -> io::Result<Bytes> {
        if self == Compression::None {
            return Ok(body);
        }
        if body.len() <= INLINE_LIMIT {
            return self.compress(&body).map(Bytes::from);
        }
        on_blocking_pool(move || self.compress(&body).map(Bytes::from)).await?
    }
}

/// Runs `work` on the blocking pool once a slot is free, holding the slot until it ends.
async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    let slot = SLOTS
        .clone()
        .acquire_owned()
        .await
        .map_err(io::Error::other)?;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work()
    })
    .await
    .map_err(io::Error::other)
}

/// Inflates a response body sent with `encoding` (`gzip` or `zstd`, any case); `None` for
/// an encoding otelspool does not know. At most 4 MiB are inflated.
pub fn decompress_response(encoding: &str, raw: &[u8]) -> Option<io::Result<Vec<u8>>> {
    let mut out = Vec::new();
    let result = if encoding.eq_ignore_ascii_case("gzip") {
        flate2::read::GzDecoder::new(raw)
            .take(MAX_RESPONSE)
            .read_to_end(&mut out)
    } else if encoding.eq_ignore_ascii_case("zstd") {
        zstd::stream::read::Decoder::new(raw)
            .and_then(|d| d.take(MAX_RESPONSE).read_to_end(&mut out))
    } else {
        return None;
    };
    Some(result.map(|_| out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::gzip::tests::gunzip;
    use super::*;

    /// A batch-like body: repeated records with varying numbers, as queued logs look.
    fn body() -> Vec<u8> {
        (0..4000)
            .flat_map(|i| format!("job-{} step {i}/20 sampler=euler cfg=7.5;", i % 50).into_bytes())
            .collect()
    }

    /// Scenario: a body compressed with gzip at levels 1 and 9 and with zstd at 1 and 19.
    /// Guarantees: each inflates back to the body with the standard decoders, and the higher
    /// level of each is not larger than the lower (the level reaches the library).
    #[test]
    fn levels_round_trip_and_reach_the_library() {
        let body = body();
        let g1 = Compression::gzip(1).compress(&body).unwrap();
        let g9 = Compression::gzip(9).compress(&body).unwrap();
        assert_eq!(gunzip(&g1), body);
        assert_eq!(gunzip(&g9), body);
        assert!(
            g9.len() < g1.len(),
            "gzip 9: {} vs 1: {}",
            g9.len(),
            g1.len()
        );
        let z1 = Compression::zstd(1).compress(&body).unwrap();
        let z19 = Compression::zstd(19).compress(&body).unwrap();
        assert_eq!(zstd::decode_all(&z1[..]).unwrap(), body);
        assert_eq!(zstd::decode_all(&z19[..]).unwrap(), body);
        assert!(
            z19.len() < z1.len(),
            "zstd 19: {} vs 1: {}",
            z19.len(),
            z1.len()
        );
    }

    /// Scenario: otelcol's special level values.
    /// Guarantees: gzip 0 (unset) means 1 and -1 zlib's default 6; zstd 0 means 1;
    /// out-of-range values are clamped rather than panicking in the library.
    #[test]
    fn default_and_out_of_range_levels() {
        assert_eq!(Compression::gzip(-1), Compression::Gzip { level: 6 });
        assert_eq!(Compression::gzip(0), Compression::Gzip { level: 1 });
        assert_eq!(Compression::gzip(42), Compression::Gzip { level: 9 });
        assert_eq!(Compression::zstd(0), Compression::Zstd { level: 1 });
        let max = *zstd::compression_level_range().end();
        assert_eq!(Compression::zstd(1000), Compression::Zstd { level: max });
        assert_eq!(Compression::default(), Compression::Gzip { level: 1 });
    }

    /// Scenario: a body above the inline limit, compressed through the async entry point.
    /// Guarantees: same bytes as the in-thread compression (the blocking pool path works).
    #[tokio::test]
    async fn large_bodies_compress_off_the_worker_with_the_same_result() {
        let body = body();
        assert!(body.len() > INLINE_LIMIT);
        let c = Compression::zstd(3);
        let off = c.compress_bytes(Bytes::from(body.clone())).await.unwrap();
        assert_eq!(zstd::decode_all(&off[..]).unwrap(), body);
        let none = Compression::None
            .compress_bytes(Bytes::from(body.clone()))
            .await
            .unwrap();
        assert_eq!(none, body);
    }

    /// Scenario: a job run on the blocking pool through the path large compressions take.
    /// Guarantees: it holds one of the slots (one per core) while it runs.
    #[tokio::test]
    async fn blocking_compressions_hold_a_slot() {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let free = on_blocking_pool(|| SLOTS.available_permits())
            .await
            .unwrap();
        assert!(free < cores, "{free} of {cores} slots free while a job ran");
    }

    /// Scenario: every compression slot is taken; a large body is then compressed through the
    /// async entry point, and the slots are given back.
    /// Guarantees: the compression does not finish while no slot is free, then finishes with
    /// the right bytes once one is.
    #[tokio::test]
    async fn large_compressions_wait_for_a_free_slot() {
        let body = body();
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let taken = SLOTS
            .clone()
            .acquire_many_owned(cores as u32)
            .await
            .unwrap();
        let c = Compression::gzip(1);
        let mut job = std::pin::pin!(c.compress_bytes(Bytes::from(body.clone())));
        for _ in 0..3 {
            assert!(futures::poll!(job.as_mut()).is_pending());
            tokio::task::yield_now().await;
        }
        drop(taken);
        assert_eq!(gunzip(&job.await.unwrap()), body);
    }

    /// Scenario: responses in gzip, zstd, and an unknown encoding; a response inflating past
    /// 4 MiB.
    /// Guarantees: known encodings inflate, an unknown one is `None`, and the bomb stops at
    /// 4 MiB.
    #[test]
    fn responses_inflate_with_a_bound() {
        let msg = b"partial".to_vec();
        let g = Compression::gzip(1).compress(&msg).unwrap();
        assert_eq!(decompress_response("GZIP", &g).unwrap().unwrap(), msg);
        let z = Compression::zstd(1).compress(&msg).unwrap();
        assert_eq!(decompress_response("zstd", &z).unwrap().unwrap(), msg);
        assert!(decompress_response("br", &g).is_none());
        let bomb = Compression::gzip(9).compress(&vec![0u8; 16 << 20]).unwrap();
        let out = decompress_response("gzip", &bomb).unwrap().unwrap();
        assert_eq!(out.len() as u64, MAX_RESPONSE);
    }
}
