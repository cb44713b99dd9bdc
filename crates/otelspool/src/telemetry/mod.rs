//! Self-observability: Prometheus metrics with otelcol's names, process figures (with the
//! cgroup memory limit), the build's identity, the HTTP endpoint that serves them, what health
//! and the status page read ([`watch`], refreshed by [`sampler`]), and the rate limit of
//! repeated error lines (`log_limit`).

pub mod cgroup;
pub mod log_limit;
pub mod metrics;
pub mod process;
mod registry;
pub mod sampler;
mod server;
pub mod watch;

pub use log_limit::{LogLimit, REPEAT_LOG_INTERVAL, RateLimitedLog};
pub use metrics::{Metrics, QueueGauges};
pub use sampler::run_sampler;
pub use server::serve_metrics;
pub use watch::{PipelineView, Rates, Watch, WatchedQueue};
