//! The retry state of one queue, shared by all its consumers: whether the backend is failing,
//! who may probe it, and the one backoff that spaces the probes.
//!
//! Invariants:
//! - While the backend fails, one consumer at a time holds the probe; it waits out the shared
//!   backoff, then takes a batch and tries. The others wait for the probe instead of reading,
//!   merging and compressing batches for a backend that is down (memory the memory limiter,
//!   which gates receivers, cannot see).
//! - The backoff is one per queue (that is, per exporter and signal), not per consumer: it
//!   grows with every probe that fails, whichever consumer sent it, up to `max_interval`, and
//!   only a success resets it. A server's `RetryInfo` / `Retry-After` wins over the computed
//!   delay (bounded as [`Backoff::next_delay`] says).
//! - Attempts already in flight when the backend started failing are one observation of the
//!   outage: the first of their failures turns the gate on and sets the delay, the rest leave
//!   the backoff as it is.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};
use tokio::time::Instant;

use super::backoff::{Backoff, BackoffSettings};

/// The shared retry state of one queue's consumers (see the module doc).
#[derive(Debug)]
pub struct ProbeGate {
    failing: AtomicBool,
    probe: Mutex<()>,
    outage: std::sync::Mutex<Outage>,
}

#[derive(Debug)]
struct Outage {
    backoff: Backoff,
    /// No probe before this.
    retry_at: Option<Instant>,
    failures: u64,
    since: Option<Instant>,
}

/// What a retryable failure did to the shared state, for the log line.
#[derive(Debug, Clone, Copy)]
pub(super) struct Failure {
    /// Retryable failures since the last success, this one included.
    pub failures: u64,
    /// Time since the first of them.
    pub failing_for: Duration,
    /// The delay before the next probe, if this failure set one.
    pub retry_in: Option<Duration>,
}

impl ProbeGate {
    /// A gate for consumers retrying with `settings`.
    pub fn new(settings: BackoffSettings) -> Self {
        Self {
            failing: AtomicBool::new(false),
            probe: Mutex::new(()),
            outage: std::sync::Mutex::new(Outage {
                backoff: Backoff::new(settings),
                retry_at: None,
                failures: 0,
                since: None,
            }),
        }
    }

    /// True while the backend is failing: consumers must probe.
    pub(super) fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Waits for the probe, then until the shared backoff has passed. `None` if the backend
    /// recovered meanwhile (no probe needed); else the guard to hold through the attempt.
    pub(super) async fn probe(&self) -> Option<MutexGuard<'_, ()>> {
        let guard = self.probe.lock().await;
        let retry_at = self.outage().retry_at;
        if let Some(at) = retry_at {
            tokio::time::sleep_until(at).await;
        }
        self.failing().then_some(guard)
    }

    /// Records a retryable failure. `probing`: the attempt was made holding the probe. `hint`:
    /// the server's requested delay.
    pub(super) fn failed(&self, probing: bool, hint: Option<Duration>) -> Failure {
        let now = Instant::now();
        let mut o = self.outage();
        o.failures += 1;
        let since = *o.since.get_or_insert(now);
        let first = !self.failing.swap(true, Ordering::Relaxed);
        let retry_in = (probing || first).then(|| {
            let delay = o.backoff.next_delay(hint);
            o.retry_at = Some(now + delay);
            delay
        });
        Failure {
            failures: o.failures,
            failing_for: now - since,
            retry_in,
        }
    }

    /// Records a success: the backoff starts over. Returns the failures before it and how long
    /// they lasted, if there were any.
    pub(super) fn succeeded(&self) -> Option<(u64, Duration)> {
        if !self.failing() {
            return None;
        }
        let mut o = self.outage();
        self.failing.store(false, Ordering::Relaxed);
        o.backoff.reset();
        o.retry_at = None;
        let failures = std::mem::take(&mut o.failures);
        let since = o.since.take()?;
        Some((failures, since.elapsed()))
    }

    fn outage(&self) -> std::sync::MutexGuard<'_, Outage> {
        self.outage.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> ProbeGate {
        ProbeGate::new(BackoffSettings {
            initial_interval: Duration::from_millis(10),
            max_interval: Duration::from_millis(40),
            multiplier: 2.0,
            randomization_factor: 0.0,
        })
    }

    /// Scenario: three attempts in flight fail together, then probes fail one after another.
    /// Guarantees: the burst counts once (one delay set), each probe's failure grows the one
    /// backoff up to `max_interval`, and a success resets it and opens the gate.
    #[tokio::test]
    async fn probes_grow_one_backoff_and_a_success_resets_it() {
        let g = gate();
        let ms = Duration::from_millis;
        assert_eq!(g.failed(false, None).retry_in, Some(ms(10)));
        assert_eq!(g.failed(false, None).retry_in, None);
        assert_eq!(g.failed(false, None).retry_in, None);
        assert!(g.failing());
        let delays: Vec<_> = (0..4).map(|_| g.failed(true, None).retry_in).collect();
        assert_eq!(
            delays,
            [Some(ms(20)), Some(ms(40)), Some(ms(40)), Some(ms(40))]
        );
        assert_eq!(g.succeeded().map(|(n, _)| n), Some(7));
        assert!(!g.failing());
        assert_eq!(g.succeeded(), None);
        assert_eq!(g.failed(false, None).retry_in, Some(ms(10)));
    }

    /// Scenario: a probe fails with a server hint of 2 s.
    /// Guarantees: the hint is the delay; the computed interval still grows underneath.
    #[tokio::test]
    async fn a_server_hint_wins() {
        let g = gate();
        g.failed(false, None);
        let f = g.failed(true, Some(Duration::from_secs(2)));
        assert_eq!(f.retry_in, Some(Duration::from_secs(2)));
        assert_eq!(
            g.failed(true, None).retry_in,
            Some(Duration::from_millis(40))
        );
    }
}
