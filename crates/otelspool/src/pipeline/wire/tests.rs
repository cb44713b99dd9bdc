//! One test per acceptance rule: each builds the bytes by hand, pins what prost (decode, then
//! `check_ids`) does with them, and checks that the walker does the same.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;

use super::*;
use crate::pipeline::Decoded;

/// Encoding helpers: a field is its key and its payload.
pub(super) mod enc {
    /// A varint.
    pub fn varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            if v < 0x80 {
                out.push(v as u8);
                return out;
            }
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
    }

    /// A key.
    pub fn key(tag: u32, wire_type: u8) -> Vec<u8> {
        varint(u64::from(tag) << 3 | u64::from(wire_type))
    }

    /// A `LEN` field.
    pub fn len(tag: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = key(tag, 2);
        out.extend(varint(payload.len() as u64));
        out.extend_from_slice(payload);
        out
    }

    /// A `VARINT` field.
    pub fn var(tag: u32, v: u64) -> Vec<u8> {
        let mut out = key(tag, 0);
        out.extend(varint(v));
        out
    }

    /// An `I64` field.
    pub fn i64(tag: u32, v: u64) -> Vec<u8> {
        let mut out = key(tag, 1);
        out.extend(v.to_le_bytes());
        out
    }

    /// Concatenation.
    pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }
}

use enc::{cat, i64, key, len, var, varint};

/// What prost and `check_ids` say: the item count, or whether the error is an id length.
pub(super) fn reference(signal: Signal, body: &[u8]) -> Result<u64, Reject> {
    let decoded = Decoded::from_protobuf(signal, body).map_err(|_| Reject::Wire)?;
    match decoded.check_ids() {
        Ok(()) => Ok(decoded.items()),
        Err(PayloadError::IdLength { field, len, .. }) => Err(Reject::Id(field, len)),
        Err(_) => Err(Reject::Wire),
    }
}

/// What the walker says, in the same terms.
pub(super) fn walked(signal: Signal, body: &[u8]) -> Result<u64, Reject> {
    walk(signal, body, &mut CountOnly).map_err(|e| match e {
        PayloadError::IdLength { field, len, .. } => Reject::Id(field, len),
        _ => Reject::Wire,
    })
}

/// Why a request is refused, as far as the two must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reject {
    /// The encoding.
    Wire,
    /// An id of this field and length.
    Id(&'static str, usize),
}

/// Asserts that prost gives `want` and the walker agrees.
#[track_caller]
fn same(signal: Signal, body: &[u8], want: Result<u64, Reject>) {
    assert_eq!(reference(signal, body), want, "prost's verdict changed");
    assert_eq!(
        walked(signal, body),
        want,
        "the walker disagrees with prost"
    );
}

/// A logs request of one resource, one scope and these log records (encoded fields).
fn logs(records: &[&[u8]]) -> Vec<u8> {
    let mut scope = Vec::new();
    for r in records {
        scope.extend(len(2, r));
    }
    len(1, &len(2, &scope))
}

fn request_with_records(n: usize) -> Vec<u8> {
    let record = LogRecord {
        time_unix_nano: 7,
        severity_text: "INFO".into(),
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue("step 3/20".into())),
        }),
        attributes: vec![KeyValue {
            key: "emerge.job_id".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("job-1".into())),
            }),
            key_strindex: 0,
        }],
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![record; n],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// Scenario: a prost-encoded request of 3 records, an empty body, and one record with every
/// field at its default.
/// Guarantees: accepted with prost's counts (3, 0, 1).
#[test]
fn well_formed_requests_are_counted() {
    same(Signal::Logs, &request_with_records(3), Ok(3));
    same(Signal::Logs, b"", Ok(0));
    same(Signal::Logs, &logs(&[b""]), Ok(1));
}

