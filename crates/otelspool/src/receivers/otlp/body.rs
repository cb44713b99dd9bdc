//! Reading a request body, for both transports: bounded in size, charged to the in-flight
//! budget as its bytes arrive, and cut when it arrives too slowly; then gzip inflation, also
//! bounded and charged as the output grows.
//!
//! The slow-client policy ([`BodyPolicy`]): a body that takes longer than one rate window must
//! deliver at least `min_rate` bytes per second in every window, and all of it within the
//! deadline. A small body sent at once is never measured. A stalled body therefore holds no
//! budget (nothing was received) and its connection is cut after one window.

use std::collections::VecDeque;
use std::io::Read;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::time::Instant;

use super::budget::Charge;
use crate::pipeline::Refusal;

/// How slowly a client may send a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPolicy {
    /// Bytes per second a body must deliver in each full rate window.
    pub min_rate: u64,
    /// The window over which the rate is measured.
    pub rate_window: Duration,
    /// Time the whole body may take, whatever its rate.
    pub deadline: Duration,
}

/// Default [`BodyPolicy::min_rate`]: 16 KiB/s.
pub const MIN_BODY_RATE: u64 = 16 << 10;
/// Default [`BodyPolicy::rate_window`].
pub const BODY_RATE_WINDOW: Duration = Duration::from_secs(5);
/// Default [`BodyPolicy::deadline`].
pub const BODY_DEADLINE: Duration = Duration::from_secs(30);

impl Default for BodyPolicy {
    fn default() -> Self {
        BodyPolicy {
            min_rate: MIN_BODY_RATE,
            rate_window: BODY_RATE_WINDOW,
            deadline: BODY_DEADLINE,
        }
    }
}

impl BodyPolicy {
    fn bytes_per_window(&self) -> u64 {
        let millis = u64::try_from(self.rate_window.as_millis()).unwrap_or(u64::MAX);
        self.min_rate.saturating_mul(millis) / 1000
    }
}

/// Why a body could not be read or inflated.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// More bytes than the limit (raw or inflated).
    #[error("the request body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Fewer bytes than the policy's minimum rate arrived in a rate window.
    #[error("the request body arrived slower than {min_rate} bytes per second")]
    TooSlow {
        /// The minimum rate, bytes per second.
        min_rate: u64,
    },
    /// The body was not complete by the deadline.
    #[error("the request body was not received within {0:?}")]
    Deadline(Duration),
    /// The memory it needs is held by other requests (retryable).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The connection failed while the body was read.
    #[error("could not read the request body: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The body is labelled gzip but is not valid gzip.
    #[error("the request body is not valid gzip: {0}")]
    CorruptGzip(#[source] std::io::Error),
}

/// A received body: the chunks as they came off the connection, not copied.
#[derive(Debug, Default)]
pub struct Received {
    chunks: VecDeque<Bytes>,
    remaining: usize,
}

impl Buf for Received {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.chunks.front().map_or(&[], |c| c.as_ref())
    }

    fn advance(&mut self, mut cnt: usize) {
        while cnt > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            let n = cnt.min(front.len());
            front.advance(n);
            self.remaining -= n;
            cnt -= n;
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
    }
}

impl Received {
    /// The rest of the body as one buffer: the chunk itself when it came in one piece (no
    /// copy), else one copy, charged while both exist.
    pub fn into_bytes(mut self, charge: &mut Charge) -> Result<Bytes, Refusal> {
        self.chunks.retain(|c| !c.is_empty());
        if self.chunks.len() <= 1 {
            return Ok(self.chunks.pop_front().unwrap_or_default());
        }
        let len = self.remaining;
        charge.set(len.saturating_mul(2))?;
        let mut out = BytesMut::with_capacity(len);
        for c in self.chunks.drain(..) {
            out.extend_from_slice(&c);
        }
        charge.set(len)?;
        Ok(out.freeze())
    }

    /// Inflates the rest of the body (gzip, possibly several members) into at most `limit`
    /// bytes, charging the output as it grows; the received bytes are dropped after.
    pub fn gunzip(self, limit: usize, charge: &mut Charge) -> Result<Bytes, BodyError> {
        const STEP: usize = 64 << 10;
        let compressed = self.remaining;
        let mut decoder = flate2::bufread::MultiGzDecoder::new(self.reader());
        let mut out: Vec<u8> = Vec::new();
        loop {
            if out.len() == out.capacity() {
                if out.len() > limit {
                    return Err(BodyError::TooLarge { limit });
                }
                // Not `clamp`: it panics when the limit is below one step.
                let target = (out.capacity() * 2).max(STEP).min(limit + 1);
                charge.set(compressed + target)?;
                out.reserve_exact(target - out.len());
            }
            // At most one step is zeroed per read, whatever the capacity.
            let start = out.len();
            out.resize((start + STEP).min(out.capacity()), 0);
            match decoder.read(&mut out[start..]) {
                Ok(0) => {
                    out.truncate(start);
                    break;
                }
                Ok(n) => out.truncate(start + n),
                Err(e) => return Err(BodyError::CorruptGzip(e)),
            }
        }
        if out.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        drop(decoder);
        charge.set(out.capacity())?;
        Ok(Bytes::from(out))
    }
}

