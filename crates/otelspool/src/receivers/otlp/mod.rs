//! The `otlp` receiver: OTLP over gRPC (`:4317`) and HTTP (`:4318`) for logs, traces and
//! metrics. A request is answered OK only after its data is durable in every exporter queue
//! of its pipelines; push-back is always retryable (`Unavailable` / 503 with a retry hint).
//! With `auth`, a request without the right token is refused (`Unauthenticated` / 401) before
//! its body is read.

mod body;
mod budget;
mod grpc;
mod http;

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use bytes::Bytes;

pub use body::{BODY_DEADLINE, BODY_RATE_WINDOW, BodyError, BodyPolicy, MIN_BODY_RATE};
pub use budget::{CONNECTION_SHARE_DIVISOR, Charge, DECODE_EXPANSION, InFlightBudget};
pub use grpc::{GrpcSettings, serve_grpc};
pub use http::{HttpSettings, router as http_router, serve_http};

use crate::pipeline::{Payload, Refusal, Router, Signal};
use crate::receivers::auth::BearerTokenAuth;
use crate::telemetry::{Metrics, REPEAT_LOG_INTERVAL, RateLimitedLog};

/// Refused requests are logged once a minute per (receiver, transport, reason).
static REFUSALS: LazyLock<RateLimitedLog<(String, &'static str, &'static str)>> =
    LazyLock::new(|| RateLimitedLog::new(REPEAT_LOG_INTERVAL));

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

impl ReceiverContext {
    /// Admission before reading the body: a refusal costs no read and no decode (otelcol
    /// decodes first; core #8632). Memory is charged later, as the body arrives.
    pub fn admit(&self, transport: &'static str, signal: Signal) -> Result<(), Refusal> {
        self.router
            .admit(signal)
            .inspect_err(|r| self.refused(transport, signal, r))
    }

    /// Lets a request in when there is no authenticator or it approves the request's
    /// headers; else counts and logs the refusal (`unauthenticated`). Runs before anything of
    /// the body is read.
    pub fn authenticate(
        &self,
        transport: &'static str,
        signal: Signal,
        auth: Option<&BearerTokenAuth>,
        headers: &::http::HeaderMap,
    ) -> Result<(), Refusal> {
        let Some(auth) = auth else { return Ok(()) };
        auth.check(headers).map_err(|failure| {
            let r = Refusal::Unauthenticated(failure.to_string());
            self.refused(transport, signal, &r);
            r
        })
    }

    /// Counts a request refused before its data reached the pipelines (authentication,
    /// admission, or the in-flight budget while it was read or decoded), and logs it at warn,
    /// once a minute per receiver, transport and reason, with the count not logged.
    pub fn refused(&self, transport: &'static str, signal: Signal, r: &Refusal) {
        self.metrics
            .receiver_refused(&self.id, transport, signal, 0);
        self.metrics
            .receiver_refused_request(&self.id, transport, r.reason());
        if let Some(not_logged) = REFUSALS.event((self.id.clone(), transport, r.reason())) {
            tracing::warn!(receiver = %self.id, transport, reason = r.reason(), error = %r, not_logged, "refused a request before reading it");
        }
    }

    /// Validates and counts a protobuf or OTLP/JSON body, charging its decoded form while it
    /// exists; after, `charge` covers the payload's bytes only. Malformed data is counted and
    /// refused as `Invalid`.
    pub fn decode(
        &self,
        transport: &'static str,
        signal: Signal,
        body: Bytes,
        json: bool,
        charge: &mut Charge,
    ) -> Result<Payload, Refusal> {
        charge
            .set(body.len().saturating_mul(DECODE_EXPANSION - 1))
            .inspect_err(|r| self.refused(transport, signal, r))?;
        let payload = if json {
            Payload::from_json(signal, &body)
        } else {
            Payload::from_protobuf_with_jobs(signal, body, self.router.job_keys(signal))
        };
        let payload = payload.map_err(|e| {
            self.malformed(transport, signal, &e);
            Refusal::Invalid(e.to_string())
        })?;
        // Shrinking never fails.
        let _ = charge.set(payload.body.len());
        Ok(payload)
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