/// Scenario: a key cut in the middle, an 11-byte varint, a 10-byte varint whose last byte is
/// 2, and one whose last byte is 1 (u64::MAX, taken by prost even for an `int32` enum).
/// Guarantees: the first three are wire errors, the last is accepted.
#[test]
fn varints_follow_prosts_bounds() {
    same(Signal::Logs, &[0x80], Err(Reject::Wire));
    let mut eleven = key(2, 0);
    eleven.extend([0xff; 10]);
    eleven.push(0);
    same(Signal::Logs, &logs(&[&eleven]), Err(Reject::Wire));
    let mut tenth_two = key(2, 0);
    tenth_two.extend([0xff; 9]);
    tenth_two.push(2);
    same(Signal::Logs, &logs(&[&tenth_two]), Err(Reject::Wire));
    let max = var(2, u64::MAX);
    assert_eq!(max.len(), 11);
    same(Signal::Logs, &logs(&[&max]), Ok(1));
}

/// Scenario: a key above 32 bits, wire types 6 and 7, field number 0.
/// Guarantees: each is a wire error.
#[test]
fn bad_keys_are_rejected() {
    let mut big = varint(1 << 33);
    big.push(0);
    same(Signal::Logs, &big, Err(Reject::Wire));
    for wt in [6u8, 7] {
        same(Signal::Logs, &logs(&[&key(20, wt)]), Err(Reject::Wire));
    }
    same(Signal::Logs, &var(0, 1), Err(Reject::Wire));
}

/// Scenario: known fields with the wrong wire type: a fixed64 sent as varint, a message
/// sent as varint, a string sent as fixed32, a varint field sent as `LEN`.
/// Guarantees: each is a wire error.
#[test]
fn known_fields_need_their_wire_type() {
    same(Signal::Logs, &logs(&[&var(1, 5)]), Err(Reject::Wire));
    same(Signal::Logs, &var(1, 5), Err(Reject::Wire));
    let mut fixed32 = key(3, 5);
    fixed32.extend([b'a'; 4]);
    same(Signal::Logs, &logs(&[&fixed32]), Err(Reject::Wire));
    same(Signal::Logs, &logs(&[&len(2, &[1])]), Err(Reject::Wire));
}

/// Scenario: a length past the end of the body; a record whose length passes the end of its
/// scope; a fixed64 cut short.
/// Guarantees: each is a wire error.
#[test]
fn lengths_stay_within_their_message() {
    let mut past = key(1, 2);
    past.extend(varint(10));
    past.extend([0; 3]);
    same(Signal::Logs, &past, Err(Reject::Wire));
    // ScopeLogs says 2 bytes, its record says 5: the record runs into the next field.
    // Read past the scope's end, the 5 bytes would be a valid record.
    let inner = cat(&[&key(2, 2), &varint(5)]);
    let scope = cat(&[
        &key(2, 2),
        &varint(inner.len() as u64),
        &inner,
        &var(2, 300),
        &var(7, 1),
    ]);
    let body = len(1, &scope);
    same(Signal::Logs, &body, Err(Reject::Wire));
    let short = cat(&[&key(1, 1), &[0; 4]]);
    same(Signal::Logs, &logs(&[&short]), Err(Reject::Wire));
}

/// Scenario: invalid UTF-8 in a record's `severity_text`, in an attribute key, and in a
/// string nested in an attribute's array value; the same bytes in `bytes` fields (a trace
/// id, an `AnyValue.bytes_value`).
/// Guarantees: the strings are wire errors; the bytes are accepted.
#[test]
fn strings_must_be_utf8_and_bytes_need_not() {
    let bad = [0xff, 0xfe, b'x'];
    same(Signal::Logs, &logs(&[&len(3, &bad)]), Err(Reject::Wire));
    let kv = len(6, &len(1, &bad));
    same(Signal::Logs, &logs(&[&kv]), Err(Reject::Wire));
    let nested = len(6, &len(2, &len(5, &len(1, &len(1, &bad)))));
    same(Signal::Logs, &logs(&[&nested]), Err(Reject::Wire));
    let id = len(9, &[0xff; 16]);
    same(Signal::Logs, &logs(&[&id]), Ok(1));
    let bytes_value = len(5, &len(7, &bad));
    same(Signal::Logs, &logs(&[&bytes_value]), Ok(1));
}

