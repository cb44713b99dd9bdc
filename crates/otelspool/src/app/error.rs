//! [`BuildError`]: why a validated config could not be turned into running parts. Its own
//! module so that every wiring file (`build`, `queues`, `security`) depends on it and none on
//! another.

use crate::pipeline::Signal;

/// Why the config could not be turned into running parts.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An exporter could not be created.
    #[error("exporter {id}: {source}")]
    Exporter {
        /// Exporter id.
        id: String,
        /// The cause.
        source: crate::exporters::BuildError,
    },
    /// A queue could not be opened. The cause is the source, printed after this by a chain
    /// printer (`{:#}`), so it is not repeated here.
    #[error("exporter {id}: sending queue for {signal}")]
    Queue {
        /// Exporter id.
        id: String,
        /// Signal.
        signal: Signal,
        /// The cause.
        source: otelspool_queue::OpenError,
    },
    /// A referenced component is missing (validation should have caught it).
    #[error("{0}")]
    Invalid(String),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A receiver's TLS files could not be loaded (the cause is the error's source).
    #[error("receiver {id} ({protocol})")]
    ReceiverTls {
        /// Receiver id.
        id: String,
        /// `grpc` or `http`.
        protocol: &'static str,
        /// The cause.
        source: crate::receivers::tls::TlsError,
    },
}
