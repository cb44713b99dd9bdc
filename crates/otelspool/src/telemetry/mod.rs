//! Self-observability: Prometheus metrics with otelcol's names, process figures, and the
//! HTTP endpoint that serves them.

pub mod metrics;
pub mod process;
mod server;

pub use metrics::{Metrics, QueueGauges};
pub use server::serve_metrics;
