//! The data path's shared vocabulary: signals, payloads, refusals, the pass-through gRPC codec,
//! and the fan-out of one request into every exporter queue of its pipelines.

mod grpc_codec;
mod payload;
mod refusal;
mod router;
mod signal;

pub use grpc_codec::PassThroughCodec;
pub use payload::{Decoded, Payload, PayloadError, SPAN_ID_LEN, TRACE_ID_LEN, merge_requests};
pub use refusal::Refusal;
pub use router::{ExporterQueue, Pipeline, Router};
pub use signal::Signal;
