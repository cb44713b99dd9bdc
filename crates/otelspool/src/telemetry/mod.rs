//! Self-observability: Prometheus metrics with otelcol's names, process figures (with the
//! cgroup memory limit), the build's identity, and the HTTP endpoint that serves them; and the
//! rate limit of repeated error lines (`log_limit`).

pub mod cgroup;
pub mod log_limit;
pub mod metrics;
pub mod process;
mod registry;
mod server;

pub use log_limit::{LogLimit, REPEAT_LOG_INTERVAL, RateLimitedLog};
pub use metrics::{Metrics, QueueGauges};
pub use server::serve_metrics;
