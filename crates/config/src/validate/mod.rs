//! Semantic checks on a decoded [`Config`]: pure (no I/O), every problem collected.
//!
//! Covers what serde cannot see: pipelines referencing defined components of the right kind,
//! queue storage pointing at an enabled `file_storage` extension, endpoint syntax, and the
//! numeric rules of `memory_limiter`, `batch`, the queue and retries. Components that are
//! defined but unused produce warnings, not errors. A message quotes a configured value only
//! through [`Diagnostics::show`], which names the environment variable a value came from
//! instead of printing it.
//!
//! [`endpoint`] checks endpoint syntax, [`components`] each component's settings, [`service`]
//! the `service:` section and the references between sections, [`security`] receivers' `tls`
//! and `auth` and the authenticator extensions.

mod components;
mod endpoint;
mod security;
mod service;

use crate::decode::Decoded;
use crate::error::Diagnostics;
use crate::model::{ComponentId, Config};

/// Runs every semantic check, recording errors and warnings in `diags`.
pub(crate) fn validate(decoded: &Decoded, diags: &mut Diagnostics<'_>) {
    let cfg: &Config = &decoded.config;
    components::check_receivers(cfg, diags);
    components::check_processors(cfg, diags);
    components::check_exporters(decoded, diags);
    components::check_extensions(cfg, diags);
    security::check_receiver_security(decoded, diags);
    security::check_authenticators(cfg, diags);
    service::check_service(decoded, diags);
}

/// Where a component id may be defined, for "is a processor, not a receiver" hints.
fn defined_in(decoded: &Decoded, section: &str, id: &ComponentId) -> bool {
    let cfg = &decoded.config;
    let here = match section {
        "receivers" => cfg.receivers.contains_key(id),
        "processors" => cfg.processors.contains_key(id),
        "exporters" => cfg.exporters.contains_key(id),
        _ => cfg.extensions.contains_key(id),
    };
    here || decoded.broken.iter().any(|(s, b)| *s == section && b == id)
}
