//! The `otlp` receiver: OTLP over gRPC (`:4317`) and HTTP (`:4318`) for logs, traces and
//! metrics. A request is answered OK only after its data is durable in every exporter queue
//! of its pipelines; push-back is always retryable (`Unavailable` / 503 with a retry hint).

mod grpc;
mod http;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use grpc::{GrpcSettings, serve_grpc};
pub use http::{HttpSettings, router as http_router, serve_http};

use crate::pipeline::{Payload, Refusal, Router, Signal};
use crate::telemetry::Metrics;

/// What both transports of one receiver share.
#[derive(Debug)]
pub struct ReceiverContext {
    /// The receiver id (`otlp`, `otlp/jobs`), the `receiver` metric label.
    pub id: String,
    /// The pipelines it feeds.
    pub router: Router,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Memory budget for requests being read, decoded and queued, in KiB.
    pub in_flight: InFlightBudget,
}

/// A bound on the memory that requests in flight may hold (raw body, inflated body, decoded
/// form), so that many concurrent large requests cannot push the process past its memory
/// limit between two memory-limiter checks. A request that does not fit is refused with a
/// retryable error rather than queued in memory.
#[derive(Debug, Clone)]
pub struct InFlightBudget {
    permits: Arc<Semaphore>,
    kib: u32,
}

/// How much memory a request of `n` encoded bytes may take while handled: the bytes, a decoded
/// copy that is about twice as large, and slack.
pub const DECODE_EXPANSION: usize = 4;

impl InFlightBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: u64) -> Self {
        let kib = u32::try_from(bytes >> 10).unwrap_or(u32::MAX).max(1);
        InFlightBudget {
            permits: Arc::new(Semaphore::new(kib as usize)),
            kib,
        }
    }

    /// Reserves room for a request expected to take `bytes`; a request larger than the whole
    /// budget reserves all of it (so it can still pass when it is alone).
    pub fn try_reserve(&self, bytes: usize) -> Result<OwnedSemaphorePermit, Refusal> {
        let kib = u32::try_from(bytes >> 10)
            .unwrap_or(u32::MAX)
            .clamp(1, self.kib);
        self.permits
            .clone()
            .try_acquire_many_owned(kib)
            .map_err(|_| {
                Refusal::Overloaded(format!(
                    "requests in flight hold the receiver's {} MiB budget",
                    self.kib >> 10
                ))
            })
    }
}

impl ReceiverContext {
    /// Admission before decoding: a refusal costs no decode (otelcol decodes first; core #8632).
    /// `bytes` is the request's expected memory; the permit must be held until it is queued.
    pub fn admit(
        &self,
        transport: &str,
        signal: Signal,
        bytes: usize,
    ) -> Result<OwnedSemaphorePermit, Refusal> {
        self.router
            .admit(signal)
            .and_then(|()| self.in_flight.try_reserve(bytes))
            .inspect_err(|r| {
                self.metrics.receiver_refused(&self.id, transport, signal, 0);
                self.metrics.receiver_refused_request(&self.id, transport, r.reason());
                tracing::debug!(receiver = %self.id, transport, reason = r.reason(), "refused a request before decoding");
            })
    }

    /// Queues a validated payload and counts the outcome.
    pub async fn consume(
        &self,
        transport: &str,
        payload: Payload,
        started: Instant,
    ) -> Result<(), Refusal> {
        let (signal, items) = (payload.signal, payload.items);
        let result = self.router.consume(payload).await;
        match &result {
            Ok(()) => self.metrics.receiver_accepted(
                &self.id,
                transport,
                signal,
                items,
                started.elapsed(),
            ),
            Err(r) if r.is_retryable() => {
                self.metrics
                    .receiver_refused(&self.id, transport, signal, items);
                self.metrics
                    .receiver_refused_request(&self.id, transport, r.reason());
            }
            Err(_) => self
                .metrics
                .receiver_failed(&self.id, transport, signal, items),
        }
        result
    }

    /// Counts a request that could not be decoded.
    pub fn malformed(&self, transport: &str, signal: Signal, error: &dyn std::fmt::Display) {
        self.metrics.receiver_failed(&self.id, transport, signal, 0);
        tracing::debug!(receiver = %self.id, transport, %signal, error = %error, "rejected a malformed request");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: requests reserve memory until the budget is spent, then one finishes.
    /// Guarantees: the next request is refused with a retryable error while the budget is
    /// spent, and admitted again once memory is given back; a request larger than the whole
    /// budget still passes alone.
    #[test]
    fn in_flight_budget_refuses_when_spent_and_recovers() {
        let budget = InFlightBudget::new(10 << 20);
        let a = budget.try_reserve(6 << 20).expect("first fits");
        let refused = budget.try_reserve(6 << 20).expect_err("over budget");
        assert!(refused.is_retryable());
        drop(a);
        let big = budget
            .try_reserve(100 << 20)
            .expect("alone, even a huge one passes");
        assert!(budget.try_reserve(1).is_err());
        drop(big);
        assert!(budget.try_reserve(1 << 20).is_ok());
    }
}