/// Scenario: log bodies of 60 to 200 bytes (across the length where the SIMD check takes
/// over), valid with two-, three- and four-byte characters, then damaged at the start, the
/// middle and the end with each kind of invalid UTF-8: a stray continuation byte, a cut
/// sequence, an overlong encoding, a surrogate, a code point past U+10FFFF, 0xff.
/// Guarantees: each is accepted or refused exactly as prost decides.
#[test]
fn long_strings_are_checked_for_utf8_as_prost_checks_them() {
    let damage: [&[u8]; 6] = [
        &[0x80],
        &[0xe2, 0x82],
        &[0xc0, 0x80],
        &[0xed, 0xa0, 0x80],
        &[0xf4, 0x90, 0x80, 0x80],
        &[0xff],
    ];
    for n in [60usize, 63, 64, 65, 100, 128, 200] {
        let text: String = "job ü € 𝄞 ".chars().cycle().take(n).collect();
        let valid = text.as_bytes();
        let body = |b: &[u8]| logs(&[&len(5, &len(1, b))]);
        same(Signal::Logs, &body(valid), Ok(1));
        for d in damage {
            for at in [0, valid.len() / 2, valid.len()] {
                let mut b = valid.to_vec();
                b.splice(at..at, d.iter().copied());
                same(Signal::Logs, &body(&b), Err(Reject::Wire));
            }
        }
    }
}

/// Scenario: unknown fields of every wire type (varint, I64, LEN, I32, a group holding
/// fields and a nested group) at the top, in a resource and in a record.
/// Guarantees: all are skipped and the count is prost's.
#[test]
fn unknown_fields_and_groups_are_skipped() {
    let group = cat(&[
        &key(40, 3),
        &var(1, 9),
        &key(2, 3),
        &len(3, b"x"),
        &key(2, 4),
        &key(40, 4),
    ]);
    let mut i32_field = key(41, 5);
    i32_field.extend([1; 4]);
    let unknown = cat(&[
        &var(30, 1),
        &i64(31, 2),
        &len(32, b"\xff"),
        &i32_field,
        &group,
    ]);
    let record = cat(&[&unknown, &len(3, b"ok")]);
    let body = cat(&[&unknown, &logs(&[&record, &record])]);
    same(Signal::Logs, &body, Ok(2));
}

/// Scenario: a group whose end has another number; an end-group without a start; a group
/// never closed; a known field (a record) sent as a group.
/// Guarantees: each is a wire error.
#[test]
fn broken_groups_are_rejected() {
    let mismatched = cat(&[&key(40, 3), &key(41, 4)]);
    same(Signal::Logs, &logs(&[&mismatched]), Err(Reject::Wire));
    same(Signal::Logs, &logs(&[&key(40, 4)]), Err(Reject::Wire));
    same(
        Signal::Logs,
        &logs(&[&cat(&[&key(40, 3), &var(1, 1)])]),
        Err(Reject::Wire),
    );
    let as_group = cat(&[&key(2, 3), &key(2, 4)]);
    same(Signal::Logs, &len(1, &len(2, &as_group)), Err(Reject::Wire));
}

/// A record body nesting `AnyValue`s in `ArrayValue`s `levels` times, with `leaf` innermost.
fn nested_body(levels: usize, leaf: &[u8]) -> Vec<u8> {
    let mut value = leaf.to_vec();
    for _ in 0..levels {
        value = len(5, &len(1, &value));
    }
    len(5, &value)
}

/// Scenario: record bodies nested up to prost's recursion limit (a record is 3 messages
/// deep, its body 4, each array level 2 more): at the limit, one past it; at the limit with
/// an unknown field in the innermost value, whose skipping needs one more level.
/// Guarantees: accepted, rejected, rejected, as prost does.
#[test]
fn nesting_follows_prosts_recursion_limit() {
    // Innermost AnyValue at depth 4 + 2 * 48 = 100: its fields are read with no budget left.
    same(
        Signal::Logs,
        &logs(&[&nested_body(48, &len(1, b"s"))]),
        Ok(1),
    );
    same(
        Signal::Logs,
        &logs(&[&nested_body(49, &len(1, b"s"))]),
        Err(Reject::Wire),
    );
    same(
        Signal::Logs,
        &logs(&[&nested_body(48, &var(30, 1))]),
        Err(Reject::Wire),
    );
    same(Signal::Logs, &logs(&[&nested_body(47, &var(30, 1))]), Ok(1));
}

