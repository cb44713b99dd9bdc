//! `otelspool-loadgen`: concurrent ComfyUI-like jobs sending OTLP logs with SDK-like retries.
//!
//! See [`otelspool_testkit::loadgen`]. Prints a one-line summary; `--report` gets the details.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use otelspool_testkit::duration::parse_duration;
use otelspool_testkit::loadgen::{self, LoadgenConfig, transport::Protocol};

/// Plays N concurrent jobs against an OTLP logs endpoint and records every acknowledged id.
#[derive(Debug, Parser)]
#[command(name = "otelspool-loadgen", version)]
struct Args {
    /// OTLP endpoint, host:port (127.0.0.1 only in tests).
    #[arg(long, default_value = "127.0.0.1:4317")]
    endpoint: String,
    /// grpc, or http (protobuf POSTs to http://ENDPOINT/v1/logs).
    #[arg(long, value_enum, default_value = "grpc")]
    protocol: Protocol,
    /// Concurrent jobs.
    #[arg(long, default_value_t = 50)]
    jobs: u32,
    /// Connections shared round-robin by the jobs; 0 = one per job.
    #[arg(long, default_value_t = 0)]
    connections: u32,
    /// Log records per second per job; 0 = as fast as answers come back.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Stop starting requests after this long (default 30s unless --records is given).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Records per job, then stop.
    #[arg(long)]
    records: Option<u64>,
    /// Records per request.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Approximate body size in bytes.
    #[arg(long, default_value_t = 300)]
    record_size: usize,
    /// Prefix of every record id (default: random).
    #[arg(long)]
    run_id: Option<String>,
    /// Append each acknowledged record id to this file, one per line.
    #[arg(long)]
    ack_log: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Attempts per request before counting it failed; 0 = retry until the deadline.
    #[arg(long, default_value_t = 0)]
    max_attempts: u32,
    /// Hard stop for everything, retries included.
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    deadline: Duration,
    /// Timeout of one attempt.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    timeout: Duration,
    /// Runtime worker threads (default: the number of CPUs).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime.enable_all().build()?;
    let duration = match (args.duration, args.records) {
        (None, None) => Some(Duration::from_secs(30)),
        (d, _) => d,
    };
    let config = LoadgenConfig {
        endpoint: args.endpoint,
        protocol: args.protocol,
        jobs: args.jobs,
        connections: args.connections,
        rate: args.rate,
        duration,
        records: args.records,
        batch: args.batch,
        record_size: args.record_size,
        run_id: args
            .run_id
            .unwrap_or_else(|| format!("{:08x}", fastrand::u32(..))),
        ack_log: args.ack_log,
        report: args.report,
        max_attempts: args.max_attempts,
        deadline: args.deadline,
        timeout: args.timeout,
    };
    let report = runtime.block_on(loadgen::run(config))?;
    println!("{}", report.summary());
    Ok(())
}
