//! Checks of receiver security: each protocol's `tls` names its certificate and key, each
//! `auth.authenticator` resolves to a `bearertokenauth` extension that is defined and listed in
//! `service.extensions` (otelcol fails start-up with "authenticator not found" otherwise), and
//! each `bearertokenauth` has exactly one of `token` or `tokens` that can be sent in a header.
//!
//! No message here quotes a token: a token error names the key (and the variable it came
//! from, when unset), never the value.

use super::defined_in;
use crate::decode::Decoded;
use crate::error::Diagnostics;
use crate::model::{
    BearerTokenAuthConfig, Config, ExtensionConfig, ReceiverConfig, ServerAuthConfig,
    TlsServerConfig,
};

/// The authenticator types otelspool has.
const AUTHENTICATOR_TYPES: &[&str] = &["bearertokenauth"];

/// Checks `tls` and `auth` of every receiver protocol.
pub(super) fn check_receiver_security(decoded: &Decoded, diags: &mut Diagnostics<'_>) {
    let cfg = &decoded.config;
    for (id, r) in &cfg.receivers {
        let ReceiverConfig::Otlp(c) = r;
        let grpc = c.protocols.grpc.as_ref().map(|g| (&g.tls, &g.auth));
        let http = c.protocols.http.as_ref().map(|h| (&h.tls, &h.auth));
        for (protocol, settings) in [("grpc", grpc), ("http", http)] {
            let Some((tls, auth)) = settings else {
                continue;
            };
            let base = format!("receivers.{id}.protocols.{protocol}");
            if let Some(tls) = tls {
                check_tls(&format!("{base}.tls"), tls, diags);
            }
            if let Some(auth) = auth {
                check_auth(decoded, &format!("{base}.auth.authenticator"), auth, diags);
            }
        }
    }
}

fn check_tls(base: &str, tls: &TlsServerConfig, diags: &mut Diagnostics<'_>) {
    for (key, path) in [("cert_file", &tls.cert_file), ("key_file", &tls.key_file)] {
        if path.as_os_str().is_empty() {
            diags.empty(&format!("{base}.{key}"), Some("a PEM file"));
        }
    }
    if tls
        .client_ca_file
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        diags.empty(&format!("{base}.client_ca_file"), Some("a PEM file"));
    }
}

fn check_auth(decoded: &Decoded, path: &str, auth: &ServerAuthConfig, diags: &mut Diagnostics<'_>) {
    let id = &auth.authenticator;
    let shown = diags.show(path, &id.to_string());
    if !AUTHENTICATOR_TYPES.contains(&id.kind.as_str()) {
        diags.error(
            path,
            format!(
                "{shown} is not an authenticator (supported: {})",
                AUTHENTICATOR_TYPES.join(", ")
            ),
        );
    } else if !defined_in(decoded, "extensions", id) {
        diags.error(
            path,
            format!("extension {shown} is not defined in extensions"),
        );
    } else if !decoded.config.service.extensions.contains(id) {
        diags.error(
            path,
            format!("extension {shown} must be listed in service.extensions"),
        );
    }
}

/// Checks every `bearertokenauth` extension.
pub(super) fn check_authenticators(cfg: &Config, diags: &mut Diagnostics<'_>) {
    for (id, e) in &cfg.extensions {
        if let ExtensionConfig::BearerTokenAuth(b) = e {
            check_bearertokenauth(&format!("extensions.{id}"), b, diags);
        }
    }
}

fn check_bearertokenauth(base: &str, b: &BearerTokenAuthConfig, diags: &mut Diagnostics<'_>) {
    let token_path = format!("{base}.token");
    match (&b.token, b.tokens.is_empty()) {
        (Some(t), false) if !t.is_empty() => {
            diags.error(base, "set either \"token\" or \"tokens\", not both");
        }
        (Some(t), true) if t.is_empty() => diags.empty(&token_path, Some("a token")),
        // `token: ${env:X}` with X unset reads as no token: say which variable is not set.
        (None, true) if diags.unset_note(&token_path).is_some() => {
            diags.empty(&token_path, Some("a token"));
        }
        (None, true) => diags.error(base, "\"token\" or \"tokens\" is required"),
        _ => {}
    }
    let mut tokens: Vec<(String, &str)> = Vec::new();
    if let Some(t) = &b.token {
        tokens.push((token_path, t.expose()));
    }
    for (i, t) in b.tokens.iter().enumerate() {
        let path = format!("{base}.tokens[{i}]");
        if t.is_empty() {
            diags.empty(&path, Some("a token"));
        }
        tokens.push((path, t.expose()));
    }
    for (path, token) in tokens {
        if token.chars().any(char::is_control) {
            diags.error(
                &path,
                "must not contain control characters (a line break at the end of a token file?)",
            );
        }
    }
    if b.scheme.chars().any(|c| c.is_control() || c == ' ') {
        diags.error(
            &format!("{base}.scheme"),
            "must not contain spaces or control characters",
        );
    }
    let header_ok = !b.header.is_empty()
        && b.header
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
    if !header_ok {
        let path = format!("{base}.header");
        let shown = diags.show(&path, &b.header);
        diags.error(&path, format!("{shown} is not a valid HTTP header name"));
    }
}
