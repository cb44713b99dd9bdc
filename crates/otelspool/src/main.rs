//! The `otelspool` command: run the collector, validate a config (otelcol's CLI shape), or
//! ask a running one whether it is healthy or how its jobs' records fared (`jobs`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// `otelspool --version`: the crate's version and the git commit it was built from (`build.rs`;
/// `unknown` outside a git checkout).
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("OTELSPOOL_COMMIT"),
    ")"
);

/// A lossless OpenTelemetry collector sidecar: OTLP in, durable queue, OTLP out.
#[derive(Debug, Parser)]
#[command(name = "otelspool", version = LONG_VERSION, about)]
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
    /// Ask a running otelspool's health endpoint: exit 0 when it answers 200, 1 otherwise,
    /// printing why (each failing check). For container HEALTHCHECKs without curl.
    Healthcheck {
        /// `host:port` of the health endpoint. Default: the `health_check` extension's
        /// endpoint in `--config` when given, else 127.0.0.1:13133.
        #[arg(long, value_name = "HOST:PORT")]
        endpoint: Option<String>,
        /// Path to ask: /readyz (accepting and delivering), /livez (the process serves), or
        /// the extension's own path (/, otelcol's, the same as /readyz).
        #[arg(long, value_name = "P", default_value = "/readyz")]
        path: String,
        /// Give up after this long (Go syntax: 500ms, 3s).
        #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = otelspool_config::duration::parse_duration)]
        timeout: Duration,
    },
    /// Wait until a running otelspool has delivered everything it queued: exit 0 when every
    /// exporter queue is empty (nothing queued, nothing in flight), 1 at the deadline. For a
    /// rollback: first stop what sends to it (docs/migration.md), then wait, then stop it.
    WaitDrained {
        /// `host:port` of the health endpoint (its /status.json). Default as for healthcheck.
        #[arg(long, value_name = "HOST:PORT")]
        endpoint: Option<String>,
        /// Give up after this long (Go syntax: 90s, 10m).
        #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = otelspool_config::duration::parse_duration)]
        timeout: Duration,
        /// Ask this often; each answer is printed.
        #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = otelspool_config::duration::parse_duration)]
        every: Duration,
    },
    /// Ask a running otelspool's job ledger: every job (or job ID) as a table with its
    /// coverage (delivered / received); `jobs flush ID` waits for a job's delivery.
    #[command(args_conflicts_with_subcommands = true)]
    Jobs {
        /// One job's id (default: every job kept).
        id: Option<String>,
        /// The health endpoint, `host:port` or `http://host:port`. Default: the
        /// `health_check` extension's endpoint in `--config` when given, else 127.0.0.1:13133.
        #[arg(long, value_name = "URL", global = true)]
        endpoint: Option<String>,
        #[command(subcommand)]
        action: Option<JobsAction>,
    },
}

#[derive(Debug, Subcommand)]
enum JobsAction {
    /// Wait until every record of job ID received so far was delivered (or rejected or
    /// dropped); exit 0 only when all were delivered, 1 otherwise (timeout, rejected, dropped,
    /// unknown job).
    Flush {
        /// The job's id.
        id: String,
        /// Give up after this long (Go syntax: 500ms, 30s).
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = otelspool_config::duration::parse_duration)]
        timeout: Duration,
    },
}

fn jobs(
    cli: &Cli,
    id: Option<&String>,
    endpoint: Option<&String>,
    action: Option<&JobsAction>,
) -> ExitCode {
    use otelspool::ledger::cli;
    let endpoint = match health_endpoint(cli, endpoint) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match action {
        Some(JobsAction::Flush { id, timeout }) => match cli::flush(&endpoint, id, *timeout) {
            Ok(report) => {
                print!("{}", report.text);
                if report.all_delivered {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        None => match cli::show(&endpoint, id.map(String::as_str)) {
            Ok(table) => {
                print!("{table}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The health endpoint to ask: `--endpoint`, else the config's, else otelcol's default on
/// loopback.
fn health_endpoint(cli: &Cli, endpoint: Option<&String>) -> Result<String, String> {
    if let Some(e) = endpoint {
        return Ok(e.clone());
    }
    if cli.config.is_empty() {
        return Ok("127.0.0.1:13133".to_owned());
    }
    let loaded = load(cli)?;
    let c = &loaded.config;
    c.service
        .extensions
        .iter()
        .find_map(|id| match c.extensions.get(id) {
            Some(otelspool_config::ExtensionConfig::HealthCheck(h)) => Some(h.endpoint.clone()),
            _ => None,
        })
        .ok_or_else(|| "the configuration enables no health_check extension".to_owned())
}

fn healthcheck(cli: &Cli, endpoint: Option<&String>, path: &str, timeout: Duration) -> ExitCode {
    use otelspool::extensions::health_check::probe::probe;
    let endpoint = match health_endpoint(cli, endpoint) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("unhealthy: {e}");
            return ExitCode::FAILURE;
        }
    };
    match probe(&endpoint, path, timeout) {
        Ok(answer) if answer.healthy() => {
            println!("healthy: {}", answer.explain().join("\n  "));
            ExitCode::SUCCESS
        }
        Ok(answer) => {
            eprintln!("unhealthy: {}", answer.explain().join("\n  "));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}

fn wait_drained(
    cli: &Cli,
    endpoint: Option<&String>,
    timeout: Duration,
    every: Duration,
) -> ExitCode {
    use otelspool::extensions::health_check::drained;
    let endpoint = match health_endpoint(cli, endpoint) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("not drained: {e}");
            return ExitCode::FAILURE;
        }
    };
    match drained::wait_drained(&endpoint, timeout, every, |b| {
        println!("{} records queued: {}", b.records(), b.describe());
    }) {
        Ok(_) => {
            println!("drained: every queue is empty");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("not drained: {e}");
            ExitCode::FAILURE
        }
    }
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
    match &cli.command {
        Some(Command::Healthcheck {
            endpoint,
            path,
            timeout,
        }) => return healthcheck(&cli, endpoint.as_ref(), path, *timeout),
        Some(Command::WaitDrained {
            endpoint,
            timeout,
            every,
        }) => return wait_drained(&cli, endpoint.as_ref(), *timeout, *every),
        Some(Command::Jobs {
            id,
            endpoint,
            action,
        }) => return jobs(&cli, id.as_ref(), endpoint.as_ref(), action.as_ref()),
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
