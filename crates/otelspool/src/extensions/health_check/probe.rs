//! The client side of the health endpoint, for `otelspool healthcheck` (a container's
//! `HEALTHCHECK` where there is no curl): one plain HTTP/1.0 GET over a blocking socket with
//! a deadline, no runtime, no TLS. HTTP/1.0 makes the server close the connection after a
//! body that is never chunked, so reading to the end gives the whole answer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The largest answer read; a health body is a few hundred bytes.
const MAX_RESPONSE: u64 = 1 << 20;

/// Why the endpoint could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The endpoint does not resolve to an address.
    #[error("cannot resolve {endpoint}: {source}")]
    Resolve {
        /// The endpoint as given.
        endpoint: String,
        /// The cause.
        source: std::io::Error,
    },
    /// No address accepted a connection in time.
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        /// The endpoint as given.
        endpoint: String,
        /// The last cause.
        source: std::io::Error,
    },
    /// Sending or reading failed, or the deadline passed.
    #[error("no answer from {endpoint}: {source}")]
    Exchange {
        /// The endpoint as given.
        endpoint: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The answer is not HTTP.
    #[error("{endpoint} did not answer HTTP")]
    NotHttp {
        /// The endpoint as given.
        endpoint: String,
    },
}

/// The endpoint's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeAnswer {
    /// HTTP status code.
    pub status: u16,
    /// The body (JSON from otelspool).
    pub body: String,
}

/// The address to connect to for a listen address: all-interfaces forms (`:13133`,
/// `0.0.0.0:13133`, `[::]:13133`) mean this host's loopback.
pub fn connect_address(endpoint: &str) -> String {
    let e = endpoint.trim_start_matches("http://").trim_end_matches('/');
    if let Some(port) = e.strip_prefix(':') {
        format!("127.0.0.1:{port}")
    } else if let Some(port) = e.strip_prefix("0.0.0.0:") {
        format!("127.0.0.1:{port}")
    } else if let Some(port) = e.strip_prefix("[::]:") {
        format!("[::1]:{port}")
    } else {
        e.to_owned()
    }
}

/// GETs `path` from `endpoint` (`host:port`) within `timeout`.
pub fn probe(endpoint: &str, path: &str, timeout: Duration) -> Result<ProbeAnswer, ProbeError> {
    call("GET", endpoint, path, timeout)
}

/// Sends `method path` (no body) to `endpoint` (`host:port`, or `http://host:port`) and reads
/// the answer within `timeout`. Used by `otelspool healthcheck` and `otelspool jobs`.
pub fn call(
    method: &str,
    endpoint: &str,
    path: &str,
    timeout: Duration,
) -> Result<ProbeAnswer, ProbeError> {
    let deadline = Instant::now() + timeout;
    let target = connect_address(endpoint);
    let addrs: Vec<SocketAddr> = target
        .to_socket_addrs()
        .map_err(|source| ProbeError::Resolve {
            endpoint: endpoint.to_owned(),
            source,
        })?
        .collect();
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    let mut stream = None;
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        match TcpStream::connect_timeout(&addr, left.max(Duration::from_millis(1))) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut stream = stream.ok_or_else(|| ProbeError::Connect {
        endpoint: endpoint.to_owned(),
        source: last,
    })?;
    let exchange = |source| ProbeError::Exchange {
        endpoint: endpoint.to_owned(),
        source,
    };
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    stream.set_read_timeout(Some(left)).map_err(exchange)?;
    stream.set_write_timeout(Some(left)).map_err(exchange)?;
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {target}\r\nUser-Agent: otelspool-healthcheck\r\nAccept: application/json\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(exchange)?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .map_err(exchange)?;
    parse_response(&raw).ok_or_else(|| ProbeError::NotHttp {
        endpoint: endpoint.to_owned(),
    })
}

/// Splits a raw HTTP/1.x response into its status code and body.
fn parse_response(raw: &[u8]) -> Option<ProbeAnswer> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status_line = head.lines().next()?;
    let mut parts = status_line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    Some(ProbeAnswer {
        status,
        body: body.to_owned(),
    })
}

impl ProbeAnswer {
    /// True for 200: what `otelspool healthcheck` exits 0 on.
    pub fn healthy(&self) -> bool {
        self.status == 200
    }

    /// Lines for people: the status, then one line per failing check (from the JSON body's
    /// `failing_checks`), or the body itself when it is not otelspool's JSON.
    pub fn explain(&self) -> Vec<String> {
        let json: Option<Value> = serde_json::from_str(&self.body).ok();
        let status = json
            .as_ref()
            .and_then(|j| j["status"].as_str())
            .unwrap_or("");
        let mut lines = vec![
            format!("HTTP {} {status}", self.status)
                .trim_end()
                .to_owned(),
        ];
        match json.as_ref().and_then(|j| j["failing_checks"].as_array()) {
            Some(checks) => lines.extend(checks.iter().map(|c| {
                format!(
                    "{}: {}",
                    c["check"].as_str().unwrap_or("?"),
                    c["message"].as_str().unwrap_or("")
                )
            })),
            None if json.is_none() && !self.body.trim().is_empty() => {
                lines.push(self.body.trim().chars().take(500).collect())
            }
            None => {}
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: listen-address forms from configs.
    /// Guarantees: all-interfaces forms connect to loopback; others are kept.
    #[test]
    fn listen_addresses_become_connect_addresses() {
        assert_eq!(connect_address(":13133"), "127.0.0.1:13133");
        assert_eq!(connect_address("0.0.0.0:13133"), "127.0.0.1:13133");
        assert_eq!(connect_address("[::]:13133"), "[::1]:13133");
        assert_eq!(connect_address("localhost:13133"), "localhost:13133");
        assert_eq!(connect_address("http://127.0.0.1:1/"), "127.0.0.1:1");
    }

    /// Scenario: a 503 answer with two failing checks, a 200, and bytes that are not HTTP.
    /// Guarantees: the status code is read from the status line; each failing check becomes a
    /// line naming the check; garbage is refused.
    #[test]
    fn answers_are_parsed_and_explained() {
        let raw = b"HTTP/1.0 503 Service Unavailable\r\ncontent-type: application/json\r\n\r\n{\"status\":\"Server not available\",\"failing_checks\":[{\"check\":\"max_oldest_record_age\",\"message\":\"exporter otlp (logs): oldest queued record is 12.0s old\"},{\"check\":\"starting\",\"message\":\"pipelines are not running yet\"}]}";
        let a = parse_response(raw).expect("http");
        assert!(!a.healthy());
        assert_eq!(
            a.explain(),
            vec![
                "HTTP 503 Server not available",
                "max_oldest_record_age: exporter otlp (logs): oldest queued record is 12.0s old",
                "starting: pipelines are not running yet",
            ]
        );
        let ok = parse_response(b"HTTP/1.1 200 OK\r\n\r\n{\"status\":\"Server available\"}")
            .expect("http");
        assert!(ok.healthy());
        assert_eq!(ok.explain(), vec!["HTTP 200 Server available"]);
        assert_eq!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n"), None);
    }
}
