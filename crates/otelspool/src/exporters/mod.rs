//! Exporters: the wire clients that send one queued OTLP payload to a backend and say whether
//! a failure may be retried. What to send, when to retry and when to acknowledge is the
//! delivery stage's business ([`crate::delivery`]); an exporter makes one call and reports.
//!
//! - [`OtlpGrpcExporter`] (`otlp`) and [`OtlpHttpExporter`] (`otlphttp`) send an
//!   already-encoded `Export*ServiceRequest` as is, never decoding it on the hot path;
//!   [`DebugExporter`] (`debug`) only logs it.
//! - [`Exporter`] is the closed set of them, with one `match`.
//! - [`outcome`] decides, in one place, whether a failure is retryable ([`RetryAction`]), from
//!   codes and from the typed transport failures [`error_chain`] finds.
//! - [`compression`] compresses request bodies (gzip or zstd at a level; `gzip` keeps one
//!   deflate state per thread); `grpc_unary` frames
//!   the gRPC call itself so that the level can be chosen.
//! - [`settings`] holds the runtime settings; [`tls`] the shared rustls plumbing.

pub mod compression;
pub mod debug;
pub mod error_chain;
mod grpc_unary;
mod gzip;
pub mod otlp_grpc;
pub mod otlp_http;
pub mod outcome;
pub mod settings;
pub mod tls;
mod zstd_context;

use bytes::Bytes;

pub use debug::{DebugExporter, Verbosity};
pub use otlp_grpc::OtlpGrpcExporter;
pub use otlp_http::OtlpHttpExporter;
pub use outcome::{Accepted, ExportError, RetryAction, classify_grpc, classify_http};
pub use settings::{
    BuildError, Compression, OtlpExporterSettings, OtlpHttpEndpoints, OtlpHttpExporterSettings,
    TlsSettings,
};
pub use tls::ensure_crypto_provider;

use crate::pipeline::Signal;

/// A configured exporter: one closed set, one `match`.
#[derive(Debug, Clone)]
pub enum Exporter {
    /// `otlp`.
    OtlpGrpc(OtlpGrpcExporter),
    /// `otlphttp`.
    OtlpHttp(OtlpHttpExporter),
    /// `debug`.
    Debug(DebugExporter),
}

impl Exporter {
    /// Sends one encoded request.
    pub async fn export(&self, signal: Signal, body: Bytes) -> Result<Accepted, ExportError> {
        match self {
            Exporter::OtlpGrpc(e) => e.export(signal, body).await,
            Exporter::OtlpHttp(e) => e.export(signal, body).await,
            Exporter::Debug(e) => Ok(e.export(signal, &body)),
        }
    }
}
