//! What a message may show of a value: the value itself when it is written in the file, the
//! names of the variables it came from when `${env:...}` put it there.
//!
//! A value from the environment may be a secret (a token in a header, credentials in an
//! endpoint URL), so no message prints it, wholly or in part. The env stage records which
//! byte ranges of the text each reference filled ([`Substitution`]); the YAML stage gives each
//! key path the [`Sources`] that fall inside its key and value; a message about that path then
//! shows `(the value of ${env:X})` where it would have shown the value, and an error about a
//! value that an unset variable left empty says which variable is not set.
//!
//! [`Redactor`] is the same rule for text made outside this crate (a start-up error from the
//! network stack that quotes an endpoint): it replaces every value that came from the
//! environment by the variable's name.

use std::fmt;

use crate::env::{Origin, Substitution};

/// The substitutions that fall inside one node of the document (its key and its value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Sources {
    /// Indices into the document's substitutions, ascending, without repeats.
    subs: Vec<usize>,
    /// The value is exactly one substitution's text (`key: ${env:X}`), not built from several
    /// pieces (`https://${env:HOST}:4317`).
    whole: bool,
}

impl Sources {
    /// Sources of the text in `range` of the substituted text: every substitution that
    /// overlaps it, or that is empty (unset) and sits inside it.
    pub(crate) fn of_range(subs: &[Substitution], range: std::ops::Range<usize>) -> Self {
        let found = subs
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                let overlaps = s.span.start < range.end && s.span.end > range.start;
                let empty_inside = s.span.is_empty() && range.contains(&s.span.start);
                overlaps || empty_inside
            })
            .map(|(i, _)| i)
            .collect();
        Sources {
            subs: found,
            whole: false,
        }
    }

    /// Sources of a scalar that starts at `range.start` (the range runs to the next event, so
    /// that an empty value's unset reference is found) and reads `value`.
    pub(crate) fn of_scalar(
        subs: &[Substitution],
        text: &str,
        range: std::ops::Range<usize>,
        value: &str,
    ) -> Self {
        let mut sources = Self::of_range(subs, range);
        sources.whole = match sources.subs.as_slice() {
            [one] => text.get(subs[*one].span.clone()) == Some(value),
            _ => false,
        };
        sources
    }

    /// Adds `other`'s substitutions (the value is then built from pieces).
    pub(crate) fn merge(&mut self, other: &Sources) {
        if other.subs.is_empty() {
            return;
        }
        let single_whole = self.subs.is_empty() && other.whole;
        self.subs.extend(&other.subs);
        self.subs.sort_unstable();
        self.subs.dedup();
        self.whole = single_whole;
    }

    /// No substitution falls inside the node.
    pub(crate) fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }
}

/// How a message shows a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shown {
    /// The value is written in the file: show it.
    Plain,
    /// The value came (wholly or partly) from the environment: show this instead, e.g.
    /// `(the value of ${env:OTLP_ENDPOINT})`.
    Hidden(String),
}

impl Shown {
    /// `plain` when the value may be shown, else the replacement.
    pub(crate) fn or(&self, plain: impl FnOnce() -> String) -> String {
        match self {
            Shown::Plain => plain(),
            Shown::Hidden(instead) => instead.clone(),
        }
    }
}

/// The references of `sources` whose substitutions came from `origin`, as users write them.
fn references(subs: &[Substitution], sources: &Sources, origin: Origin) -> Vec<String> {
    let mut refs: Vec<String> = sources
        .subs
        .iter()
        .filter_map(|i| subs.get(*i))
        .filter(|s| s.origin == origin)
        .map(Substitution::reference)
        .collect();
    refs.dedup();
    refs
}

fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// How a message shows the value of a node with `sources`.
pub(crate) fn shown(subs: &[Substitution], sources: Option<&Sources>) -> Shown {
    let Some(sources) = sources else {
        return Shown::Plain;
    };
    let refs = references(subs, sources, Origin::Env);
    if refs.is_empty() {
        return Shown::Plain;
    }
    if sources.whole {
        Shown::Hidden(format!("(the value of {})", refs[0]))
    } else {
        Shown::Hidden(format!("(a value built from {})", and_list(&refs)))
    }
}