/// Reads `body` to its end: at most `limit` bytes, each chunk charged as it arrives, cut when
/// it breaks `policy`.
pub async fn read_body<B>(
    body: B,
    limit: usize,
    policy: &BodyPolicy,
    charge: &mut Charge,
) -> Result<Received, BodyError>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut body = std::pin::pin!(body);
    let mut received = Received::default();
    let deadline = Instant::now() + policy.deadline;
    let mut window_end = Instant::now() + policy.rate_window;
    let mut window_bytes = 0u64;
    let timer = tokio::time::sleep_until(window_end.min(deadline));
    let mut timer = std::pin::pin!(timer);
    loop {
        tokio::select! {
            biased;
            frame = body.frame() => match frame {
                None => return Ok(received),
                Some(Err(e)) => return Err(BodyError::Transport(e.into())),
                Some(Ok(frame)) => {
                    if let Ok(mut data) = frame.into_data() {
                        let n = data.remaining();
                        if received.remaining + n > limit {
                            return Err(BodyError::TooLarge { limit });
                        }
                        charge.set(received.remaining + n)?;
                        received.chunks.push_back(data.copy_to_bytes(n));
                        received.remaining += n;
                        window_bytes += n as u64;
                    }
                }
            },
            () = &mut timer => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(BodyError::Deadline(policy.deadline));
        }
        if now >= window_end {
            if window_bytes < policy.bytes_per_window() {
                return Err(BodyError::TooSlow {
                    min_rate: policy.min_rate,
                });
            }
            window_end = now + policy.rate_window;
            window_bytes = 0;
            timer.as_mut().reset(window_end.min(deadline));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::receivers::otlp::InFlightBudget;

    fn received(parts: &[&[u8]]) -> Received {
        let chunks: VecDeque<Bytes> = parts.iter().map(|p| Bytes::copy_from_slice(p)).collect();
        let remaining = chunks.iter().map(Bytes::len).sum();
        Received { chunks, remaining }
    }

    /// Scenario: 50 MiB of zeros gzipped to ~50 KiB, inflated with a 1 MiB limit; then bytes
    /// that are not gzip.
    /// Guarantees: the bomb is cut at the limit (never inflated in full) and charged no more
    /// than the limit; the garbage is a typed `CorruptGzip` error.
    #[test]
    fn gzip_bomb_is_cut_at_the_limit_and_garbage_is_corrupt() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 50 << 20]).expect("write");
        let bomb = enc.finish().expect("finish");
        assert!(bomb.len() < 200_000);
        let budget = InFlightBudget::new(64 << 20);
        let mut charge = budget.charge(None, 64 << 20);
        let err = received(&[&bomb]).gunzip(1 << 20, &mut charge);
        assert!(
            matches!(err, Err(BodyError::TooLarge { limit: 0x10_0000 })),
            "{err:?}"
        );
        assert!(budget.available_bytes() >= (64 << 20) - (3 << 20));
        let err = received(&[b"not gzip"]).gunzip(1 << 20, &mut charge);
        assert!(matches!(err, Err(BodyError::CorruptGzip(_))), "{err:?}");
    }

    /// Scenario: a gzip body split over several chunks, inflated.
    /// Guarantees: the output is the original, and the charge ends at the output's size.
    #[test]
    fn chunked_gzip_inflates_and_the_charge_follows_the_output() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&data).expect("write");
        let gz = enc.finish().expect("finish");
        let (a, b) = gz.split_at(gz.len() / 3);
        let budget = InFlightBudget::new(64 << 20);
        let mut charge = budget.charge(None, 64 << 20);
        let out = received(&[a, b])
            .gunzip(1 << 20, &mut charge)
            .expect("inflates");
        assert_eq!(out, data);
        let held = (64 << 20) - budget.available_bytes();
        assert!(
            held >= data.len() as u64 && held <= 2 * data.len() as u64,
            "{held}"
        );
    }

    /// Scenario: a body limit smaller than the inflate step (`max_request_body_size` of a few
    /// KiB): a gzip body under the limit, one over it (found by the `http_receiver` fuzzer).
    /// Guarantees: the small one inflates, the large one is `TooLarge`; no panic.
    #[test]
    fn a_limit_below_the_inflate_step_still_inflates_and_cuts() {
        let gz = |data: &[u8]| {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(data).expect("write");
            enc.finish().expect("finish")
        };
        let budget = InFlightBudget::new(64 << 20);
        let mut charge = budget.charge(None, 64 << 20);
        let small = vec![7u8; 3000];
        let out = received(&[&gz(&small)])
            .gunzip(4096, &mut charge)
            .expect("inflates under the limit");
        assert_eq!(out, small);
        let err = received(&[&gz(&[7u8; 5000])]).gunzip(4096, &mut charge);
        assert!(
            matches!(err, Err(BodyError::TooLarge { limit: 4096 })),
            "{err:?}"
        );
    }

    /// A body that sends `chunk` bytes `times` times, `every` apart, then ends (or stalls
    /// forever when `stall`).
    fn paced(
        chunk: usize,
        every: Duration,
        times: usize,
        stall: bool,
    ) -> impl Body<Data = Bytes, Error = std::convert::Infallible> {
        let (mut tx, rx) = futures::channel::mpsc::channel(1);
        tokio::spawn(async move {
            use futures::SinkExt;
            for i in 0..times {
                if i > 0 {
                    tokio::time::sleep(every).await;
                }
                let frame = http_body::Frame::data(Bytes::from(vec![1u8; chunk]));
                if tx.send(Ok(frame)).await.is_err() {
                    return;
                }
            }
            if stall {
                futures::future::pending::<()>().await;
            }
        });
        http_body_util::StreamBody::new(rx)
    }

    async fn read(
        body: impl Body<Data = Bytes, Error = std::convert::Infallible>,
    ) -> (Result<usize, BodyError>, Duration) {
        let budget = InFlightBudget::new(64 << 20);
        let mut charge = budget.charge(None, 64 << 20);
        let started = Instant::now();
        let got = read_body(body, 32 << 20, &BodyPolicy::default(), &mut charge).await;
        (got.map(|r| r.remaining()), started.elapsed())
    }

    /// Scenario: under the default policy (16 KiB/s over 5 s windows, 30 s deadline): a body
    /// at 20 KiB/s for 12 s; a body that sends 1 KiB and stalls; a 2-chunk body whose second
    /// chunk comes after 4.9 s; a body at 100 KiB/s for 40 s.
    /// Guarantees: the steady body is read whole; the stalled one is cut as too slow at the
    /// end of the first window; the small slow one is never measured and is read whole; the
    /// long one is cut at the deadline.
    #[tokio::test(start_paused = true)]
    async fn the_rate_is_measured_per_window_and_the_deadline_bounds_all() {
        let second = Duration::from_secs(1);
        let (got, _) = read(paced(20 << 10, second, 12, false)).await;
        assert_eq!(got.expect("steady body"), 240 << 10);
        let (got, took) = read(paced(1 << 10, second, 1, true)).await;
        assert!(
            matches!(
                got,
                Err(BodyError::TooSlow {
                    min_rate: MIN_BODY_RATE
                })
            ),
            "{got:?}"
        );
        assert_eq!(took, BODY_RATE_WINDOW);
        let (got, _) = read(paced(10, Duration::from_millis(4900), 2, false)).await;
        assert_eq!(got.expect("small body"), 20);
        let (got, took) = read(paced(100 << 10, second, 40, false)).await;
        assert!(
            matches!(got, Err(BodyError::Deadline(BODY_DEADLINE))),
            "{got:?}"
        );
        assert_eq!(took, BODY_DEADLINE);
    }

    /// Scenario: a body in three chunks is made contiguous, and a body in one chunk too.
    /// Guarantees: the bytes are intact, and a single chunk is returned without a copy.
    #[test]
    fn chunks_become_one_buffer_and_a_single_chunk_is_not_copied() {
        let budget = InFlightBudget::new(1 << 20);
        let mut charge = budget.charge(None, 1 << 20);
        let bytes = received(&[b"ab", b"", b"cd", b"e"])
            .into_bytes(&mut charge)
            .expect("ok");
        assert_eq!(bytes, "abcde");
        let one = Bytes::from_static(b"whole");
        let mut r = Received::default();
        r.chunks.push_back(one.clone());
        r.remaining = one.len();
        let got = r.into_bytes(&mut charge).expect("ok");
        assert_eq!(got.as_ptr(), one.as_ptr());
    }
}
