//! The crate's one walk of an error's `source()` chain: to describe an error (transport errors
//! hide their cause, e.g. "Connection refused", several sources deep) and to find, by type, the
//! transport failure behind a failed export.
//!
//! Retry decisions read only types and codes found here ([`transport_failure`]), never the
//! text: `std::io::Error` kinds, `hyper::Error`, `h2::Error`, `tonic::transport::Error` and
//! `reqwest::Error` predicates.

use std::error::Error;
use std::io::ErrorKind;

/// A failure of the connection to the backend, found by type in an error's source chain. It
/// says nothing about the data: the same request may succeed on another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    /// No connection could be made (refused, unreachable, DNS).
    Connect,
    /// The connection or the call timed out.
    Timeout,
    /// An established connection was closed, reset or cut mid-call.
    ConnectionLost,
    /// Another I/O, HTTP/2 or HTTP failure of the connection.
    Other,
}

/// `error`, then its sources, outermost first.
pub fn sources<'a>(
    error: &'a (dyn Error + 'static),
) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |e: &&'a (dyn Error + 'static)| (*e).source())
}

/// An error and its sources, joined with `: ` (a source whose text is already there is
/// skipped).
pub fn error_chain(error: &(dyn Error + 'static)) -> String {
    describe(error.to_string(), error.source())
}

/// `head`, followed by the text of `source` and its own sources, as [`error_chain`] joins them.
pub fn describe(head: String, source: Option<&(dyn Error + 'static)>) -> String {
    let mut text = head;
    for e in source.into_iter().flat_map(sources) {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
    }
    text
}

/// The first transport failure in `error`'s chain, outermost first, if any. Errors our own
/// side caused (a hyper "user" error, such as a request body that failed to encode) are not
/// transport failures; the walk goes on past them.
pub fn transport_failure(error: &(dyn Error + 'static)) -> Option<TransportFailure> {
    sources(error).find_map(classify_one)
}

fn classify_one(e: &(dyn Error + 'static)) -> Option<TransportFailure> {
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return Some(io_failure(io.kind()));
    }
    if let Some(h) = e.downcast_ref::<hyper::Error>() {
        return hyper_failure(h);
    }
    if let Some(h2) = e.downcast_ref::<h2::Error>() {
        return Some(if h2.is_io() {
            TransportFailure::ConnectionLost
        } else {
            TransportFailure::Other
        });
    }
    if let Some(r) = e.downcast_ref::<reqwest::Error>() {
        return reqwest_failure(r);
    }
    // tonic's transport error says only "transport error"; its source says what.
    None
}

fn io_failure(kind: ErrorKind) -> TransportFailure {
    match kind {
        ErrorKind::ConnectionRefused
        | ErrorKind::NotConnected
        | ErrorKind::AddrNotAvailable
        | ErrorKind::HostUnreachable
        | ErrorKind::NetworkUnreachable => TransportFailure::Connect,
        ErrorKind::TimedOut => TransportFailure::Timeout,
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe
        | ErrorKind::UnexpectedEof => TransportFailure::ConnectionLost,
        _ => TransportFailure::Other,
    }
}

fn hyper_failure(h: &hyper::Error) -> Option<TransportFailure> {
    if h.is_user() {
        return None;
    }
    Some(if h.is_timeout() {
        TransportFailure::Timeout
    } else if h.is_closed()
        || h.is_canceled()
        || h.is_incomplete_message()
        || h.is_body_write_aborted()
    {
        TransportFailure::ConnectionLost
    } else {
        TransportFailure::Other
    })
}

fn reqwest_failure(r: &reqwest::Error) -> Option<TransportFailure> {
    if r.is_timeout() {
        Some(TransportFailure::Timeout)
    } else if r.is_connect() {
        Some(TransportFailure::Connect)
    } else if r.is_request() || r.is_body() {
        Some(TransportFailure::ConnectionLost)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: io errors of several kinds, nested under a tonic status.
    /// Guarantees: the kind decides, wherever it sits in the chain; the text is never read.
    #[test]
    fn io_kinds_are_found_anywhere_in_the_chain() {
        let nested = |kind: ErrorKind| {
            tonic::Status::from_error(Box::new(std::io::Error::new(kind, "whatever it says")))
        };
        let cases = [
            (ErrorKind::ConnectionRefused, TransportFailure::Connect),
            (ErrorKind::TimedOut, TransportFailure::Timeout),
            (ErrorKind::ConnectionReset, TransportFailure::ConnectionLost),
            (ErrorKind::BrokenPipe, TransportFailure::ConnectionLost),
            (ErrorKind::Other, TransportFailure::Other),
        ];
        for (kind, expected) in cases {
            assert_eq!(transport_failure(&nested(kind)), Some(expected), "{kind:?}");
        }
        let plain = tonic::Status::internal("connection reset by peer: transport error");
        assert_eq!(transport_failure(&plain), None);
    }

    /// Scenario: an error whose source repeats part of its own text.
    /// Guarantees: the description joins the chain once, without repeating a part.
    #[test]
    fn describe_joins_new_parts_only() {
        let io = std::io::Error::new(ErrorKind::ConnectionRefused, "Connection refused");
        let status = tonic::Status::from_error(Box::new(io));
        let text = describe(
            "connect failed".to_owned(),
            std::error::Error::source(&status),
        );
        assert_eq!(text, "connect failed: Connection refused");
    }
}
