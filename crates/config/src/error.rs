//! Configuration errors: one [`ConfigError`] per problem, collected into [`ConfigErrors`].
//!
//! Every error names the file it came from, the key path inside the document
//! (`exporters.otlp/dash0.sending_queue.queue_size`, sequences as `[0]`) and, when known, the
//! 1-based line, so that a user can fix every problem in one edit. No message shows a value
//! that came from an environment variable (see [`crate::redact`]).

use std::fmt;

use crate::env::Substitution;
use crate::redact::{self, Shown};

/// One problem found while loading a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Name of the configuration source (usually the file path).
    pub source: String,
    /// Key path of the offending value, e.g. `exporters.otlp/dash0.sending_queue.queue_size`.
    /// Empty when the problem is not tied to a key.
    pub path: String,
    /// 1-based line of the offending key, when known.
    pub line: Option<usize>,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one configuration, in document order where lines are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Sorts errors by line (errors without a line last), keeping discovery order otherwise.
    pub(crate) fn sorted(mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        ConfigErrors(errors)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects errors and warnings while a document is decoded and validated.
///
/// Paths are resolved to lines through the document's [`crate::yaml::LineIndex`]; a path that
/// is not in the index takes the line of its nearest ancestor that is. The same index says
/// which `${env:...}` references made a path's value: a message shows such a value only through
/// [`Diagnostics::show`], which names the variables instead, and an error at a path that an
/// unset variable left empty says which variable is not set.
pub(crate) struct Diagnostics<'a> {
    source: &'a str,
    index: &'a crate::yaml::LineIndex,
    subs: &'a [Substitution],
    pub(crate) errors: Vec<ConfigError>,
    pub(crate) warnings: Vec<String>,
}

impl<'a> Diagnostics<'a> {
    /// Starts an empty collection for `source`, whose references were replaced as `subs` says.
    pub(crate) fn new(
        source: &'a str,
        index: &'a crate::yaml::LineIndex,
        subs: &'a [Substitution],
    ) -> Self {
        Diagnostics {
            source,
            index,
            subs,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// How a message may show the value at `path`.
    pub(crate) fn shown(&self, path: &str) -> Shown {
        redact::shown(self.subs, self.index.sources_of(path))
    }

    /// The value at `path` for a message: `value` as `{:?}` shows it when it is written in
    /// the file, the variables it came from when it is not.
    pub(crate) fn show(&self, path: &str, value: &dyn fmt::Debug) -> String {
        self.shown(path).or(|| format!("{value:?}"))
    }

    /// `${env:X} is not set` when an unset variable is part of the value at `path`.
    pub(crate) fn unset_note(&self, path: &str) -> Option<String> {
        redact::unset_note(self.subs, self.index.sources_of(path))
    }

    /// Records an error at `path`, saying which variable is not set if one made its value.
    pub(crate) fn error(&mut self, path: &str, message: impl Into<String>) {
        let mut message = message.into();
        if let Some(note) = self.unset_note(path) {
            message = format!("{message} ({note})");
        }
        self.record(path, message);
    }

    /// Records that the required value at `path` is empty: `is empty: ${env:X} is not set` when
    /// an unset variable emptied it, `must not be empty` otherwise; `expected` says what it
    /// should have been, when that helps.
    pub(crate) fn empty(&mut self, path: &str, expected: Option<&str>) {
        let mut message = match self.unset_note(path) {
            Some(note) => format!("is empty: {note}"),
            None => "must not be empty".to_string(),
        };
        if let Some(expected) = expected {
            message = format!("{message} (expected {expected})");
        }
        self.record(path, message);
    }

    fn record(&mut self, path: &str, message: String) {
        let line = self.index.line_of(path);
        self.errors.push(ConfigError {
            source: self.source.to_string(),
            path: path.to_string(),
            line,
            message,
        });
    }

    /// Records a warning at `path`, formatted like an error.
    pub(crate) fn warn(&mut self, path: &str, message: impl Into<String>) {
        let line = self.index.line_of(path);
        let e = ConfigError {
            source: self.source.to_string(),
            path: path.to_string(),
            line,
            message: message.into(),
        };
        self.warnings.push(e.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: an error with and without a line is displayed.
    /// Guarantees: the `{source}:{line}: {path}: {message}` format, line omitted when unknown.
    #[test]
    fn display_format() {
        let mut e = ConfigError {
            source: "c.yaml".into(),
            path: "a.b".into(),
            line: Some(3),
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "c.yaml:3: a.b: bad");
        e.line = None;
        assert_eq!(e.to_string(), "c.yaml: a.b: bad");
        let all = ConfigErrors(vec![e.clone(), e]);
        assert_eq!(all.to_string(), "c.yaml: a.b: bad\nc.yaml: a.b: bad");
    }
}
