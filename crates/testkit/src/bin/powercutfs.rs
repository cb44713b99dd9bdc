//! `otelspool-powercutfs`: a FUSE filesystem whose power can be cut.
//!
//! See [`otelspool_testkit::powercut`] for the model (what survives a cut) and the control API.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use otelspool_testkit::powercut::{self, PowercutConfig};
use tracing_subscriber::EnvFilter;

/// Mounts a view of BACKING on MOUNT that keeps only what was synced when the power is cut.
#[derive(Debug, Parser)]
#[command(name = "otelspool-powercutfs", version)]
struct Args {
    /// The durable state: read at start, kept equal to what was made durable.
    #[arg(long)]
    backing: PathBuf,
    /// The mount point (an existing directory).
    #[arg(long)]
    mount: PathBuf,
    /// Control API listen address (POST /cut, GET /stats, POST /stop), e.g. 127.0.0.1:0.
    #[arg(long)]
    control: SocketAddr,
    /// Write the control address and mount point as JSON to this file once mounted.
    #[arg(long)]
    ready_file: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    powercut::run(PowercutConfig {
        backing: args.backing,
        mount: args.mount,
        control: args.control,
        ready_file: args.ready_file,
    })
    .await
}
