//! Self-observability: Prometheus metrics with otelcol's names, process figures (with the
//! cgroup memory limit), the build's identity, and the HTTP endpoint that serves them.

pub mod cgroup;
pub mod metrics;
pub mod process;
mod registry;
mod server;

pub use metrics::{Metrics, QueueGauges};
pub use server::serve_metrics;
