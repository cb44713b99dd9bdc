//! The `otelspool` command: run the collector, or validate a config, with otelcol's CLI shape.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// A lossless OpenTelemetry collector sidecar: OTLP in, durable queue, OTLP out.
#[derive(Debug, Parser)]
#[command(name = "otelspool", version, about)]
struct Cli {
    /// Configuration file (OpenTelemetry Collector YAML). Without it, the embedded default
    /// config runs: OTLP on 127.0.0.1:4317/4318, a durable queue in ./otelspool-data, and the
    /// debug exporter.
    #[arg(long = "config", global = true, value_name = "FILE")]
    config: Vec<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a configuration file and exit: 0 when valid, 1 with every problem listed.
    Validate,
    /// Print the embedded default configuration.
    PrintDefaultConfig,
}

fn load(cli: &Cli) -> Result<otelspool_config::Loaded, String> {
    match cli.config.as_slice() {
        [] => otelspool_config::load_str(
            otelspool_config::DEFAULT_CONFIG_YAML,
            "<default config>",
            &|name| std::env::var(name).ok(),
        )
        .map_err(|e| e.to_string()),
        [one] => otelspool_config::load_file(one).map_err(|e| e.to_string()),
        _ => Err("only one --config file is supported".to_string()),
    }
}

fn init_logging(level: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},h2=warn,hyper=warn,tower=warn"))
    });
    use std::io::IsTerminal;
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !json)
        .with_target(false);
    if json {
        fmt.json().flatten_event(true).init();
    } else {
        fmt.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::PrintDefaultConfig) => {
            print!("{}", otelspool_config::DEFAULT_CONFIG_YAML);
            return ExitCode::SUCCESS;
        }
        Some(Command::Validate) => {
            return match load(&cli) {
                Ok(loaded) => {
                    for w in &loaded.warnings {
                        eprintln!("warning: {w}");
                    }
                    let c = &loaded.config;
                    println!(
                        "{}: valid ({} receivers, {} processors, {} exporters, {} extensions, {} pipelines)",
                        cli.config
                            .first()
                            .map_or("<default config>".to_string(), |p| p.display().to_string()),
                        c.receivers.len(),
                        c.processors.len(),
                        c.exporters.len(),
                        c.extensions.len(),
                        c.service.pipelines.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(errors) => {
                    eprintln!("{errors}");
                    ExitCode::FAILURE
                }
            };
        }
        None => {}
    }
    let loaded = match load(&cli) {
        Ok(l) => l,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let logs = &loaded.config.service.telemetry.logs;
    init_logging(logs.tracing_level(), logs.encoding == "json");
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A start-up error may quote a setting (an endpoint) that came from an env variable.
    let redactor = loaded.redactor;
    match runtime.block_on(otelspool::app::run(loaded.config, CancellationToken::new())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let error = redactor.redact(&format!("{e:#}"));
            tracing::error!(%error, "otelspool stopped with an error");
            ExitCode::FAILURE
        }
    }
}
