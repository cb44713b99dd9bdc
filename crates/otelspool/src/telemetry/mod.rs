//! Self-observability: Prometheus metrics with otelcol's names, process figures, and the
//! HTTP endpoint that serves them; and the rate limit of repeated error lines (`log_limit`).

pub mod log_limit;
pub mod metrics;
pub mod process;
mod server;

pub use log_limit::{LogLimit, REPEAT_LOG_INTERVAL, RateLimitedLog};
pub use metrics::{Metrics, QueueGauges};
pub use server::serve_metrics;