/// `${env:X} is not set` for the unset variables among `sources`, if any.
pub(crate) fn unset_note(subs: &[Substitution], sources: Option<&Sources>) -> Option<String> {
    let refs = references(subs, sources?, Origin::Unset);
    match refs.as_slice() {
        [] => None,
        [one] => Some(format!("{one} is not set")),
        many => Some(format!("{} are not set", and_list(many))),
    }
}

/// Replaces the values that came from the environment in text made outside this crate.
///
/// Every value of a set variable is replaced by `(the value of ${env:NAME})`, as written and as
/// a Rust string literal would escape it, longest first. Values shorter than
/// [`Redactor::MIN_LEN`] bytes are left alone: they cannot hold a secret, and replacing
/// every `1` or `true` would garble the text.
#[derive(Clone, Default)]
pub struct Redactor {
    /// `(value, replacement)`, longest value first.
    secrets: Vec<(String, String)>,
}

impl Redactor {
    /// Shortest value that is replaced.
    pub const MIN_LEN: usize = 4;

    pub(crate) fn new(subs: &[Substitution]) -> Self {
        let mut secrets: Vec<(String, String)> = subs
            .iter()
            .filter(|s| s.origin == Origin::Env && s.value.len() >= Self::MIN_LEN)
            .map(|s| (s.value.clone(), format!("(the value of {})", s.reference())))
            .collect();
        secrets.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        secrets.dedup_by(|a, b| a.0 == b.0);
        Redactor { secrets }
    }

    /// `text` with every value from the environment replaced by its variable's name.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (value, instead) in &self.secrets {
            let escaped = format!("{value:?}");
            let escaped = &escaped[1..escaped.len() - 1];
            if escaped != value {
                out = out.replace(escaped, instead);
            }
            out = out.replace(value.as_str(), instead);
        }
        out
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("values", &self.secrets.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(name: &str, origin: Origin, span: std::ops::Range<usize>, value: &str) -> Substitution {
        Substitution {
            name: name.into(),
            origin,
            span,
            value: value.into(),
        }
    }

    /// Scenario: a value wholly from one variable, one built from two, one from a default, and
    /// an unset variable.
    /// Guarantees: the first two are hidden and name their variables; a default is shown; the
    /// unset one is named in the note.
    #[test]
    fn shown_and_notes() {
        let text = "a: s3cret\nb: https://h0st:p0rt\nc: dflt\nd: \n";
        let subs = vec![
            sub("A", Origin::Env, 3..9, "s3cret"),
            sub("H", Origin::Env, 21..25, "h0st"),
            sub("P", Origin::Env, 26..30, "p0rt"),
            sub("C", Origin::Default, 34..38, "dflt"),
            sub("D", Origin::Unset, 42..42, ""),
        ];
        let a = Sources::of_scalar(&subs, text, 3..10, "s3cret");
        assert_eq!(
            shown(&subs, Some(&a)),
            Shown::Hidden("(the value of ${env:A})".into())
        );
        let b = Sources::of_scalar(&subs, text, 13..31, "https://h0st:p0rt");
        assert_eq!(
            shown(&subs, Some(&b)),
            Shown::Hidden("(a value built from ${env:H} and ${env:P})".into())
        );
        let c = Sources::of_scalar(&subs, text, 34..39, "dflt");
        assert_eq!(shown(&subs, Some(&c)), Shown::Plain);
        let d = Sources::of_scalar(&subs, text, 42..43, "");
        assert_eq!(
            unset_note(&subs, Some(&d)).as_deref(),
            Some("${env:D} is not set")
        );
        assert_eq!(unset_note(&subs, Some(&a)), None);
    }

    /// Scenario: an outside error quoting a value from the environment, escaped and not, next
    /// to a short value that also came from it.
    /// Guarantees: the long values are replaced by their variable's name; the short one stays.
    #[test]
    fn redactor_replaces_values_from_the_environment() {
        let subs = vec![
            sub("TOKEN", Origin::Env, 0..0, "tok\"en-123"),
            sub("PORT", Origin::Env, 0..0, "1"),
            sub("DFLT", Origin::Default, 0..0, "default-value"),
        ];
        let r = Redactor::new(&subs);
        let text = format!(
            "bad {:?} and tok\"en-123 on 1 (default-value)",
            "tok\"en-123"
        );
        assert_eq!(
            r.redact(&text),
            "bad \"(the value of ${env:TOKEN})\" and (the value of ${env:TOKEN}) on 1 (default-value)"
        );
        assert!(!format!("{r:?}").contains("tok"));
    }
}
