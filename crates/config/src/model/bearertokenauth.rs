//! The `bearertokenauth` extension, as otelcol-contrib spells it, and [`Secret`], the type of
//! every value that must never be printed.
//!
//! A receiver protocol names the extension in `auth: {authenticator: bearertokenauth/x}`; a
//! request is then accepted only when its `header` (default `Authorization`) is exactly
//! `"<scheme> <token>"` for one of the configured tokens (just the token when `scheme` is
//! empty), as otelcol's `Authenticate` compares it.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A value that must appear in no log line, message or `Debug` output: `Debug` and `Display`
/// print `<redacted>`. Read it with [`Secret::expose`] only where it is used.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// A secret holding `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself; never log or print it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the value is empty (not set, or set from an unset variable).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    /// Takes any scalar as text (`token: 12345` is a token, not a type error that would quote
    /// it); `null` is empty. A sequence or mapping is an error that names only its kind.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Secret(s)),
            serde_json::Value::Null => Ok(Secret::default()),
            v @ (serde_json::Value::Bool(_) | serde_json::Value::Number(_)) => {
                Ok(Secret(v.to_string()))
            }
            serde_json::Value::Array(_) => Err(serde::de::Error::invalid_type(
                serde::de::Unexpected::Seq,
                &"a text value",
            )),
            serde_json::Value::Object(_) => Err(serde::de::Error::invalid_type(
                serde::de::Unexpected::Map,
                &"a text value",
            )),
        }
    }
}

/// `extensions.bearertokenauth`: the tokens a receiver accepts.
///
/// otelcol's `filename` (a token file watched for changes) is refused with a message: put the
/// token in `token` from the environment instead (`token: ${env:OTLP_TOKEN}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BearerTokenAuthConfig {
    /// Written before the token, with one space (`Bearer`); empty: the header is the token.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// The one accepted token (either this or `tokens`).
    #[serde(default)]
    pub token: Option<Secret>,
    /// Several accepted tokens, for rotation (either this or `token`).
    #[serde(default)]
    pub tokens: Vec<Secret>,
    /// The request header that carries the token.
    #[serde(default = "default_header")]
    pub header: String,
}

impl Default for BearerTokenAuthConfig {
    fn default() -> Self {
        BearerTokenAuthConfig {
            scheme: default_scheme(),
            token: None,
            tokens: Vec::new(),
            header: default_header(),
        }
    }
}

impl BearerTokenAuthConfig {
    /// Every accepted token: `token`, or else `tokens`.
    pub fn accepted_tokens(&self) -> Vec<&Secret> {
        match &self.token {
            Some(t) if !t.is_empty() => vec![t],
            _ => self.tokens.iter().collect(),
        }
    }
}

/// otelcol's default scheme.
pub fn default_scheme() -> String {
    "Bearer".to_string()
}

/// otelcol's default header.
pub fn default_header() -> String {
    "Authorization".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: a secret is formatted with `{:?}`, `{}` and inside a derived `Debug`.
    /// Guarantees: its value appears in none of them.
    #[test]
    fn a_secret_never_formats_its_value() {
        let c = BearerTokenAuthConfig {
            token: Some(Secret::new("s3cr3t-value")),
            tokens: vec![Secret::new("other-s3cr3t")],
            ..Default::default()
        };
        let shown = format!("{c:?} {:?} {}", c.token, Secret::new("s3cr3t-value"));
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert_eq!(c.accepted_tokens()[0].expose(), "s3cr3t-value");
    }
}
