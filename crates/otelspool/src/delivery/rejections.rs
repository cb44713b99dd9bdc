//! Partial success: the backend accepted an export but dropped some of its items (OTLP
//! `partial_success`), or attached a warning to it. Those items are not resent (as in otelcol,
//! whose exporters only log a warning per response and count the items as sent); otelspool
//! counts them in `otelspool_exporter_rejected_*` and in `otelcol_exporter_send_failed_*`.
//!
//! The backend's message is logged at most once per [`LOG_INTERVAL`] per queue (exporter and
//! signal): the first rejection at once, then one line per interval carrying the items and
//! batches rejected since the last line and the latest message. A backend that rejects part
//! of every batch for hours writes a line a minute, not one per batch; the counters stay exact.
//! What was noted after the last line is written with the next line, when the next batch
//! (rejected or not) arrives after the interval.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// At most one log line per queue this often.
pub const LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Messages longer than this many bytes are cut in the log line.
const MAX_MESSAGE_BYTES: usize = 1024;

/// The rate-limited log of one queue's partial-success rejections, shared by its consumers.
#[derive(Debug)]
pub struct RejectionLog {
    interval: Duration,
    /// Set while something noted has not been logged yet (read per batch without locking).
    pending: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last_line: Option<Instant>,
    items: u64,
    batches: u64,
    message: String,
}

/// What one log line reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectionSummary {
    /// Items rejected since the last line.
    pub items: u64,
    /// Batches with a rejection or a warning since the last line.
    pub batches: u64,
    /// The backend's latest message, cut to 1 KiB.
    pub message: String,
}

impl RejectionLog {
    /// A log writing at most one line per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            pending: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        }
    }

    /// Notes a batch the backend accepted at `now` with `rejected` items dropped and
    /// `message` (both may be empty). Returns what to log, when a line is due.
    pub fn note(&self, now: Instant, rejected: u64, message: &str) -> Option<RejectionSummary> {
        let noteworthy = rejected > 0 || !message.is_empty();
        if !noteworthy && !self.pending.load(Ordering::Relaxed) {
            return None;
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if noteworthy {
            s.items += rejected;
            s.batches += 1;
            if !message.is_empty() {
                s.message = cut(message);
            }
        }
        let due = s
            .last_line
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if !due || s.batches == 0 {
            self.pending.store(s.batches > 0, Ordering::Relaxed);
            return None;
        }
        s.last_line = Some(now);
        self.pending.store(false, Ordering::Relaxed);
        let summary = RejectionSummary {
            items: s.items,
            batches: s.batches,
            message: std::mem::take(&mut s.message),
        };
        (s.items, s.batches) = (0, 0);
        Some(summary)
    }
}

fn cut(message: &str) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message.to_owned();
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    /// Scenario: five partially rejected batches (2 items each) within one interval, then one
    /// more after the interval.
    /// Guarantees: the first is logged at once with its count; the next four give no line; the
    /// one after the interval gives one line counting the five since the last (10 items, 5
    /// batches) with the latest message.
    #[test]
    fn one_line_per_interval_with_the_count_since_the_last() {
        let log = RejectionLog::new(MINUTE);
        let t0 = Instant::now();
        let first = log.note(t0, 2, "m0").expect("first is logged");
        assert_eq!(
            (first.items, first.batches, first.message.as_str()),
            (2, 1, "m0")
        );
        for i in 1..5 {
            let m = format!("m{i}");
            assert_eq!(log.note(t0 + Duration::from_secs(i), 2, &m), None);
        }
        let next = log
            .note(t0 + MINUTE, 2, "m5")
            .expect("due after the interval");
        assert_eq!(
            next,
            RejectionSummary {
                items: 10,
                batches: 5,
                message: "m5".into()
            }
        );
    }

    /// Scenario: a rejection that is not due, then, after the interval, a batch accepted in
    /// full.
    /// Guarantees: the clean batch writes out the pending count; a clean batch with nothing
    /// pending writes nothing.
    #[test]
    fn a_clean_batch_after_the_interval_writes_what_is_pending() {
        let log = RejectionLog::new(MINUTE);
        let t0 = Instant::now();
        assert!(log.note(t0, 1, "").is_some());
        assert_eq!(log.note(t0 + Duration::from_secs(1), 3, "late"), None);
        assert_eq!(log.note(t0 + Duration::from_secs(2), 0, ""), None);
        let flushed = log.note(t0 + MINUTE * 2, 0, "").expect("pending written");
        assert_eq!((flushed.items, flushed.batches), (3, 1));
        assert_eq!(flushed.message, "late");
        assert_eq!(log.note(t0 + MINUTE * 4, 0, ""), None);
    }

    /// Scenario: a backend warning with no item rejected (allowed by the OTLP spec), and a
    /// message of 5000 bytes of multi-byte characters.
    /// Guarantees: the warning is logged (0 items, 1 batch); the long message is cut on a
    /// character boundary to at most 1 KiB plus an ellipsis.
    #[test]
    fn warnings_are_logged_and_long_messages_cut() {
        let log = RejectionLog::new(MINUTE);
        let t0 = Instant::now();
        let w = log.note(t0, 0, "deprecated field").expect("warning logged");
        assert_eq!((w.items, w.batches), (0, 1));
        let long = "é".repeat(2500);
        let cut = log.note(t0 + MINUTE, 1, &long).expect("due").message;
        assert!(
            cut.len() <= MAX_MESSAGE_BYTES + 3 && cut.ends_with("..."),
            "{}",
            cut.len()
        );
    }
}
