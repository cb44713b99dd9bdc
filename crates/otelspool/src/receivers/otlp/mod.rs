//! The `otlp` receiver: OTLP over gRPC (`:4317`) and HTTP (`:4318`) for logs, traces and
//! metrics. A request is answered OK only after its data is durable in every exporter queue
//! of its pipelines; push-back is always retryable (`Unavailable` / 503 with a retry hint).
//! With `auth`, a request without the right token is refused (`Unauthenticated` / 401) before
//! its body is read.

mod body;
mod budget;
mod grpc;
mod http;
mod offload;

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use bytes::{Buf, Bytes};

pub use body::{BODY_DEADLINE, BODY_RATE_WINDOW, BodyError, BodyPolicy, MIN_BODY_RATE, Received};
pub use budget::{CONNECTION_SHARE_DIVISOR, Charge, DECODE_EXPANSION, InFlightBudget};
pub use grpc::{GrpcSettings, serve_grpc};
pub use http::{HttpSettings, router as http_router, serve_http};
pub use offload::{OFFLOAD_MIN_BYTES, OFFLOAD_MIN_GZIP_BYTES, OFFLOAD_MIN_JSON_BYTES};

use crate::pipeline::{Payload, Refusal, Router, Signal};
use crate::receivers::auth::BearerTokenAuth;
use crate::telemetry::{Metrics, REPEAT_LOG_INTERVAL, RateLimitedLog};

/// Refused requests are logged once a minute per (receiver, transport, reason).
static REFUSALS: LazyLock<RateLimitedLog<(String, &'static str, &'static str)>> =
    LazyLock::new(|| RateLimitedLog::new(REPEAT_LOG_INTERVAL));

/// How a received body is encoded.
#[derive(Debug, Clone, Copy)]
pub struct BodyForm {
    /// gzip-compressed.
    pub gzip: bool,
    /// OTLP/JSON rather than protobuf.
    pub json: bool,
    /// The most bytes it may inflate to.
    pub limit: usize,
}

/// Why a received body did not become a payload.
#[derive(Debug)]
pub enum PrepareError {
    /// Inflating or assembling it failed (not yet counted or logged: each transport answers
    /// these its own way).
    Body(BodyError),
    /// It was refused while decoded (already counted and logged).
    Refused(Refusal),
}

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

    /// Validates and counts a protobuf or OTLP/JSON body. The walk of protobuf bytes allocates
    /// nothing, so the charge stays at the body's size; the decoded form of JSON is charged
    /// while it exists. After, `charge` covers the payload's bytes only. Malformed data is
    /// counted and refused as `Invalid`.
    pub fn decode(
        &self,
        transport: &'static str,
        signal: Signal,
        body: Bytes,
        json: bool,
        charge: &mut Charge,
    ) -> Result<Payload, Refusal> {
        if json {
            charge
                .set(body.len().saturating_mul(DECODE_EXPANSION - 1))
                .inspect_err(|r| self.refused(transport, signal, r))?;
        }
        let payload = if json {
            Payload::from_json_with_jobs(signal, &body, self.router.job_keys(signal))
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

    /// Turns a received body into a validated payload: gzip inflation (to at most `limit`
    /// bytes) when `gzip`, then [`decode`](Self::decode). A small body is handled here, a
    /// large one on the blocking pool (see `offload`), its charge moved along with its
    /// buffers and handed back with the payload, so that the budget holds what the buffers
    /// hold wherever they are. The charge must be kept until the payload is queued.
    pub async fn prepare(
        self: &Arc<Self>,
        transport: &'static str,
        signal: Signal,
        received: Received,
        body: BodyForm,
        mut charge: Charge,
    ) -> Result<(Payload, Charge), PrepareError> {
        if !offload::worth_it(received.remaining(), body.gzip, body.json) {
            let payload = self.prepare_now(transport, signal, received, body, &mut charge)?;
            return Ok((payload, charge));
        }
        let ctx = self.clone();
        offload::run(move || {
            let payload = ctx.prepare_now(transport, signal, received, body, &mut charge)?;
            Ok((payload, charge))
        })
        .await
        .unwrap_or(Err(PrepareError::Refused(Refusal::ShuttingDown)))
    }

    fn prepare_now(
        &self,
        transport: &'static str,
        signal: Signal,
        received: Received,
        body: BodyForm,
        charge: &mut Charge,
    ) -> Result<Payload, PrepareError> {
        let bytes = if body.gzip {
            received.gunzip(body.limit, charge)
        } else {
            received.into_bytes(charge).map_err(BodyError::Refused)
        };
        let bytes = bytes.map_err(PrepareError::Body)?;
        self.decode(transport, signal, bytes, body.json, charge)
            .map_err(PrepareError::Refused)
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
