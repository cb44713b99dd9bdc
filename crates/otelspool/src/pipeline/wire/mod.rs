//! The validating wire walker: reads an encoded `Export{Logs,Trace,Metrics}ServiceRequest` in
//! place, accepts exactly what prost's decode of the `opentelemetry-proto` types followed by
//! [`Decoded::check_ids`](crate::pipeline::Decoded::check_ids) accepts, counts its items as
//! [`Decoded::items`](crate::pipeline::Decoded::items) counts them, and reports each item
//! (with the string values of a few attribute keys) to an [`ItemVisitor`]. It allocates
//! nothing (unless a visitor asks for more than eight keys: then three small vectors per
//! request).
//!
//! # Why hand-written
//! The receive path used to decode every request into owned prost structs only to validate
//! and count it: one allocation per string, per attribute, per record (~10% of flat-out CPU
//! in malloc/free). prost has no borrowed or skipping decoder. Of the crates that decode in
//! place, `buffa` (0.x) builds an eager view struct per message, with containers for repeated
//! fields and its own limits (an unknown-field limit prost does not have), from code generated
//! out of the `.proto` files; `quick-protobuf` borrows strings but collects repeated fields
//! into `Vec`s and is no longer maintained; `pb-jelly` needs its own code generator. None
//! promises prost's acceptance rules, which are the contract here (a request is acknowledged
//! or refused as it was before), so any of them would need the same differential test, and
//! would still allocate. The OTLP schema is small and frozen in its wire numbers, so the
//! walker is a few hundred lines of `match tag`, one function per message.
//!
//! # Acceptance rules (prost 0.14, pinned by the tests)
//! - Keys: a varint of at most 32 bits, wire type 0..=5, tag above 0.
//! - Varints: at most 10 bytes, the tenth at most 1. Any value is taken for every varint type
//!   (`int32`, enums and `bool` are not range-checked).
//! - Known fields: the wire type of their type, or `LEN` (packed) for repeated scalars, whose
//!   packed fixed-width bytes must be a whole number of values. `string` fields are UTF-8.
//! - Lengths: within the enclosing message (prost reads past it and then fails on the
//!   mismatch; reading a bounded slice fails on the same inputs).
//! - Unknown fields are skipped, groups (wire type 3) to their matching end (4); an end
//!   without a start is an error, and so is a known field sent as a group.
//! - Nesting: prost's recursion limit of 100 messages, and its quirk that skipping an unknown
//!   field, or a field inside a skipped group, needs one level of budget left too.
//! - Repeated singular fields: the last value is kept (so the last `trace_id` is the one whose
//!   length counts); a oneof keeps its last variant (see `metrics` for `Metric.data`).
//!
//! A request may hold one malformed item and one id of a wrong length: prost fails on the
//! encoding before `check_ids` runs, so the walker returns the wire error first and the
//! first id error only once the whole request is read.

mod common;
mod logs;
mod metrics;
mod reader;
mod traces;

#[cfg(test)]
mod differential;
#[cfg(test)]
mod tests;

use common::Walk;
use reader::Msg;

use super::{PayloadError, Signal};

/// What the walker reports for each item (log record, span, metric data point).
pub trait ItemVisitor {
    /// Attribute keys whose string values this visitor wants (at most a handful, e.g.
    /// `emerge.job_id`, `emerge.workflow_id`). Empty: no attribute lookups at all.
    fn keys(&self) -> &[Box<str>];
    /// Called once per item, in request order, with one entry per key of `keys()`: the
    /// string value of that key on the item itself, else on its scope, else on its resource;
    /// `None` when absent or not a string value. Correct whatever the field order in the bytes.
    ///
    /// On one level, the first attribute with the key counts (as pdata's `Map.Get` finds it);
    /// when its value is not a string, the next level is asked. When `walk` fails, items
    /// already reported belong to a refused request: discard them.
    fn item(&mut self, values: &[Option<&str>]);

    /// Forget every item reported so far: the walk starts over (it found a resource or scope
    /// after its contents, and reports every item again with the right values).
    fn restart(&mut self);
}

