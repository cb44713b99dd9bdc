//! Self-observability: Prometheus metrics with otelcol's names, process figures, the HTTP
//! endpoint that serves them, and what health and the status page read ([`watch`], refreshed
//! by [`sampler`]).

pub mod metrics;
pub mod process;
pub mod sampler;
mod server;
pub mod watch;

pub use metrics::{Metrics, QueueGauges};
pub use sampler::run_sampler;
pub use server::serve_metrics;
pub use watch::{PipelineView, Rates, Watch, WatchedQueue};
