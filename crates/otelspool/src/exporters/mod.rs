//! Exporters: send queued OTLP payloads to a backend and say whether a failure may be retried.
//!
//! - [`OtlpGrpcExporter`] (`otlp`) and [`OtlpHttpExporter`] (`otlphttp`) send an
//!   already-encoded `Export*ServiceRequest` as is, never decoding it on the hot path.
//! - [`outcome`] decides, in one place, whether a failure is retryable ([`RetryAction`]).
//! - [`retry`] holds the exponential [`Backoff`] the queue consumer waits with between
//!   attempts; it retries retryable failures forever.
//! - [`settings`] holds the runtime settings; [`tls`] the shared rustls plumbing.

mod grpc_codec;
pub mod otlp_grpc;
pub mod otlp_http;
pub mod outcome;
pub mod retry;
pub mod settings;
pub mod tls;

pub use grpc_codec::PassThroughCodec;
pub use otlp_grpc::OtlpGrpcExporter;
pub use otlp_http::OtlpHttpExporter;
pub use outcome::{Accepted, ExportError, RetryAction, classify_grpc, classify_http};
pub use retry::{Backoff, BackoffSettings};
pub use settings::{
    BuildError, Compression, OtlpExporterSettings, OtlpHttpEndpoints, OtlpHttpExporterSettings,
    TlsSettings,
};
pub use tls::ensure_crypto_provider;

pub mod consumer;
pub mod dead_letter;
pub mod debug;

pub use consumer::{ConsumerContext, ConsumerSettings, Exporter, ProbeGate, spawn_consumers};
pub use dead_letter::DeadLetter;
pub use debug::{DebugExporter, Verbosity};
