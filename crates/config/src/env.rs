//! Environment-variable substitution with otelcol's syntax, applied to the raw text.
//!
//! Supported: `${env:NAME}`, `${NAME}`, `${env:NAME:-default}` and `$$` (a literal `$`). A bare
//! `$NAME` is left as is (otelcol stopped expanding it in v0.107). Substitution happens on the
//! text before YAML parsing so that line numbers stay exact; that is also why a value containing
//! a newline is refused. A reference after a YAML comment marker (`#` at the start of a line or
//! after whitespace, outside quotes) is left untouched, so commented-out lines never produce
//! errors. Unset variables without a default become empty strings and produce a warning naming
//! the variable; values are never echoed, as they may be secrets. Inside a quoted scalar the
//! value is escaped for that quoting style, so it stays literal; an unquoted value is parsed as
//! YAML, as otelcol does when a reference is the whole value (`${env:PORT}` becomes a number).
//!
//! Every replaced reference is recorded as a [`Substitution`]: the variable, whether its value
//! came from the environment, a default or nothing (unset), and the byte range it fills in the
//! substituted text. The YAML stage maps those ranges to key paths, so that a message about a
//! key can name the variable instead of showing a value that may be a secret.

use std::fmt;
use std::ops::Range;

/// A problem or notice found during substitution, tied to a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvNotice {
    /// 1-based line of the reference.
    pub(crate) line: usize,
    /// What happened.
    pub(crate) message: String,
}

/// Where the text of a [`Substitution`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The variable's value, from the environment: never printed.
    Env,
    /// The `:-default` written in the file (the variable is unset).
    Default,
    /// Nothing: the variable is unset and there is no default.
    Unset,
}

/// One reference replaced in the text.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Substitution {
    /// The variable's name.
    pub(crate) name: String,
    /// Where the replacement came from.
    pub(crate) origin: Origin,
    /// Byte range of the replacement in the substituted text (empty when unset).
    pub(crate) span: Range<usize>,
    /// The replacement as substituted, before any escaping for quotes. Never printed: the
    /// `Debug` output leaves it out.
    pub(crate) value: String,
}

impl Substitution {
    /// The reference as a user writes it: `${env:NAME}`.
    pub(crate) fn reference(&self) -> String {
        format!("${{env:{}}}", self.name)
    }
}

impl fmt::Debug for Substitution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Substitution")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

