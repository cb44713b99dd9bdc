//! Rate-limited logging of repeated errors, so that an outage of hours writes a few lines an
//! hour, not one per failed request.
//!
//! The rule, for each (site, reason): the first event is logged at once; after it, at most one
//! line per interval, and each line says how many events were not logged since the previous
//! one (its `not_logged` field). Nothing is lost from the count: the lines' events plus their
//! `not_logged` add up to every event. The caller writes the line itself (its level, message
//! and fields stay at the call site); this module only says when, and how many were skipped.
//!
//! - [`LogLimit`]: the state of one (site, reason), for a caller that owns it (`&mut`).
//! - [`RateLimitedLog`]: many of them behind one lock, keyed by the caller's `(site, reason)`
//!   type; sites keep one in a `static`. Keys must come from a bounded set (component ids and
//!   reason labels, never error text), since every key seen is kept.
//!
//! Time is Tokio's clock, so tests on a paused clock can simulate hours.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The interval of the repeated-error sites: one line per minute per (site, reason).
pub const REPEAT_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// When one (site, reason) may write its next line, and how many events it did not log.
#[derive(Debug, Clone)]
pub struct LogLimit {
    interval: Duration,
    last: Option<Instant>,
    not_logged: u64,
}

impl LogLimit {
    /// At most one line per `interval`.
    pub const fn new(interval: Duration) -> Self {
        LogLimit {
            interval,
            last: None,
            not_logged: 0,
        }
    }

    fn due(&mut self, now: Instant) -> bool {
        let due = self
            .last
            .is_none_or(|t| now.duration_since(t) >= self.interval);
        if due {
            self.last = Some(now);
        }
        due
    }

    /// Records an event. `Some(n)`: write a line now, saying that `n` events before it were
    /// not logged. `None`: do not; the event is counted for the next line.
    pub fn event(&mut self) -> Option<u64> {
        if self.due(Instant::now()) {
            Some(std::mem::take(&mut self.not_logged))
        } else {
            self.not_logged += 1;
            None
        }
    }

    /// For the line that ends a series (recovery): `Some(n)` when `n > 0` events were not
    /// logged and a line is due now; the count then starts over.
    pub fn flush(&mut self) -> Option<u64> {
        if self.not_logged > 0 && self.due(Instant::now()) {
            Some(std::mem::take(&mut self.not_logged))
        } else {
            None
        }
    }
}

/// A [`LogLimit`] per key, shared by threads: one line per key per interval.
#[derive(Debug)]
pub struct RateLimitedLog<K> {
    interval: Duration,
    limits: Mutex<HashMap<K, LogLimit>>,
}

impl<K: Eq + Hash> RateLimitedLog<K> {
    /// At most one line per key per `interval`.
    pub fn new(interval: Duration) -> Self {
        RateLimitedLog {
            interval,
            limits: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event of `key`; see [`LogLimit::event`].
    pub fn event(&self, key: K) -> Option<u64> {
        let mut limits = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        limits
            .entry(key)
            .or_insert_with(|| LogLimit::new(self.interval))
            .event()
    }

    /// Ends the series of `key`; see [`LogLimit::flush`].
    pub fn flush(&self, key: &K) -> Option<u64> {
        let mut limits = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        limits.get_mut(key).and_then(LogLimit::flush)
    }

    /// Forgets `key` (its trouble is over, and its caller said so in its own line): its next
    /// event is logged at once. Returns the events it had not logged.
    pub fn reset(&self, key: &K) -> u64 {
        let mut limits = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        limits.remove(key).map_or(0, |l| l.not_logged)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracing_subscriber::layer::{Context, SubscriberExt};

    use super::*;

    /// One written line: its reason field and its `not_logged` count.
    #[derive(Debug, Clone, PartialEq)]
    struct Line {
        reason: String,
        not_logged: u64,
    }

    /// Collects the lines that carry a `not_logged` field.
    #[derive(Clone, Default)]
    struct Lines(Arc<std::sync::Mutex<Vec<Line>>>);

    #[derive(Default)]
    struct Fields {
        reason: String,
        not_logged: Option<u64>,
    }

    impl tracing::field::Visit for Fields {
        fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
            if field.name() == "not_logged" {
                self.not_logged = Some(value);
            }
        }
        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            if field.name() == "reason" {
                self.reason = value.to_string();
            }
        }
        fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Lines {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            let mut f = Fields::default();
            event.record(&mut f);
            if let Some(not_logged) = f.not_logged {
                self.0.lock().expect("lock").push(Line {
                    reason: f.reason,
                    not_logged,
                });
            }
        }
    }

    /// Scenario: a three-hour outage (paused clock): one reason fails every second, another
    /// every ten seconds, both at one site and through one shared log; then recovery.
    /// Guarantees: each reason writes its first event at once and then one line per minute
    /// (180 lines each, not 10,800 and 1,080), every line carries `not_logged`, and the
    /// recovery flush reports the rest once: for each reason the lines' events plus their
    /// `not_logged` add up to every event.
    #[tokio::test(start_paused = true)]
    async fn a_long_outage_writes_one_line_per_reason_per_interval_with_counts() {
        let lines = Lines::default();
        let _guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(lines.clone()));
        let log: RateLimitedLog<(&str, &str)> = RateLimitedLog::new(REPEAT_LOG_INTERVAL);
        let reasons = [("refused", 1), ("timeout", 10)];
        let mut events = [0u64; 2];
        let hours = 3;
        for second in 0..hours * 3600 {
            for (i, (reason, every)) in reasons.into_iter().enumerate() {
                if second % every == 0 {
                    events[i] += 1;
                    if let Some(not_logged) = log.event(("export", reason)) {
                        tracing::warn!(reason, not_logged, "export failed");
                    }
                }
            }
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        tokio::time::advance(REPEAT_LOG_INTERVAL).await;
        for (reason, _) in reasons {
            let n = log
                .flush(&("export", reason))
                .expect("events since the last line");
            tracing::info!(reason, not_logged = n, "recovered");
            assert_eq!(
                log.flush(&("export", reason)),
                None,
                "{reason}: one flush line"
            );
        }

        let lines = lines.0.lock().expect("lock").clone();
        let per_hour = 3600 / REPEAT_LOG_INTERVAL.as_secs();
        for (i, (reason, _)) in reasons.into_iter().enumerate() {
            let mine: Vec<&Line> = lines.iter().filter(|l| l.reason == reason).collect();
            let (outage, flush) = mine.split_at(mine.len() - 1);
            assert_eq!(outage.len() as u64, hours * per_hour, "{reason}: {mine:?}");
            assert_eq!(
                outage[0].not_logged, 0,
                "{reason}: the first event is logged at once"
            );
            let counted: u64 =
                outage.iter().map(|l| 1 + l.not_logged).sum::<u64>() + flush[0].not_logged;
            assert_eq!(counted, events[i], "{reason}: lines + not_logged = events");
        }
    }

    /// Scenario: one failure, then nothing.
    /// Guarantees: a flush writes nothing when no event went unlogged.
    #[tokio::test(start_paused = true)]
    async fn a_single_event_needs_no_flush_line() {
        let mut limit = LogLimit::new(Duration::from_secs(10));
        assert_eq!(limit.event(), Some(0));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(limit.flush(), None);
        assert_eq!(limit.event(), Some(0));
    }
}
