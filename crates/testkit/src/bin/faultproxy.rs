//! `otelspool-faultproxy`: a TCP proxy that blackholes, slows, resets or cuts on command.
//!
//! See [`otelspool_testkit::faultproxy`] for the modes and the control API.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use otelspool_testkit::faultproxy::{self, ProxyConfig, ProxyMode};
use tracing_subscriber::EnvFilter;

/// A TCP fault proxy for tests.
#[derive(Debug, Parser)]
#[command(name = "otelspool-faultproxy", version)]
struct Args {
    /// Client-facing listen address, e.g. 127.0.0.1:0.
    #[arg(long)]
    listen: SocketAddr,
    /// Where connections are forwarded.
    #[arg(long)]
    upstream: SocketAddr,
    /// Control API listen address (GET /stats, GET|POST /mode).
    #[arg(long)]
    control: SocketAddr,
    /// Write the bound addresses as JSON to this file once listening.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Initial mode: pass, blackhole, reset, slow:MS, cut.
    #[arg(long, default_value = "pass")]
    mode: ProxyMode,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    faultproxy::run(ProxyConfig {
        listen: args.listen,
        upstream: args.upstream,
        control: args.control,
        ready_file: args.ready_file,
        mode: args.mode,
    })
    .await
}