/// Byte equality of two short strings, compared inline a word at a time: attribute keys and
/// job ids are a few dozen bytes, where the call into libc's `memcmp` costs more than the
/// comparison (it ran twice per record with the job ledger on). Longer strings go to `==`.
#[inline]
pub fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n > 64 {
        return a == b;
    }
    if n < 4 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    if n < 8 {
        // Two 4-byte words, overlapping when `n` < 8 (job ids like `j-0042` are this short).
        let half =
            |s: &[u8], i: usize| u32::from_ne_bytes(s[i..i + 4].try_into().unwrap_or([0; 4]));
        return half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4);
    }
    let word = |s: &[u8], i: usize| u64::from_ne_bytes(s[i..i + 8].try_into().unwrap_or([0; 8]));
    let mut i = 0;
    while i + 8 < n {
        if word(a, i) != word(b, i) {
            return false;
        }
        i += 8;
    }
    // The last word, overlapping the one before when `n` is not a multiple of 8.
    word(a, n - 8) == word(b, n - 8)
}

/// A visitor that wants nothing (pure validate + count).
#[derive(Debug, Clone, Copy, Default)]
pub struct CountOnly;

impl ItemVisitor for CountOnly {
    fn keys(&self) -> &[Box<str>] {
        &[]
    }

    #[inline]
    fn item(&mut self, _values: &[Option<&str>]) {}

    fn restart(&mut self) {}
}

/// Why bytes are not a valid export request on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A varint longer than 10 bytes, past 64 bits, or cut off.
    #[error("invalid varint")]
    InvalidVarint,
    /// A field key above 32 bits.
    #[error("invalid field key")]
    InvalidKey,
    /// Wire type 6 or 7.
    #[error("invalid wire type {0}")]
    InvalidWireType(u8),
    /// Field number 0.
    #[error("invalid field number 0")]
    ZeroTag,
    /// A known field with a wire type its type does not have.
    #[error("field {tag} of {message} has wire type {wire_type}")]
    WrongWireType {
        /// The message.
        message: &'static str,
        /// The field number.
        tag: u32,
        /// The wire type found.
        wire_type: u8,
    },
    /// A length, fixed-width value or packed run past the end of its message.
    #[error("a field runs past the end of its message")]
    Truncated,
    /// A `string` field that is not UTF-8.
    #[error("field {tag} of {message} is not UTF-8")]
    InvalidUtf8 {
        /// The message.
        message: &'static str,
        /// The field number.
        tag: u32,
    },
    /// An end-group key without its start-group.
    #[error("unexpected end-group")]
    UnexpectedEndGroup,
    /// Messages (or groups) nested deeper than prost's limit of 100.
    #[error("nested deeper than 100 messages")]
    RecursionLimit,
}

/// Validates `body` as an `Export{Logs,Trace,Metrics}ServiceRequest` of `signal` exactly as
/// strictly as prost's decode of the opentelemetry-proto types does (wire types of known fields,
/// varint/length bounds, nested lengths, UTF-8 of string fields, unknown fields skipped) plus the
/// trace/span id length rules of `Decoded::check_ids`, calls the visitor per item, and returns
/// the item count (log records / spans / data points as `Decoded::items` counts them).
/// Allocation-free.
pub fn walk(
    signal: Signal,
    body: &[u8],
    visitor: &mut impl ItemVisitor,
) -> Result<u64, PayloadError> {
    // In byte order first: one pass. A resource or scope placed after its contents (legal,
    // rare) makes the values reported so far incomplete: start over, looking ahead.
    let (items, late) = walk_once(signal, body, visitor, true)?;
    if !late || visitor.keys().is_empty() {
        return Ok(items);
    }
    visitor.restart();
    walk_once(signal, body, visitor, false).map(|(items, _)| items)
}

fn walk_once(
    signal: Signal,
    body: &[u8],
    visitor: &mut impl ItemVisitor,
    ordered: bool,
) -> Result<(u64, bool), PayloadError> {
    let mut walk = Walk::new(visitor, ordered);
    match signal {
        Signal::Logs => logs::request(Msg::top(body, "ExportLogsServiceRequest"), &mut walk),
        Signal::Traces => traces::request(Msg::top(body, "ExportTraceServiceRequest"), &mut walk),
        Signal::Metrics => {
            metrics::request(Msg::top(body, "ExportMetricsServiceRequest"), &mut walk)
        }
    }?;
    match walk.id_error.take() {
        Some(e) => Err(e),
        None => Ok((walk.items, walk.late)),
    }
}
