//! YAML to a line-annotated tree, then to `serde_json::Value` plus a key-path → line index.
//!
//! Built on yaml-rust2's marked event parser so every key keeps its 1-based line. Scalars are
//! resolved like Go's yaml.v3 (YAML 1.2 core schema): `null`/`~`/empty, `true`/`false`, integers
//! (decimal, `0x`, `0o`), floats; quoted scalars are always strings. Anchors, aliases and merge
//! keys (`<<`) are supported; duplicate keys are an error, as in otelcol. Only one document is
//! allowed. What aliases may copy is bounded (see [`builder`]), so a small file cannot expand
//! into gigabytes.
//!
//! Paths use `.` between keys and `[i]` for sequence items:
//! `service.pipelines.logs.exporters[0]`.
//!
//! [`builder`] turns parser events into the tree and the index; [`scalar`] resolves plain
//! scalars.

mod builder;
mod scalar;

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::env::{Origin, Substitution};
use crate::redact::Sources;
use builder::Builder;

/// Why a document could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum YamlErrorKind {
    /// Not valid YAML, or YAML that otelspool does not take (two documents, duplicate keys).
    Syntax,
    /// Aliases would copy more than the alias budget allows.
    AliasBudget,
}

/// A document that could not be read, with the 1-based line of the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct YamlError {
    /// What kind of problem.
    pub(crate) kind: YamlErrorKind,
    /// 1-based line.
    pub(crate) line: usize,
    /// What is wrong.
    pub(crate) message: String,
}