/// Scenario: a trace id of 15 bytes; a span id of 8 then of 3 (the last counts); a trace id of
/// 3 then 16; an otherwise well-formed request with a bad id and, later, a malformed record.
/// Guarantees: id errors name the field and length of the last value; the malformed record
/// wins over the id, as prost fails before `check_ids` runs.
#[test]
fn ids_are_checked_on_their_last_value_after_the_encoding() {
    same(
        Signal::Logs,
        &logs(&[&len(9, &[1; 15])]),
        Err(Reject::Id("trace_id", 15)),
    );
    let twice = cat(&[&len(10, &[1; 8]), &len(10, &[1; 3])]);
    same(
        Signal::Logs,
        &logs(&[&twice]),
        Err(Reject::Id("span_id", 3)),
    );
    let fixed = cat(&[&len(9, &[1; 3]), &len(9, &[1; 16])]);
    same(Signal::Logs, &logs(&[&fixed]), Ok(1));
    same(
        Signal::Logs,
        &logs(&[&len(9, &[1; 15]), &var(1, 1)]),
        Err(Reject::Wire),
    );
}

/// Scenario: histogram bucket counts packed, unpacked, and packed with a length that is not a
/// whole number of fixed64s; exponential histogram buckets with packed varints, unpacked, and
/// a packed varint cut short.
/// Guarantees: the well-formed ones count their point; the others are wire errors.
#[test]
fn repeated_scalars_may_be_packed_or_not() {
    let metric =
        |data_tag: u32, point: &[u8]| len(1, &len(2, &len(2, &len(data_tag, &len(1, point)))));
    let packed = len(6, &[0; 16]);
    let unpacked = cat(&[&i64(6, 1), &i64(6, 2), &i64(7, 3)]);
    let ragged = len(6, &[0; 12]);
    same(Signal::Metrics, &metric(9, &packed), Ok(1));
    same(Signal::Metrics, &metric(9, &unpacked), Ok(1));
    same(Signal::Metrics, &metric(9, &ragged), Err(Reject::Wire));
    let buckets = |b: &[u8]| len(8, b);
    same(
        Signal::Metrics,
        &metric(10, &buckets(&len(2, &[1, 0x80, 1, 5]))),
        Ok(1),
    );
    same(
        Signal::Metrics,
        &metric(10, &buckets(&cat(&[&var(2, 1), &var(2, 2)]))),
        Ok(1),
    );
    same(
        Signal::Metrics,
        &metric(10, &buckets(&len(2, &[1, 0x80]))),
        Err(Reject::Wire),
    );
}

/// A metric with these `data` fields (tag, encoded points).
fn metric_with(data: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut metric = len(1, b"m");
    for (tag, body) in data {
        metric.extend(len(*tag, body));
    }
    len(1, &len(2, &len(2, &metric)))
}

/// Scenario: every data kind with two points; a gauge of 2 points then a sum of 1 (the sum
/// replaces it); two gauges in a row (they merge); a gauge whose exemplar has a bad trace
/// id, replaced by a sum; a sum whose exemplar has a bad span id.
/// Guarantees: counts and id errors are those of the kept data only, as prost keeps it.
#[test]
fn metric_data_counts_the_kept_oneof_only() {
    let point = len(1, &i64(2, 1));
    let two = cat(&[&point, &point]);
    for tag in [5, 7, 9, 10, 11] {
        same(Signal::Metrics, &metric_with(&[(tag, two.clone())]), Ok(2));
    }
    same(
        Signal::Metrics,
        &metric_with(&[(5, two.clone()), (7, point.clone())]),
        Ok(1),
    );
    same(
        Signal::Metrics,
        &metric_with(&[(5, two.clone()), (5, point.clone())]),
        Ok(3),
    );
    let bad_trace = len(1, &len(5, &len(5, &[1; 3])));
    same(
        Signal::Metrics,
        &metric_with(&[(5, bad_trace), (7, point.clone())]),
        Ok(1),
    );
    let bad_span = len(1, &len(5, &len(4, &[1; 9])));
    same(
        Signal::Metrics,
        &metric_with(&[(7, bad_span)]),
        Err(Reject::Id("exemplars.span_id", 9)),
    );
}