/// Result of substituting one document.
#[derive(Debug, Default)]
pub(crate) struct Substituted {
    /// The text with every valid reference replaced.
    pub(crate) text: String,
    /// Every reference replaced, in text order.
    pub(crate) substitutions: Vec<Substitution>,
    /// Unset variables (replaced by empty strings).
    pub(crate) warnings: Vec<EnvNotice>,
    /// Invalid references or values (left in the text as written).
    pub(crate) errors: Vec<EnvNotice>,
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Replaces env references in `text`, looking names up with `env`.
pub(crate) fn substitute(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Substituted {
    let mut out = Substituted {
        text: String::with_capacity(text.len()),
        ..Default::default()
    };
    for (i, line) in text.split_inclusive('\n').enumerate() {
        substitute_line(line, i + 1, env, &mut out);
    }
    out
}

fn substitute_line(
    line: &str,
    line_no: usize,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut Substituted,
) {
    let mut quote: Option<char> = None;
    let mut prev_blank = true;
    // Last non-blank character: a quote opens a quoted scalar only where a scalar starts.
    let mut prev_sig: Option<char> = None;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        let starts_scalar = prev_blank || matches!(prev_sig, Some('[' | '{' | ','));
        match c {
            '#' if quote.is_none() && prev_blank => {
                out.text.push_str(rest);
                return;
            }
            '\'' | '"'
                if quote.is_none()
                    && starts_scalar
                    && matches!(prev_sig, None | Some(':' | '-' | '[' | '{' | ',' | '?')) =>
            {
                quote = Some(c);
            }
            '\\' if quote == Some('"') => {
                // An escape: copy it and the escaped character unchanged.
                let mut chars = rest.chars();
                chars.next();
                out.text.push('\\');
                if let Some(next) = chars.next() {
                    out.text.push(next);
                }
                rest = chars.as_str();
                prev_blank = false;
                prev_sig = Some('\\');
                continue;
            }
            q if quote == Some(q) => quote = None,
            '$' => {
                if let Some(after) = rest.strip_prefix("$$") {
                    out.text.push('$');
                    rest = after;
                    prev_blank = false;
                    prev_sig = Some('$');
                    continue;
                }
                if rest.starts_with("${") {
                    if let Some(end) = rest.find('}') {
                        let inner = &rest[2..end];
                        expand(inner, line_no, env, out, &rest[..=end], quote);
                        rest = &rest[end + 1..];
                        prev_blank = false;
                        prev_sig = Some('}');
                        continue;
                    }
                    out.errors.push(EnvNotice {
                        line: line_no,
                        message: "unterminated \"${\" (write \"$$\" for a literal \"$\")".into(),
                    });
                }
            }
            _ => {}
        }
        out.text.push(c);
        prev_blank = c == ' ' || c == '\t';
        if !prev_blank {
            prev_sig = Some(c);
        }
        rest = &rest[c.len_utf8()..];
    }
}

fn expand(
    inner: &str,
    line: usize,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut Substituted,
    original: &str,
    quote: Option<char>,
) {
    let spec = match inner.split_once(':') {
        Some(("env", spec)) => spec,
        Some((scheme, _)) if valid_name(scheme) && scheme != "env" => {
            out.errors.push(EnvNotice {
                line,
                message: format!(
                    "config provider \"{scheme}:\" is not supported by otelspool (supported: env)"
                ),
            });
            out.text.push_str(original);
            return;
        }
        _ => inner,
    };
    let (name, default) = match spec.split_once(":-") {
        Some((n, d)) => (n, Some(d)),
        None => (spec, None),
    };
    if !valid_name(name) {
        out.errors.push(EnvNotice {
            line,
            message: format!(
                "invalid environment variable name {name:?} in \"{original}\" (names are letters, digits and '_', not starting with a digit)"
            ),
        });
        out.text.push_str(original);
        return;
    }
    let (value, origin) = match env(name) {
        Some(v) => (v, Origin::Env),
        None => match default {
            Some(d) => (d.to_string(), Origin::Default),
            None => {
                out.warnings.push(EnvNotice {
                    line,
                    message: format!(
                        "environment variable {name} is not set; using an empty value"
                    ),
                });
                (String::new(), Origin::Unset)
            }
        },
    };
    if value.contains('\n') || value.contains('\r') {
        out.errors.push(EnvNotice {
            line,
            message: format!(
                "environment variable {name} contains a line break, which is not supported"
            ),
        });
        return;
    }
    let start = out.text.len();
    match quote {
        // Keep the value literal inside quoted scalars, as otelcol (which substitutes after
        // parsing) would: escape what the quoting style would otherwise interpret.
        Some('"') => out
            .text
            .push_str(&value.replace('\\', "\\\\").replace('"', "\\\"")),
        Some('\'') => out.text.push_str(&value.replace('\'', "''")),
        _ => out.text.push_str(&value),
    }
    out.substitutions.push(Substitution {
        name: name.to_string(),
        origin,
        span: start..out.text.len(),
        value,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            "MULTI" => Some("a\nb".into()),
            _ => None,
        }
    }

    fn sub(text: &str) -> Substituted {
        substitute(text, &env)
    }

    /// Scenario: the three reference forms, set and unset, with defaults.
    /// Guarantees: otelcol's results; an unset variable warns with its line and never a value.
    #[test]
    fn forms() {
        let s = sub("a: ${env:TOKEN}\nb: ${TOKEN}\nc: ${env:NOPE:-dflt}\nd: x${env:NOPE}y\n");
        assert_eq!(s.text, "a: s3cret\nb: s3cret\nc: dflt\nd: xy\n");
        assert!(s.errors.is_empty());
        assert_eq!(s.warnings.len(), 1);
        assert_eq!(s.warnings[0].line, 4);
        assert!(s.warnings[0].message.contains("NOPE"));
        let s = sub("e: ${env:EMPTY:-dflt}\n");
        assert_eq!(s.text, "e: \n", "set-but-empty wins over the default");
    }

    /// Scenario: references set, defaulted, unset and quoted on one line.
    /// Guarantees: each is recorded with its origin and the byte range its text fills in the
    /// substituted text (empty when unset); `Debug` leaves the value out.
    #[test]
    fn substitutions_are_recorded() {
        let s = sub("a: ${env:TOKEN} ${env:NOPE:-dflt} \"${TOKEN}\" x${NOPE}y\n");
        assert_eq!(s.text, "a: s3cret dflt \"s3cret\" xy\n");
        let got: Vec<(&str, Origin, &str)> = s
            .substitutions
            .iter()
            .map(|x| (x.name.as_str(), x.origin, &s.text[x.span.clone()]))
            .collect();
        assert_eq!(
            got,
            vec![
                ("TOKEN", Origin::Env, "s3cret"),
                ("NOPE", Origin::Default, "dflt"),
                ("TOKEN", Origin::Env, "s3cret"),
                ("NOPE", Origin::Unset, ""),
            ]
        );
        assert_eq!(s.substitutions[3].span, 25..25);
        assert!(!format!("{:?}", s.substitutions).contains("s3cret"));
    }

    /// Scenario: escapes and bare `$NAME`.
    /// Guarantees: `$$` is a literal `$`, `$NAME` and a lone `$` are kept as written.
    #[test]
    fn escapes() {
        let s = sub("a: $$TOKEN $TOKEN $ $${env:TOKEN}\n");
        assert_eq!(s.text, "a: $TOKEN $TOKEN $ ${env:TOKEN}\n");
        assert!(s.errors.is_empty() && s.warnings.is_empty());
    }

    /// Scenario: invalid names, unsupported providers, multi-line values, unterminated refs.
    /// Guarantees: each is an error on the right line; nothing is silently expanded.
    #[test]
    fn errors() {
        let s = sub("ok: 1\na: ${env:1BAD}\nb: ${file:/x}\nc: ${MULTI}\nd: ${env:X\n");
        let lines: Vec<usize> = s.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5]);
        assert!(s.errors[0].message.contains("1BAD"));
        assert!(s.errors[1].message.contains("file"));
        assert!(!s.errors[2].message.contains("a\nb"));
        assert_eq!(s.text.lines().count(), 5, "line count is preserved");
    }

    /// Scenario: values with quote characters and backslashes inside quoted scalars.
    /// Guarantees: they are escaped so that YAML reads back exactly the value.
    #[test]
    fn quoted_values_stay_literal() {
        let env = |n: &str| (n == "P").then(|| r#"a"b\c'd"#.to_string());
        let s = substitute("a: \"x ${P}\"\nb: 'x ${P}'\n", &env);
        assert_eq!(s.text, "a: \"x a\\\"b\\\\c'd\"\nb: 'x a\"b\\c''d'\n");
        let (v, _) = crate::yaml::parse(&s.text, &s.substitutions).expect("valid YAML");
        assert_eq!(v["a"], serde_json::Value::from(r#"x a"b\c'd"#));
        assert_eq!(v["b"], serde_json::Value::from(r#"x a"b\c'd"#));
        // An apostrophe inside a plain scalar is not a quote; an escaped quote does not close.
        let s = substitute("c: it's ${P}\nd: \"q\\\" ${P}\"\n", &env);
        let (v, _) = crate::yaml::parse(&s.text, &s.substitutions).expect("valid YAML");
        assert_eq!(v["c"], serde_json::Value::from(r#"it's a"b\c'd"#));
        assert_eq!(v["d"], serde_json::Value::from(r#"q" a"b\c'd"#));
    }

    /// Scenario: references inside comments.
    /// Guarantees: they are left alone, while a `#` inside a value or quotes is not a comment.
    #[test]
    fn comments() {
        let s = sub("# ${env:1BAD}\na: x#${TOKEN} # ${NOPE}\nb: \"q # ${TOKEN}\"\n");
        assert!(s.errors.is_empty());
        assert!(s.warnings.is_empty());
        assert_eq!(
            s.text,
            "# ${env:1BAD}\na: x#s3cret # ${NOPE}\nb: \"q # s3cret\"\n"
        );
    }
}
