//! [`DecodeError`]: serde's error channels kept as data, so that the decoder decides by kind.
//!
//! serde reports problems through the methods of [`serde::de::Error`] (`unknown_field`,
//! `missing_field`, `invalid_type`, ...). The default implementations, and `serde_json`'s, turn
//! each into a message string at once, which left the decoder guessing the kind back from the
//! wording. This type implements those methods by recording the kind and its parts instead;
//! [`super::de::ValueDeserializer`] makes serde use it. The offending value, when there is one,
//! is kept apart ([`Got`]) so that a message can show it or name where it came from instead.

use std::fmt;

use serde::de::{self, Expected, Unexpected};

use crate::model::{ActionKind, Compression};
use crate::redact::Shown;

/// Names otelcol takes that otelspool does not implement, by the set of names an enum takes
/// (as it reports them to [`de::Error::unknown_variant`]).
const OTELCOL_ONLY: &[(&[&str], &[&str])] = &[
    (Compression::NAMES, Compression::OTELCOL_ONLY),
    (ActionKind::NAMES, ActionKind::OTELCOL_ONLY),
];

/// The value serde found where it expected something else (an owned [`Unexpected`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Got {
    /// A boolean.
    Bool(bool),
    /// A non-negative integer.
    Unsigned(u64),
    /// A negative integer.
    Signed(i64),
    /// A floating-point number.
    Float(f64),
    /// A character.
    Char(char),
    /// A string.
    Str(String),
    /// Nothing (`null`, an empty value).
    Null,
    /// A sequence.
    Seq,
    /// A mapping.
    Map,
    /// Anything else, as serde describes it.
    Other(String),
}

impl Got {
    fn from_unexpected(u: Unexpected<'_>) -> Self {
        match u {
            Unexpected::Bool(b) => Got::Bool(b),
            Unexpected::Unsigned(n) => Got::Unsigned(n),
            Unexpected::Signed(n) => Got::Signed(n),
            Unexpected::Float(f) => Got::Float(f),
            Unexpected::Char(c) => Got::Char(c),
            Unexpected::Str(s) => Got::Str(s.to_string()),
            Unexpected::Unit | Unexpected::Option => Got::Null,
            Unexpected::Seq => Got::Seq,
            Unexpected::Map => Got::Map,
            other => Got::Other(other.to_string()),
        }
    }
}

impl Got {
    /// The kind of value, without the value: `a string`, `an integer`.
    fn kind(&self) -> &'static str {
        match self {
            Got::Bool(_) => "a boolean",
            Got::Unsigned(_) | Got::Signed(_) => "an integer",
            Got::Float(_) => "a floating-point number",
            Got::Char(_) => "a character",
            Got::Str(_) => "a string",
            Got::Null => "null",
            Got::Seq => "a sequence",
            Got::Map => "a mapping",
            Got::Other(_) => "a value",
        }
    }

    /// `Display`, or the kind and `instead` when the value may not be shown.
    fn show(&self, shown: &Shown) -> String {
        match (self, shown) {
            (Got::Null | Got::Seq | Got::Map, _) | (_, Shown::Plain) => self.to_string(),
            (_, Shown::Hidden(instead)) => format!("{} {instead}", self.kind()),
        }
    }
}

impl fmt::Display for Got {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Got::Bool(b) => write!(f, "boolean `{b}`"),
            Got::Unsigned(n) => write!(f, "integer `{n}`"),
            Got::Signed(n) => write!(f, "integer `{n}`"),
            Got::Float(x) => write!(f, "floating point `{x}`"),
            Got::Char(c) => write!(f, "character `{c}`"),
            Got::Str(s) => write!(f, "string {s:?}"),
            Got::Null => f.write_str("null"),
            Got::Seq => f.write_str("sequence"),
            Got::Map => f.write_str("map"),
            Got::Other(s) => f.write_str(s),
        }
    }
}

