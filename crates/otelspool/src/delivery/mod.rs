//! Delivery: the ack path. Takes batches from an exporter's durable queue, hands them to the
//! exporter, and acknowledges them to the queue (which then deletes them) only once the
//! backend accepted them.
//!
//! What it guarantees:
//! - Nothing is deleted from the queue before the backend accepted it, or before it was
//!   written to the dead-letter file after a permanent rejection. A crash at any point leaves
//!   unacknowledged data queued; it is sent again after restart (at-least-once).
//! - Retryable failures are retried with backoff for as long as it takes: no time cutoff unless
//!   the user set `max_elapsed_time` (otelcol drops after 300 s by default); then the entries
//!   of a failed batch queued longer than that go to the dead-letter file, the rest are retried.
//! - A permanent failure of a merged batch is retried entry by entry, so one bad request does
//!   not take good ones with it; what the backend still rejects goes to the dead-letter file,
//!   is counted in `otelspool_exporter_dead_lettered_*` and `otelcol_exporter_send_failed_*`
//!   and logged with the reason.
//! - A batch that failed with a retryable error goes back to the queue, so consumers hold only
//!   what is being sent at this moment. While the backend fails, one consumer at a time
//!   probes it, spaced by one backoff per queue (exporter and signal) that grows across all
//!   consumers' failures to `max_interval` and is reset only by a success.
//! - Items the backend accepted but dropped (OTLP partial success) are not resent: they are
//!   counted in `otelspool_exporter_rejected_*` (and in `otelcol_exporter_send_failed_*`), and
//!   the backend's message is logged at most once a minute per queue, with the count of
//!   batches not logged (`telemetry::log_limit`).
//! - At shutdown, unsent data simply stays in the queue, on disk.
//!
//! Files: [`consumer`] (the loop), [`batch`] (reading and merging a batch), [`backoff`] (the
//! delay between probes), [`probe_gate`] (the queue's shared retry state: who probes, when),
//! [`dead_letter`] (where permanent rejections go), [`status`] (last success, last error and
//! counts per queue, for health and the status page).

pub mod backoff;
pub mod batch;
pub mod consumer;
pub mod dead_letter;
pub mod probe_gate;
pub mod status;

pub use backoff::{Backoff, BackoffSettings};
pub use consumer::{ConsumerContext, ConsumerSettings, spawn_consumers};
pub use dead_letter::{DeadLetter, read_dead_letters};
pub use probe_gate::ProbeGate;
pub use status::{DeliverySnapshot, DeliveryStatus, FailureKind, LastError, LatencySummary};
