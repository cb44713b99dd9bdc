//! `otelspool-testbackend`: an OTLP backend for tests that records and checks what it receives.
//!
//! See [`otelspool_testkit::backend`] for the record format and the control API.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use otelspool_testkit::backend::{self, BackendConfig, Mode};
use tracing_subscriber::EnvFilter;

/// An OTLP backend for tests: records every log record, span and metric point it receives.
#[derive(Debug, Parser)]
#[command(name = "otelspool-testbackend", version)]
struct Args {
    /// OTLP/gRPC listen address, e.g. 127.0.0.1:0.
    #[arg(long)]
    grpc: Option<SocketAddr>,
    /// OTLP/HTTP listen address.
    #[arg(long)]
    http: Option<SocketAddr>,
    /// Control API listen address (GET /stats, POST /mode, GET /headers).
    #[arg(long)]
    control: Option<SocketAddr>,
    /// Append one JSON line per received item to this file (replayed into the counters at start).
    #[arg(long)]
    record: Option<PathBuf>,
    /// Write the bound addresses as JSON to this file once listening.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Initial mode: ok, unavailable, resource_exhausted, invalid, slow:MS, partial:N, strict.
    #[arg(long, default_value = "ok")]
    mode: Mode,
    /// PEM certificate for gRPC TLS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for gRPC TLS (with --tls-cert).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let tls = args.tls_cert.zip(args.tls_key);
    backend::run(BackendConfig {
        grpc: args.grpc,
        http: args.http,
        control: args.control,
        record: args.record,
        ready_file: args.ready_file,
        mode: Some(args.mode),
        tls,
    })
    .await
}
