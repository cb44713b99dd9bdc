//! Endpoint syntax: `host:port` listen and dial addresses, gRPC exporter endpoints (an optional
//! `http://` or `https://` scheme, no path) and HTTP URLs.
//!
//! What is wrong is an [`EndpointError`], which never quotes the endpoint; the message quotes
//! it through [`Diagnostics::show`], so an endpoint from an environment variable is named by
//! its variable instead.

use crate::error::Diagnostics;

/// What is wrong with a `host:port` endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EndpointError {
    /// `[` without `]`.
    #[error("unclosed '['")]
    UnclosedBracket,
    /// No `:port`.
    #[error("missing port")]
    MissingPort,
    /// An IPv6 address without brackets.
    #[error("IPv6 addresses must be written in brackets, e.g. [::1]:4317")]
    Ipv6WithoutBrackets,
    /// A host with `/` or a space.
    #[error("the host contains '/' or a space")]
    BadHost,
    /// A port that is not a number from 0 to 65535.
    #[error("the port is not a number from 0 to 65535")]
    BadPort,
}

/// Checks a `host:port` listen or dial address; an empty host means all interfaces.
pub(crate) fn check_host_port(endpoint: &str) -> Result<(), EndpointError> {
    let (host, port) = if let Some(rest) = endpoint.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or(EndpointError::UnclosedBracket)?;
        let port = after.strip_prefix(':').ok_or(EndpointError::MissingPort)?;
        (h, port)
    } else {
        endpoint
            .rsplit_once(':')
            .ok_or(EndpointError::MissingPort)?
    };
    if host.contains(':') && !endpoint.starts_with('[') {
        return Err(EndpointError::Ipv6WithoutBrackets);
    }
    if host.contains(['/', ' ']) {
        return Err(EndpointError::BadHost);
    }
    port.parse::<u16>().map_err(|_| EndpointError::BadPort)?;
    Ok(())
}

/// Records an error at `path` unless `endpoint` (the value there, or part of it) is
/// `host:port`.
pub(super) fn check_endpoint(path: &str, endpoint: &str, diags: &mut Diagnostics<'_>) {
    if endpoint.is_empty() {
        diags.empty(path, Some("host:port"));
    } else if let Err(e) = check_host_port(endpoint) {
        let shown = diags.show(path, &endpoint);
        diags.error(
            path,
            format!("invalid endpoint {shown}: {e} (expected host:port)"),
        );
    }
}

/// Records an error at `path` unless `endpoint` is a gRPC exporter endpoint: `host:port`,
/// optionally after `http://` or `https://`, without a path.
pub(super) fn check_grpc_endpoint(path: &str, endpoint: &str, diags: &mut Diagnostics<'_>) {
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"));
    match rest {
        _ if endpoint.is_empty() => diags.empty(path, None),
        Some(r) if r.contains('/') => {
            let shown = diags.show(path, &endpoint);
            diags.error(
                path,
                format!("invalid endpoint {shown}: a gRPC endpoint has no path"),
            );
        }
        Some(r) if r.contains(':') && !r.ends_with(']') => check_endpoint(path, r, diags),
        Some(_) => {}
        None => check_endpoint(path, endpoint, diags),
    }
}

/// Records an error at `path` unless `url` is an `http://` or `https://` URL with a host (and
/// a valid port, if it has one).
pub(super) fn check_url(path: &str, url: &str, diags: &mut Diagnostics<'_>) {
    if url.is_empty() {
        diags.empty(path, None);
        return;
    }
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        let shown = diags.show(path, &url);
        diags.error(
            path,
            format!("invalid URL {shown}: it must start with http:// or https://"),
        );
        return;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        let shown = diags.show(path, &url);
        diags.error(path, format!("invalid URL {shown}: missing host"));
    } else if authority.contains(':') && !authority.ends_with(']') {
        check_endpoint(path, authority, diags);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: endpoints users write, good and bad.
    /// Guarantees: `host:port`, `:port` and bracketed IPv6 pass; each bad form fails with its
    /// own reason.
    #[test]
    fn host_port() {
        for ok in [
            "localhost:4317",
            "0.0.0.0:4317",
            ":4317",
            "[::1]:4317",
            "127.0.0.1:0",
        ] {
            assert_eq!(check_host_port(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("localhost", EndpointError::MissingPort),
            ("localhost:", EndpointError::BadPort),
            ("host:99999", EndpointError::BadPort),
            ("host:abc", EndpointError::BadPort),
            ("::1:4317", EndpointError::Ipv6WithoutBrackets),
            ("[::1]", EndpointError::MissingPort),
            ("[::1:4317", EndpointError::UnclosedBracket),
            ("a/b:1", EndpointError::BadHost),
        ] {
            assert_eq!(check_host_port(bad), Err(why), "{bad}");
        }
    }
}
