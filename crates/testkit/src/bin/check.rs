//! `otelspool-check`: exact loss accounting from loadgen ack logs and backend record files.
//!
//! Prints the [`otelspool_testkit::check::CheckReport`] as JSON (and writes it to `--out`);
//! exits 1 if any acknowledged record was lost, 2 on bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use otelspool_testkit::check::{self, CheckInput};

/// Compares acknowledged ids with what the backend recorded.
#[derive(Debug, Parser)]
#[command(name = "otelspool-check", version)]
struct Args {
    /// A loadgen ack log (repeatable).
    #[arg(long = "ack-log", required = true)]
    ack_logs: Vec<PathBuf>,
    /// A test backend record file (repeatable).
    #[arg(long = "records", required = true)]
    records: Vec<PathBuf>,
    /// A loadgen --report file, for the sent count (repeatable, optional).
    #[arg(long = "loadgen-report")]
    reports: Vec<PathBuf>,
    /// Also write the JSON verdict here.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let input = CheckInput {
        ack_logs: args.ack_logs,
        records: args.records,
        reports: args.reports,
    };
    let verdict = match check::check(&input) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("otelspool-check: {e:#}");
            return ExitCode::from(2);
        }
    };
    let json = match serde_json::to_string(&verdict) {
        Ok(json) => json,
        Err(e) => {
            eprintln!("otelspool-check: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{json}");
    if let Some(out) = &args.out
        && let Err(e) = std::fs::write(out, &json)
    {
        eprintln!("otelspool-check: writing {}: {e}", out.display());
        return ExitCode::from(2);
    }
    if verdict.lost > 0 {
        eprintln!(
            "otelspool-check: {} acknowledged records lost, e.g. {:?}",
            verdict.lost, verdict.lost_examples
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
