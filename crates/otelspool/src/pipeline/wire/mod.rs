//! The wire walker's contract: validate an encoded export request and report each item's job
//! attribute values to a visitor, without building the decoded request for the caller.
//!
//! **Stand-in, replaced by the walker**: this version implements the contract with
//! `Decoded::from_protobuf` (a full decode, so it allocates); the validating, allocation-free
//! walker replaces this file with the same API. Callers (the job ledger) depend only on
//! [`walk`], [`ItemVisitor`] and [`CountOnly`].

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;

use super::Signal;
use super::payload::{Decoded, PayloadError};

/// What the walker reports for each item (log record, span, metric data point).
pub trait ItemVisitor {
    /// Attribute keys whose string values this visitor wants (at most a handful). Empty: no
    /// attribute lookups at all.
    fn keys(&self) -> &[Box<str>];
    /// Called once per item, in request order, with one entry per key of `keys()`: the string
    /// value of that key on the item itself, else on its scope, else on its resource; `None`
    /// when absent or not a string value.
    fn item(&mut self, values: &[Option<&str>]);
}

/// A visitor that wants nothing (pure validate + count).
pub struct CountOnly;

impl ItemVisitor for CountOnly {
    fn keys(&self) -> &[Box<str>] {
        &[]
    }
    fn item(&mut self, _values: &[Option<&str>]) {}
}

/// Most keys a visitor may ask for; more are ignored.
const MAX_KEYS: usize = 8;

fn string_of<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs.iter().rev().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        }
    })
}

/// Reports one item: each key looked up on the item, then the scope, then the resource.
fn report(visitor: &mut impl ItemVisitor, levels: [&[KeyValue]; 3]) {
    let mut values: [Option<&str>; MAX_KEYS] = [None; MAX_KEYS];
    let n = visitor.keys().len().min(MAX_KEYS);
    for (i, key) in visitor.keys().iter().take(n).enumerate() {
        values[i] = levels.iter().find_map(|attrs| string_of(attrs, key));
    }
    visitor.item(&values[..n]);
}

/// Validates `body` as an export request of `signal` (as strictly as prost's decode, plus the
/// id length rules of `Decoded::check_ids`), calls the visitor per item, and returns the item
/// count.
pub fn walk(
    signal: Signal,
    body: &[u8],
    visitor: &mut impl ItemVisitor,
) -> Result<u64, PayloadError> {
    let decoded = Decoded::from_protobuf(signal, body)?;
    decoded.check_ids()?;
    let wants = !visitor.keys().is_empty();
    let mut items = 0u64;
    match &decoded {
        Decoded::Logs(r) => {
            for rl in &r.resource_logs {
                let res = rl.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
                for sl in &rl.scope_logs {
                    let scope = sl.scope.as_ref().map_or(&[][..], |s| &s.attributes[..]);
                    for l in &sl.log_records {
                        items += 1;
                        if wants {
                            report(visitor, [&l.attributes, scope, res]);
                        } else {
                            visitor.item(&[]);
                        }
                    }
                }
            }
        }
        Decoded::Traces(r) => {
            for rs in &r.resource_spans {
                let res = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
                for ss in &rs.scope_spans {
                    let scope = ss.scope.as_ref().map_or(&[][..], |s| &s.attributes[..]);
                    for s in &ss.spans {
                        items += 1;
                        report(visitor, [&s.attributes, scope, res]);
                    }
                }
            }
        }
        Decoded::Metrics(r) => {
            for rm in &r.resource_metrics {
                let res = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
                for sm in &rm.scope_metrics {
                    let scope = sm.scope.as_ref().map_or(&[][..], |s| &s.attributes[..]);
                    for m in &sm.metrics {
                        // Data points carry their own attributes, looked up first.
                        match &m.data {
                            Some(Data::Gauge(g)) => g
                                .data_points
                                .iter()
                                .for_each(|p| report(visitor, [&p.attributes, scope, res])),
                            Some(Data::Sum(s)) => s
                                .data_points
                                .iter()
                                .for_each(|p| report(visitor, [&p.attributes, scope, res])),
                            Some(Data::Histogram(h)) => h
                                .data_points
                                .iter()
                                .for_each(|p| report(visitor, [&p.attributes, scope, res])),
                            Some(Data::ExponentialHistogram(h)) => h
                                .data_points
                                .iter()
                                .for_each(|p| report(visitor, [&p.attributes, scope, res])),
                            Some(Data::Summary(s)) => s
                                .data_points
                                .iter()
                                .for_each(|p| report(visitor, [&p.attributes, scope, res])),
                            None => {}
                        }
                    }
                }
            }
            items = decoded.items();
        }
    }
    Ok(items)
}
