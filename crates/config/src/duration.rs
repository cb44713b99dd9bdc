//! Durations in Go's syntax, as the OpenTelemetry Collector writes them.
//!
//! otelcol decodes durations with Go's `time.ParseDuration`: a sequence of decimal numbers,
//! each with an optional fraction and a mandatory unit (`ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`,
//! `h`), e.g. `5s`, `200ms`, `1m30s`, `1.5s`. The parser is written by hand because crates
//! such as `humantime` accept a different grammar (`5 sec`, `1day`, spaces) and reject some
//! Go forms (`1.5s`, `µs`), so a config that works with otelcol would behave differently here.
//! Negative durations are rejected (nothing in the config can be negative). A bare number is
//! accepted only for `0`, as otelcol does; any other bare number is an error that shows the
//! right form. Errors raised while deserializing say what is wrong without quoting the value,
//! which may come from an environment variable; the caller shows it, or names the variable.

use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

const NANOS_PER: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// What is wrong with a duration; says so without quoting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing but spaces.
    #[error("empty")]
    Empty,
    /// Starts with `-`.
    #[error("negative durations are not allowed")]
    Negative,
    /// A unit without a number, or a stray `.`.
    #[error("expected a number")]
    NoNumber,
    /// A number without a unit.
    #[error("missing unit")]
    MissingUnit,
    /// A unit Go does not know.
    #[error("unknown unit: use ns, us, ms, s, m or h")]
    UnknownUnit,
    /// More than `u64::MAX` seconds.
    #[error("too large")]
    TooLarge,
    /// A bare number other than 0.
    #[error("a bare number is not a duration (only 0 is); write it with a unit")]
    BareNumber,
}

/// Parses a Go duration string (`1m30s`, `200ms`, `1.5s`, `0`).
///
/// # Errors
/// Returns a message quoting `text`, naming the problem and showing the expected form.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    parse(text).map_err(|why| {
        format!(
            "invalid duration {text:?}: {why} (expected Go syntax such as \"5s\", \"200ms\", \"1m30s\")"
        )
    })
}

/// Parses a Go duration string; the error does not quote it.
///
/// # Errors
/// What is wrong with `text`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let s = match s.strip_prefix('+') {
        Some(rest) => rest,
        None if s.starts_with('-') => return Err(DurationError::Negative),
        None => s,
    };
    let mut total: u128 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return Err(DurationError::NoNumber);
    }
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &after_dot[..frac_len];
            rest = &after_dot[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(DurationError::NoNumber);
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        if unit.is_empty() {
            return Err(DurationError::MissingUnit);
        }
        let Some(&(_, scale)) = NANOS_PER.iter().find(|(name, _)| *name == unit) else {
            return Err(DurationError::UnknownUnit);
        };
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| DurationError::TooLarge)?
        };
        let mut nanos = whole.checked_mul(scale).ok_or(DurationError::TooLarge)?;
        // Fraction: like Go, keep as many digits as fit and scale them down.
        let mut frac_scale = scale;
        for digit in frac_part.bytes().take(30) {
            frac_scale /= 10;
            if frac_scale == 0 {
                break;
            }
            nanos += u128::from(digit - b'0') * frac_scale;
        }
        total = total.checked_add(nanos).ok_or(DurationError::TooLarge)?;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| DurationError::TooLarge)?;
    let sub = u32::try_from(total % 1_000_000_000).map_err(|_| DurationError::TooLarge)?;
    Ok(Duration::new(secs, sub))
}

/// A duration, as serde's "expected" text, with what is wrong (never the value).
struct Expected(DurationError);

impl de::Expected for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a duration in Go syntax such as \"5s\", \"200ms\" or \"1m30s\" ({})",
            self.0
        )
    }
}

/// A duration as it appears in YAML: a Go duration string, or a bare number (only `0`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Text(String),
    Int(i64),
    Float(f64),
}

fn from_raw<E: de::Error>(raw: Raw) -> Result<Duration, E> {
    let bare = Expected(DurationError::BareNumber);
    match raw {
        Raw::Text(s) => {
            parse(&s).map_err(|why| E::invalid_value(de::Unexpected::Str(&s), &Expected(why)))
        }
        Raw::Int(0) => Ok(Duration::ZERO),
        Raw::Int(n) => Err(E::invalid_value(de::Unexpected::Signed(n), &bare)),
        Raw::Float(0.0) => Ok(Duration::ZERO),
        Raw::Float(f) => Err(E::invalid_value(de::Unexpected::Float(f), &bare)),
    }
}

/// Serde adapter for a required or defaulted [`Duration`] field (`#[serde(with = ...)]`).
pub(crate) mod required {
    use super::*;

    /// Deserializes a Go duration.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let raw = Raw::deserialize(d).map_err(|_| {
            de::Error::custom("expected a duration such as \"5s\", \"200ms\" or \"1m30s\"")
        })?;
        from_raw(raw)
    }
}

/// Serde adapter for an optional [`Duration`] field: absent or null is `None`.
pub(crate) mod optional {
    use super::*;

    /// Deserializes an optional Go duration.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let raw = Option::<Raw>::deserialize(d).map_err(|_| {
            de::Error::custom("expected a duration such as \"5s\", \"200ms\" or \"1m30s\"")
        })?;
        raw.map(from_raw).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Scenario: the Go forms otelcol users write.
    /// Guarantees: each parses to the same value Go's `time.ParseDuration` gives.
    #[test]
    fn parses_go_forms() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("200ms"), Ok(ms(200)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration(".5s"), Ok(ms(500)));
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("100µs"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(
            parse_duration("1h2m3s4ms5us6ns"),
            Ok(Duration::new(3723, 4_005_006))
        );
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("+2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.000000001s"), Ok(Duration::new(1, 1)));
    }

    /// Scenario: forms Go rejects, and negative durations.
    /// Guarantees: each is an error whose message shows the expected syntax.
    #[test]
    fn rejects_bad_forms() {
        for bad in [
            "", "5", "s", "5 s", "5sec", "1d", "-1s", "1.s.", "..5s", "5s5", "abc",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains("expected Go syntax"), "{bad}: {err}");
        }
    }

    /// Scenario: durations written as bare YAML numbers.
    /// Guarantees: `0` is accepted; any other number is refused with the right form shown.
    #[test]
    fn bare_numbers() {
        #[derive(Deserialize)]
        struct T {
            #[serde(with = "required")]
            d: Duration,
        }
        let t: T = serde_json::from_str(r#"{"d": 0}"#).expect("zero");
        assert_eq!(t.d, Duration::ZERO);
        let err = serde_json::from_str::<T>(r#"{"d": 5}"#)
            .err()
            .expect("five");
        assert!(err.to_string().contains("\"5s\""), "{err}");
        let t: T = serde_json::from_str(r#"{"d": "1m"}"#).expect("1m");
        assert_eq!(t.d, Duration::from_secs(60));
    }
}