/// One problem serde found, by kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DecodeError {
    /// A key the struct does not have; `expected` lists the keys it has.
    UnknownField {
        /// The key as written.
        field: String,
        /// The struct's keys.
        expected: &'static [&'static str],
    },
    /// A required key is absent.
    MissingField(&'static str),
    /// A key appears twice.
    DuplicateField(&'static str),
    /// A value of the wrong type (`"abc"` where a number was expected).
    InvalidType {
        /// What was found.
        got: Got,
        /// serde's description of what was expected (`u64`, `a string`).
        expected: String,
    },
    /// A value of the right type that is not allowed (out of range, not a known name).
    InvalidValue {
        /// What was found.
        got: Got,
        /// What is allowed.
        expected: String,
    },
    /// A sequence or mapping with the wrong number of items.
    InvalidLength {
        /// Items found.
        len: usize,
        /// What was expected.
        expected: String,
    },
    /// A name outside an enum's set; `expected` lists the names it has.
    UnknownVariant {
        /// The name as written.
        variant: String,
        /// The enum's names.
        expected: &'static [&'static str],
    },
    /// Any other message (raised with [`de::Error::custom`]).
    Custom(String),
}

impl DecodeError {
    /// The message for the value of `key` (the last key of its path), which is shown as
    /// `shown` says. Messages raised with `custom` never quote a value (the model's
    /// deserializers report values through the typed channels), so they are kept as they are.
    pub(crate) fn message(&self, key: &str, shown: &Shown) -> String {
        match self {
            DecodeError::InvalidType { got, expected } => {
                format!("invalid type: {}, expected {expected}", got.show(shown))
            }
            DecodeError::InvalidValue { got, expected } => {
                format!("invalid value: {}, expected {expected}", got.show(shown))
            }
            DecodeError::UnknownVariant { variant, expected } => {
                let value = shown.or(|| format!("{variant:?}"));
                let supported = expected.join(", ");
                let otelcol_only = OTELCOL_ONLY
                    .iter()
                    .any(|(names, only)| names == expected && only.contains(&variant.as_str()));
                if otelcol_only {
                    format!("{key} {value} is not supported by otelspool (supported: {supported})")
                } else {
                    format!("unknown {key} {value} (supported: {supported})")
                }
            }
            other => other.to_string(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnknownField { field, expected } => {
                write!(f, "unknown key {field:?} (valid keys: ")?;
                if expected.is_empty() {
                    f.write_str("none)")
                } else {
                    write!(f, "{})", expected.join(", "))
                }
            }
            DecodeError::MissingField(field) => write!(f, "missing required key {field:?}"),
            DecodeError::DuplicateField(field) => write!(f, "duplicate key {field:?}"),
            DecodeError::InvalidType { got, expected } => {
                write!(f, "invalid type: {got}, expected {expected}")
            }
            DecodeError::InvalidValue { got, expected } => {
                write!(f, "invalid value: {got}, expected {expected}")
            }
            DecodeError::InvalidLength { len, expected } => {
                write!(f, "invalid length {len}, expected {expected}")
            }
            DecodeError::UnknownVariant { variant, expected } => {
                write!(
                    f,
                    "unknown value {variant:?} (supported: {})",
                    expected.join(", ")
                )
            }
            DecodeError::Custom(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for DecodeError {}

impl de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DecodeError::Custom(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        DecodeError::InvalidType {
            got: Got::from_unexpected(unexp),
            expected: exp.to_string(),
        }
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        DecodeError::InvalidValue {
            got: Got::from_unexpected(unexp),
            expected: exp.to_string(),
        }
    }

    fn invalid_length(len: usize, exp: &dyn Expected) -> Self {
        DecodeError::InvalidLength {
            len,
            expected: exp.to_string(),
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DecodeError::UnknownVariant {
            variant: variant.to_string(),
            expected,
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DecodeError::UnknownField {
            field: field.to_string(),
            expected,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DecodeError::MissingField(field)
    }

    fn duplicate_field(field: &'static str) -> Self {
        DecodeError::DuplicateField(field)
    }
}