/// Scenario: a span with a link whose span id is 4 bytes and a parent span id of 2 bytes;
/// a span with a good link and bad trace id.
/// Guarantees: the span's own ids are reported before its links', as `check_ids` does.
#[test]
fn span_ids_before_link_ids() {
    let span = cat(&[&len(13, &len(2, &[1; 4])), &len(4, &[1; 2])]);
    let body = len(1, &len(2, &len(2, &span)));
    same(Signal::Traces, &body, Err(Reject::Id("parent_span_id", 2)));
    let span = cat(&[&len(13, &len(2, &[1; 4]))]);
    let body = len(1, &len(2, &len(2, &span)));
    same(Signal::Traces, &body, Err(Reject::Id("links.span_id", 4)));
}

/// Records what the walker reports.
#[derive(Default)]
pub(super) struct Recorder {
    pub keys: Vec<Box<str>>,
    pub items: Vec<Vec<Option<String>>>,
    pub restarts: usize,
}

impl ItemVisitor for Recorder {
    fn keys(&self) -> &[Box<str>] {
        &self.keys
    }

    fn item(&mut self, values: &[Option<&str>]) {
        self.items
            .push(values.iter().map(|v| v.map(str::to_string)).collect());
    }

    fn restart(&mut self) {
        self.items.clear();
        self.restarts += 1;
    }
}

fn string_attr(k: &str, v: &str) -> Vec<u8> {
    cat(&[&len(1, k.as_bytes()), &len(2, &len(1, v.as_bytes()))])
}

/// Scenario: a resource (sent after its scope logs), a scope (sent after its records) and
/// records carrying `job` and `wf` in every combination: on the record, only on the scope,
/// only on the resource, an int on the record over a string on the scope, a key twice on a
/// record.
/// Guarantees: each record gets the record's string, else the scope's, else the
/// resource's; the first attribute of a key counts; field order in the bytes does not matter.
#[test]
fn visitor_values_come_from_item_then_scope_then_resource() {
    let int_attr = cat(&[&len(1, b"wf"), &len(2, &var(3, 5))]);
    let records = [
        cat(&[
            &len(6, &string_attr("job", "r1")),
            &len(6, &string_attr("wf", "w1")),
        ]),
        cat(&[&len(6, &string_attr("other", "x"))]),
        cat(&[&len(6, &int_attr)]),
        cat(&[
            &len(6, &string_attr("job", "first")),
            &len(6, &string_attr("job", "second")),
        ]),
    ];
    let mut scope_logs = Vec::new();
    for r in &records {
        scope_logs.extend(len(2, r));
    }
    scope_logs.extend(len(1, &len(3, &string_attr("wf", "scope-wf"))));
    let resource = len(1, &len(1, &string_attr("job", "res-job")));
    let body = len(1, &cat(&[&len(2, &scope_logs), &resource]));
    let mut rec = Recorder {
        keys: vec!["job".into(), "wf".into()],
        ..Default::default()
    };
    assert_eq!(walk(Signal::Logs, &body, &mut rec).expect("valid"), 4);
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        rec.items,
        vec![
            vec![s("r1"), s("w1")],
            vec![s("res-job"), s("scope-wf")],
            vec![s("res-job"), s("scope-wf")],
            vec![s("first"), s("scope-wf")],
        ]
    );
    assert_eq!(reference(Signal::Logs, &body), Ok(4));
}