/// One segment of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// Formats segments as a display path (`a.b[0].c`).
pub(crate) fn path_string(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Maps display paths to the line of their key and the [`Sources`] of their key and value,
/// and lines back to the deepest path on them.
#[derive(Debug, Default)]
pub(crate) struct LineIndex {
    lines: HashMap<String, usize>,
    sources: HashMap<String, Sources>,
    by_line: BTreeMap<usize, String>,
}

impl LineIndex {
    /// Line of `path`, or of its nearest indexed ancestor.
    pub(crate) fn line_of(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(l) = self.lines.get(p) {
                return Some(*l);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }

    /// Substitutions inside `path`'s key and value, or, for a path that is not written in the
    /// document (a value copied by an alias or a merge key), its nearest written ancestor's.
    pub(crate) fn sources_of(&self, path: &str) -> Option<&Sources> {
        let mut p = path;
        loop {
            if self.lines.contains_key(p) {
                return self.sources.get(p);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }

    /// The deepest key path that starts on `line`, if any.
    pub(crate) fn path_at(&self, line: usize) -> Option<&str> {
        self.by_line.get(&line).map(String::as_str)
    }

    fn insert(&mut self, path: String, line: usize, sources: Sources) {
        self.by_line.insert(line, path.clone());
        if !sources.is_empty() {
            self.sources.entry(path.clone()).or_insert(sources);
        }
        self.lines.entry(path).or_insert(line);
    }
}

/// Collects the parser's events, so that each one is handled knowing where the next begins.
#[derive(Default)]
struct Events(Vec<(Event, Marker)>);

impl MarkedEventReceiver for Events {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        self.0.push((ev, mark));
    }
}

/// Parses `text`, whose env references were replaced as `subs` says, into a JSON value and an
/// index of its key paths.
pub(crate) fn parse(text: &str, subs: &[Substitution]) -> Result<(Value, LineIndex), YamlError> {
    let mut events = Events::default();
    Parser::new_from_str(text)
        .load(&mut events, true)
        .map_err(|e| parser_error(text, subs, e.marker(), e.info()))?;
    let mut b = Builder::new(text, subs);
    let mut events = events.0.into_iter().peekable();
    while let Some((ev, mark)) = events.next() {
        let next = events.peek().map_or(text.len(), |(_, m)| m.index());
        b.event(ev, mark, next);
    }
    if let Some(e) = b.error {
        return Err(e);
    }
    let root = b.root.unwrap_or(Value::Null);
    let mut index = LineIndex::default();
    for (segs, line, sources) in b.paths {
        index.insert(path_string(&segs), line, sources);
    }
    Ok((root, index))
}

/// The error for a parser failure at `mark`. When it lies inside a value from the environment,
/// the parser's message (which may quote a character of it) is replaced by one that names the
/// variable.
fn parser_error(text: &str, subs: &[Substitution], mark: &Marker, info: &str) -> YamlError {
    let inside = subs
        .iter()
        .find(|s| s.origin == Origin::Env && s.span.contains(&mark.index()));
    match inside {
        Some(s) => YamlError {
            kind: YamlErrorKind::Syntax,
            line: mark.line(),
            message: format!(
                "the value of {r} is not valid YAML here; quote the reference (\"{r}\") to \
                 use it as text",
                r = s.reference()
            ),
        },
        None => locate_syntax_error(text, mark.line(), info),
    }
}

/// Builds the error for a parser failure reported at 1-based `line`.
///
/// yaml-rust2 reports a tab met while scanning a plain or block scalar at the start of that
/// scalar, which is the line before the tab (pinned by a test below). Indenting with a tab is
/// an error in YAML's block context, so when the reported line is not indented with a tab and
/// the next non-blank line is, the error is moved to that line and says why. This looks at the
/// text only, never at the parser's message.
fn locate_syntax_error(text: &str, line: usize, info: &str) -> YamlError {
    let indented_with_tab = |l: &str| {
        l.chars()
            .take_while(|c| c.is_whitespace())
            .any(|c| c == '\t')
    };
    let mut lines = text.lines().enumerate().skip(line.saturating_sub(1));
    let here = lines.next().map(|(_, l)| l);
    let next = lines.find(|(_, l)| !l.trim().is_empty());
    match (here, next) {
        (Some(h), Some((i, n))) if !indented_with_tab(h) && indented_with_tab(n) => YamlError {
            kind: YamlErrorKind::Syntax,
            line: i + 1,
            message: format!(
                "{info} (this line is indented with a tab; YAML indentation must use spaces)"
            ),
        },
        _ => YamlError {
            kind: YamlErrorKind::Syntax,
            line,
            message: info.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(Value, LineIndex), YamlError> {
        super::parse(text, &[])
    }

    /// Scenario: a nested document with sequences and scalars of every kind.
    /// Guarantees: values resolve like yaml.v3, and each key path maps to its own line.
    #[test]
    fn values_and_lines() {
        let text =
            "a:\n  b: 1\n  c: \"1\"\n  d:\n    - x\n    - y: true\n  e:\n  f: 1.5\n  g: 0x10\n";
        let (v, idx) = parse(text).expect("parses");
        assert_eq!(v["a"]["b"], Value::from(1));
        assert_eq!(v["a"]["c"], Value::from("1"));
        assert_eq!(v["a"]["d"][1]["y"], Value::from(true));
        assert_eq!(v["a"]["e"], Value::Null);
        assert_eq!(v["a"]["f"], Value::from(1.5));
        assert_eq!(v["a"]["g"], Value::from(16));
        assert_eq!(idx.line_of("a"), Some(1));
        assert_eq!(idx.line_of("a.b"), Some(2));
        assert_eq!(idx.line_of("a.d[0]"), Some(5));
        assert_eq!(idx.line_of("a.d[1].y"), Some(6));
        assert_eq!(idx.line_of("a.e"), Some(7));
        assert_eq!(
            idx.line_of("a.e.unknown"),
            Some(7),
            "falls back to the ancestor"
        );
        assert_eq!(idx.path_at(6), Some("a.d[1].y"));
    }

    /// Scenario: duplicate keys and broken syntax.
    /// Guarantees: an error with the line of the problem.
    #[test]
    fn syntax_errors() {
        let e = parse("a: 1\nb: 2\na: 3\n").expect_err("duplicate");
        assert_eq!(e.line, 3);
        assert!(e.message.contains("duplicate"));
        let e = parse("a: 1\nb: [1, 2\nc: 3\n").expect_err("unclosed");
        assert!(e.line >= 2, "{e:?}");
        parse("a: 1\n---\nb: 2\n").expect_err("two documents");
    }

    /// Scenario: yaml-rust2 meets a tab in the indentation after a plain scalar.
    /// Guarantees: pins that it reports the scalar's line, not the tab's, which is why
    /// [`locate_syntax_error`] looks for the tab; if an upgrade fixes the line, this fails.
    #[test]
    fn yaml_rust2_reports_a_tab_on_the_line_before() {
        struct Ignore;
        impl MarkedEventReceiver for Ignore {
            fn on_event(&mut self, _: Event, _: Marker) {}
        }
        let text = "a:\n  b: 1\n\tc: 2\n";
        let e = Parser::new_from_str(text)
            .load(&mut Ignore, true)
            .expect_err("tab");
        assert_eq!(e.marker().line(), 2);
        assert_eq!(parse(text).expect_err("tab").line, 3);
    }

    /// Scenario: anchors, aliases and merge keys.
    /// Guarantees: aliases copy the anchored value; explicit keys override merged ones.
    #[test]
    fn anchors_and_merge() {
        let text = "base: &b\n  x: 1\n  y: 2\nuse:\n  <<: *b\n  y: 3\ncopy: *b\n";
        let (v, _) = parse(text).expect("parses");
        assert_eq!(v["use"]["x"], Value::from(1));
        assert_eq!(v["use"]["y"], Value::from(3));
        assert_eq!(v["copy"]["y"], Value::from(2));
    }
}
