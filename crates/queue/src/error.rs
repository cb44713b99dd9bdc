//! Errors the queue reports to its callers.

use std::time::Duration;

/// Why an append was refused. Every variant is retryable from the client's point of view:
/// nothing was acknowledged, so nothing is lost.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AppendError {
    /// The queue is at its byte or entry limit and `when_full` is `block`.
    #[error("queue is full ({reason}); retry later")]
    Full {
        /// Which limit was hit.
        reason: String,
        /// A suggested client back-off.
        retry_after: Duration,
    },
    /// Writing or syncing the queue file failed (for example the disk is full).
    #[error("queue write failed: {0}")]
    Io(String),
    /// The queue is shutting down.
    #[error("queue is closed")]
    Closed,
    /// The payload is larger than a frame may hold.
    #[error("payload of {0} bytes exceeds the queue's frame limit")]
    TooLarge(usize),
}

impl OpenError {
    /// A filesystem error on `path`.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        OpenError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Why a queue directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A filesystem operation on the queue directory failed. The message names the path; the
    /// operating system's error is the source (printed after it by a chain printer, once).
    #[error("queue path {path}")]
    Io {
        /// The file or directory involved.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Another process held the directory's lock file for longer than the lock timeout.
    #[error(
        "queue directory {dir} is in use by another process (gave up after waiting {waited:?} for its lock)"
    )]
    Locked {
        /// The queue directory.
        dir: String,
        /// How long the open waited for the lock.
        waited: Duration,
    },
}
