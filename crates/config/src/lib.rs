//! otelspool's configuration: OpenTelemetry-Collector-compatible YAML, parsed into typed structs.
//!
//! Loading runs four stages, each collecting every problem it finds:
//! 1. `env`: `${env:NAME}` substitution on the raw text (lines stay exact);
//! 2. `yaml`: YAML → `serde_json::Value` plus a key-path → line index;
//! 3. `decode`: component dispatch by type and serde decoding with key paths, retrying past
//!    each bad key so that all of them are reported;
//! 4. `validate`: pure semantic checks (references, endpoints, limits).
//!
//! No message prints a value that came from an environment variable: the env stage records
//! which text each reference filled, the YAML stage carries that to key paths, and messages
//! about those paths name the variable instead (`redact`). YAML aliases may copy only a bounded
//! amount (`yaml`), so a small file cannot expand into gigabytes.
//!
//! A component type or key otelspool does not implement is an error naming it, never silently
//! ignored; the few otelcol keys that are accepted and ignored produce warnings.

mod decode;
pub mod duration;
mod env;
mod error;
pub mod model;
mod redact;
mod validate;
mod yaml;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors};
pub use model::*;
pub use redact::Redactor;

use error::Diagnostics;

/// The embedded default configuration, used when otelspool runs without `--config`.
pub const DEFAULT_CONFIG_YAML: &str = include_str!("default.yaml");

/// A successfully loaded configuration and the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// Unset environment variables, accepted-but-ignored keys, unused components; formatted
    /// like errors (`{source}:{line}: {path}: {message}`).
    pub warnings: Vec<String>,
    /// Hides the values that came from environment variables in messages made after loading
    /// (a start-up error that quotes an endpoint): apply it to any such text before printing.
    pub redactor: Redactor,
}

/// Reads `path`, substitutes the process environment, parses and validates.
///
/// # Errors
/// Every problem found, or a single error if the file cannot be read.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigErrors> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            source: source.clone(),
            path: String::new(),
            line: None,
            message: format!("cannot read the configuration file: {e}"),
        }])
    })?;
    load_str(&text, &source, &|name| std::env::var(name).ok())
}

/// Substitutes `env`, parses and validates `text`; `source` names it in messages.
///
/// # Errors
/// Every problem found, sorted by line.
pub fn load_str(
    text: &str,
    source: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigErrors> {
    let substituted = env::substitute(text, env);
    let (root, index) = match yaml::parse(&substituted.text, &substituted.substitutions) {
        Ok(parsed) => parsed,
        Err(e) => {
            let mut errors: Vec<ConfigError> = substituted
                .errors
                .iter()
                .map(|n| ConfigError {
                    source: source.to_string(),
                    path: String::new(),
                    line: Some(n.line),
                    message: n.message.clone(),
                })
                .collect();
            errors.push(ConfigError {
                source: source.to_string(),
                path: String::new(),
                line: Some(e.line),
                message: match e.kind {
                    yaml::YamlErrorKind::Syntax => format!("YAML syntax error: {}", e.message),
                    yaml::YamlErrorKind::AliasBudget => e.message,
                },
            });
            return Err(ConfigErrors::sorted(errors));
        }
    };
    let mut diags = Diagnostics::new(source, &index, &substituted.substitutions);
    for n in &substituted.errors {
        let path = index.path_at(n.line).unwrap_or_default().to_string();
        diags.errors.push(ConfigError {
            source: source.to_string(),
            path,
            line: Some(n.line),
            message: n.message.clone(),
        });
    }
    for n in &substituted.warnings {
        let path = index.path_at(n.line).unwrap_or_default().to_string();
        let w = ConfigError {
            source: source.to_string(),
            path,
            line: Some(n.line),
            message: n.message.clone(),
        };
        diags.warnings.push(w.to_string());
    }
    let decoded = decode::decode(root, &mut diags);
    validate::validate(&decoded, &mut diags);
    if diags.errors.is_empty() {
        Ok(Loaded {
            config: decoded.config,
            warnings: diags.warnings,
            redactor: Redactor::new(&substituted.substitutions),
        })
    } else {
        Err(ConfigErrors::sorted(diags.errors))
    }
}
