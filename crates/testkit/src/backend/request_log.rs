//! An opt-in log of every export request's arrival and of each accepted request's size, for
//! tests that check how a client spaces its retries or shapes its batches.
//!
//! Off by default ([`Backend::keep_request_log`] turns it on), so a long-running backend does
//! not grow. Times come from Tokio's clock, so a test on paused time reads its own clock.

use tokio::time::Instant;

use super::{Backend, lock};

/// What the backend noted about requests since [`Backend::keep_request_log`].
#[derive(Clone, Debug, Default)]
pub struct RequestLog {
    /// When each export request arrived, accepted or refused, in order.
    pub arrivals: Vec<Instant>,
    /// The number of items (log records, spans, points) of each accepted request, in order.
    pub accepted_items: Vec<u64>,
}

impl RequestLog {
    /// The time between consecutive arrivals.
    pub fn gaps(&self) -> Vec<std::time::Duration> {
        self.arrivals.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

impl Backend {
    /// Starts (or restarts, empty) the request log.
    pub fn keep_request_log(&self) {
        *lock(&self.request_log) = Some(RequestLog::default());
    }

    /// A copy of the request log; empty if it was never turned on.
    pub fn request_log(&self) -> RequestLog {
        lock(&self.request_log).clone().unwrap_or_default()
    }

    pub(super) fn log_arrival(&self) {
        if let Some(log) = lock(&self.request_log).as_mut() {
            log.arrivals.push(Instant::now());
        }
    }

    pub(super) fn log_accepted(&self, items: u64) {
        if let Some(log) = lock(&self.request_log).as_mut() {
            log.accepted_items.push(items);
        }
    }
}
