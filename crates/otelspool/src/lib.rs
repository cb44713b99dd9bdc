//! otelspool: a lossless OpenTelemetry collector sidecar.
//!
//! Data path: `receivers` -> `processors` -> durable queue (`otelspool-queue`) -> `delivery`
//! -> `exporters`. A client is acknowledged only once its data is durable in every exporter's
//! queue; the ack path, `delivery`, deletes a queued record only after the backend accepted it.

pub mod app;
pub mod delivery;
pub mod exporters;
pub mod extensions;
pub mod ledger;
pub mod pipeline;
pub mod processors;
pub mod receivers;
pub mod server;
pub mod telemetry;
