//! Exponential backoff between probes of a failing backend, as otelcol's `retry_on_failure`
//! (cenkalti/backoff): each delay is the current interval randomized by
//! `± randomization_factor`, and the interval grows by `multiplier` up to `max_interval`.
//! There is one per queue, owned by its [`super::ProbeGate`].
//!
//! The backoff itself has no time limit: the queue consumer retries retryable failures until
//! they succeed, unless the user set `retry_on_failure.max_elapsed_time` (then expired data
//! goes to the dead-letter file), so a long outage delays data instead of dropping it. A delay
//! asked for by the server wins over the computed one, within [`MIN_SERVER_DELAY`] and [`BackoffSettings::max_server_delay`].

use std::time::Duration;

/// A server-given delay is never shorter than this, so `Retry-After: 0` cannot spin.
pub const MIN_SERVER_DELAY: Duration = Duration::from_millis(100);

/// A server-given delay is never longer than this or `max_interval`, whichever is larger.
pub const MAX_SERVER_DELAY_FLOOR: Duration = Duration::from_secs(300);

/// Backoff parameters, named and defaulted as otelcol's `retry_on_failure`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffSettings {
    /// The first interval (default 5 s).
    pub initial_interval: Duration,
    /// The largest interval before randomization (default 30 s).
    pub max_interval: Duration,
    /// Growth factor of the interval after each delay (default 1.5; below 1 is treated as 1).
    pub multiplier: f64,
    /// Jitter: a delay is drawn from `interval * [1 - f, 1 + f]` (default 0.5; clamped to
    /// `[0, 1]`).
    pub randomization_factor: f64,
}

impl Default for BackoffSettings {
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_secs(5),
            max_interval: Duration::from_secs(30),
            multiplier: 1.5,
            randomization_factor: 0.5,
        }
    }
}

impl BackoffSettings {
    /// The cap on server-given delays: `max(max_interval, 5 min)`.
    pub fn max_server_delay(&self) -> Duration {
        self.max_interval.max(MAX_SERVER_DELAY_FLOOR)
    }
}

/// The backoff state of one queue's retries. Call [`Backoff::reset`] after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    settings: BackoffSettings,
    current: Duration,
    rng: fastrand::Rng,
}

impl Backoff {
    /// A backoff starting at `settings.initial_interval`.
    pub fn new(settings: BackoffSettings) -> Self {
        Self::with_rng(settings, fastrand::Rng::new())
    }

    /// A backoff with a given random source (seeded in tests).
    pub fn with_rng(settings: BackoffSettings, rng: fastrand::Rng) -> Self {
        let initial = settings.initial_interval.min(settings.max_interval);
        Self {
            settings,
            current: initial,
            rng,
        }
    }

    /// The delay before the next attempt. `hint` is the server's requested delay (gRPC
    /// `RetryInfo`, HTTP `Retry-After`): it wins over the computed delay, bounded to
    /// `[MIN_SERVER_DELAY, max_server_delay()]`. The interval grows either way.
    pub fn next_delay(&mut self, hint: Option<Duration>) -> Duration {
        let computed = self.randomized(self.current);
        self.grow();
        match hint {
            Some(hint) => hint.clamp(MIN_SERVER_DELAY, self.settings.max_server_delay()),
            None => computed,
        }
    }

    /// Back to `initial_interval`.
    pub fn reset(&mut self) {
        self.current = self
            .settings
            .initial_interval
            .min(self.settings.max_interval);
    }

    /// The current interval before randomization.
    pub fn current_interval(&self) -> Duration {
        self.current
    }

    fn randomized(&mut self, interval: Duration) -> Duration {
        let factor = self.settings.randomization_factor;
        let factor = if factor.is_finite() {
            factor.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let secs = interval.as_secs_f64();
        let delta = factor * secs;
        let low = secs - delta;
        let drawn = low + self.rng.f64() * (2.0 * delta);
        Duration::try_from_secs_f64(drawn).unwrap_or(interval)
    }

    fn grow(&mut self) {
        let multiplier = self.settings.multiplier;
        let multiplier = if multiplier.is_finite() && multiplier >= 1.0 {
            multiplier
        } else {
            1.0
        };
        let next = Duration::try_from_secs_f64(self.current.as_secs_f64() * multiplier)
            .unwrap_or(self.settings.max_interval);
        self.current = next.min(self.settings.max_interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff(seed: u64) -> Backoff {
        Backoff::with_rng(BackoffSettings::default(), fastrand::Rng::with_seed(seed))
    }

    #[test]
    fn first_delay_is_within_jitter_of_initial_interval() {
        for seed in 0..200 {
            let d = backoff(seed).next_delay(None);
            assert!(d >= Duration::from_millis(2500), "{d:?}");
            assert!(d <= Duration::from_millis(7500), "{d:?}");
        }
    }

    #[test]
    fn interval_grows_by_multiplier_and_caps_at_max() {
        let mut b = backoff(1);
        let mut expected = vec![5.0, 7.5, 11.25, 16.875, 25.3125, 30.0, 30.0, 30.0];
        expected.reverse();
        while let Some(secs) = expected.pop() {
            let interval = b.current_interval().as_secs_f64();
            assert!((interval - secs).abs() < 1e-6, "{interval} != {secs}");
            let d = b.next_delay(None).as_secs_f64();
            assert!(
                d >= interval * 0.5 - 1e-9 && d <= interval * 1.5 + 1e-9,
                "{d}"
            );
        }
        for _ in 0..100 {
            assert!(b.next_delay(None) <= Duration::from_secs(45));
        }
    }

    #[test]
    fn no_jitter_gives_exact_intervals() {
        let settings = BackoffSettings {
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(4),
            multiplier: 2.0,
            randomization_factor: 0.0,
        };
        let mut b = Backoff::new(settings);
        let got: Vec<u64> = (0..5).map(|_| b.next_delay(None).as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 4, 4]);
        b.reset();
        assert_eq!(b.next_delay(None), Duration::from_secs(1));
    }

    #[test]
    fn server_hint_wins_but_is_bounded() {
        let mut b = backoff(7);
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(90))),
            Duration::from_secs(90)
        );
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(3600))),
            MAX_SERVER_DELAY_FLOOR
        );
        assert_eq!(b.next_delay(Some(Duration::ZERO)), MIN_SERVER_DELAY);
        // The interval kept growing while hints were followed.
        assert!(b.current_interval() > Duration::from_secs(5));
    }

    #[test]
    fn silly_settings_do_not_panic() {
        let settings = BackoffSettings {
            initial_interval: Duration::from_secs(60),
            max_interval: Duration::from_secs(10),
            multiplier: f64::NAN,
            randomization_factor: 7.0,
        };
        let mut b = Backoff::new(settings);
        for _ in 0..10 {
            assert!(b.next_delay(None) <= Duration::from_secs(20));
        }
    }
}
