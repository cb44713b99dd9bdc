//! The data path's shared vocabulary: signals, payloads, refusals, and the fan-out of one request into every exporter queue of its pipelines.

mod payload;
mod refusal;
mod router;
mod signal;
pub mod wire;

pub use payload::{Decoded, Payload, PayloadError, SPAN_ID_LEN, TRACE_ID_LEN, merge_requests};
pub use refusal::Refusal;
pub use router::{ExporterQueue, Pipeline, Router};
pub use signal::Signal;
