//! The `otlp` receiver: OTLP over gRPC (`:4317`) and HTTP (`:4318`) for logs, traces and
//! metrics. A request is answered OK only after its data is durable in every exporter queue
//! of its pipelines; push-back is always retryable (`Unavailable` / 503 with a retry hint).

mod grpc;
mod http;

use std::sync::Arc;
use std::time::Instant;

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
}

impl ReceiverContext {
    /// Admission before decoding: a refusal costs no decode (otelcol decodes first; core #8632).
    pub fn admit(&self, transport: &str, signal: Signal) -> Result<(), Refusal> {
        self.router.admit(signal).inspect_err(|r| {
            self.metrics.receiver_refused(&self.id, transport, signal, 0);
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
            Err(r) if r.is_retryable() => self
                .metrics
                .receiver_refused(&self.id, transport, signal, items),
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