/// Scenario: the same records in the order every encoder writes (resource, then its scope
/// logs; scope, then its records), and again with a second resource occurrence after the
/// scope logs (protobuf merges both: its key must reach the records before it).
/// Guarantees: in encoder order the walk reports in one pass (no restart) with the
/// resource's and the scope's values; with the late occurrence it starts over once and
/// every record gets the merged values, as a full decode would give.
#[test]
fn encoder_order_is_walked_once_and_a_late_resource_still_counts() {
    let records = [
        cat(&[&len(6, &string_attr("job", "own"))]),
        cat(&[&len(6, &string_attr("other", "x"))]),
    ];
    let mut items = Vec::new();
    for r in &records {
        items.extend(len(2, r));
    }
    let scope = len(1, &len(3, &string_attr("wf", "scope-wf")));
    let scope_logs = cat(&[&scope, &items]);
    let resource = len(1, &len(1, &string_attr("job", "res-job")));
    let keys: Vec<Box<str>> = vec!["job".into(), "wf".into()];
    let s = |v: &str| Some(v.to_string());

    let canonical = len(1, &cat(&[&resource, &len(2, &scope_logs)]));
    let mut rec = Recorder {
        keys: keys.clone(),
        ..Default::default()
    };
    assert_eq!(walk(Signal::Logs, &canonical, &mut rec).expect("valid"), 2);
    assert_eq!(rec.restarts, 0, "encoder order needs no second pass");
    assert_eq!(
        rec.items,
        vec![
            vec![s("own"), s("scope-wf")],
            vec![s("res-job"), s("scope-wf")]
        ]
    );

    // The first resource occurrence has no wanted key; the second, after the scopes, has.
    let early = len(1, &len(1, &string_attr("host", "h1")));
    let late = len(1, &cat(&[&early, &len(2, &scope_logs), &resource]));
    let mut rec = Recorder {
        keys,
        ..Default::default()
    };
    assert_eq!(walk(Signal::Logs, &late, &mut rec).expect("valid"), 2);
    assert_eq!(rec.restarts, 1);
    assert_eq!(
        rec.items,
        vec![
            vec![s("own"), s("scope-wf")],
            vec![s("res-job"), s("scope-wf")]
        ]
    );
    assert_eq!(reference(Signal::Logs, &late), Ok(2));
}

/// Scenario: a visitor with ten keys (past the inline slots), all of them on one record.
/// Guarantees: every value is reported, in key order.
#[test]
fn many_keys_are_all_looked_up() {
    let keys: Vec<Box<str>> = (0..10).map(|i| format!("k{i}").into()).collect();
    let record: Vec<u8> = keys
        .iter()
        .rev()
        .flat_map(|k| len(6, &string_attr(k, &format!("v-{k}"))))
        .collect();
    let mut rec = Recorder {
        keys: keys.clone(),
        ..Default::default()
    };
    walk(Signal::Logs, &logs(&[&record]), &mut rec).expect("valid");
    let want: Vec<Option<String>> = keys.iter().map(|k| Some(format!("v-{k}"))).collect();
    assert_eq!(rec.items, vec![want]);
}

/// Scenario: every pair of strings of 0 to 80 bytes that are equal, differ in one byte (at
/// every position), or differ in length.
/// Guarantees: `same_str` agrees with `==` on each, at every length its word loop, its
/// overlapping last word and its short and long paths cover.
#[test]
fn same_str_agrees_with_equality() {
    for n in 0..=80usize {
        let a: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        assert!(super::same_str(&a, &a.clone()), "equal, {n} bytes");
        for at in 0..n {
            let mut b = a.clone().into_bytes();
            b[at] = b'Z';
            let b = String::from_utf8(b).expect("ascii");
            assert_eq!(
                super::same_str(&a, &b),
                a == b,
                "{n} bytes, differing at {at}"
            );
        }
        let longer = format!("{a}x");
        assert!(!super::same_str(&a, &longer), "{n} vs {} bytes", n + 1);
    }
}
