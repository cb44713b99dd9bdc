//! Flattening OTLP requests into JSON lines, and the append-only record file.
//!
//! Format, one JSON object per line:
//! - logs: `{"signal":"logs","resource":{..},"attributes":{..},"body":"..",
//!   "time_unix_nano":N,"trace_id":"hex"}`
//! - spans: `{"signal":"traces","resource":{..},"attributes":{..},"name":"..",
//!   "trace_id":"hex","span_id":"hex"}`
//! - metric points: `{"signal":"metrics","resource":{..},"attributes":{..},"name":"..",
//!   "value":"..","time_unix_nano":N}`
//!
//! Attribute values are rendered as strings (ints and doubles in decimal, bytes in hex, arrays
//! and maps as JSON). A log record's duplicate key is its body plus its attributes.
//! Every [`Recorder::append`] flushes before returning, so a restart of the backend (even a
//! SIGKILL) keeps every line of every answered request. A line cut short by such a kill is ended
//! with a newline when the file is reopened, so the next record starts a line of its own.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Value as Json, json};

/// One flattened item: its JSON line and, for log records, its duplicate key.
#[derive(Clone, Debug)]
pub struct Record {
    line: Json,
}

impl Record {
    /// The JSON object written to the record file.
    pub fn json(&self) -> &Json {
        &self.line
    }

    /// True if the item carries a trace id that is not 16 bytes or a span id that is not 8
    /// (an empty id is allowed: it means "none").
    pub fn has_malformed_ids(&self) -> bool {
        let bad = |key: &str, bytes: usize| {
            self.line[key]
                .as_str()
                .is_some_and(|hex| !hex.is_empty() && hex.len() != 2 * bytes)
        };
        bad("trace_id", 16) || bad("span_id", 8)
    }
}

/// Counts of what one append (or the replay at start) added.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    /// Log records.
    pub log_records: u64,
    /// Spans.
    pub spans: u64,
    /// Metric data points.
    pub metric_points: u64,
    /// Log records not seen before.
    pub unique_log_records: u64,
    /// Log records seen before (same body and attributes).
    pub duplicate_log_records: u64,
}

impl Tally {
    /// All items counted.
    pub fn items(&self) -> u64 {
        self.log_records + self.spans + self.metric_points
    }
}

/// The append-only record file plus the set of log keys seen so far.
#[derive(Debug)]
pub struct Recorder {
    file: Option<BufWriter<File>>,
    seen_logs: HashSet<String>,
}

impl Recorder {
    /// Opens (creating if needed) the record file and replays its existing lines.
    pub fn open(path: Option<PathBuf>) -> anyhow::Result<(Self, Tally)> {
        let mut recorder = Recorder {
            file: None,
            seen_logs: HashSet::new(),
        };
        let mut tally = Tally::default();
        let Some(path) = path else {
            return Ok((recorder, tally));
        };
        if path.exists() {
            let reader = BufReader::new(
                File::open(&path).with_context(|| format!("opening {}", path.display()))?,
            );
            for line in reader.lines() {
                let line = line.with_context(|| format!("reading {}", path.display()))?;
                // A line cut short by a kill of an earlier backend is skipped, not fatal.
                if let Ok(json) = serde_json::from_str::<Json>(&line) {
                    recorder.count(&json, &mut tally);
                }
            }
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {} for appending", path.display()))?;
        end_the_cut_line(&mut file)
            .with_context(|| format!("ending the last line of {}", path.display()))?;
        recorder.file = Some(BufWriter::new(file));
        Ok((recorder, tally))
    }

    /// Counts and writes the records, then flushes the file.
    pub fn append(&mut self, records: &[Record]) -> std::io::Result<Tally> {
        let mut tally = Tally::default();
        for record in records {
            self.count(&record.line, &mut tally);
            if let Some(file) = &mut self.file {
                serde_json::to_writer(&mut *file, &record.line)?;
                file.write_all(b"\n")?;
            }
        }
        if let Some(file) = &mut self.file {
            file.flush()?;
        }
        Ok(tally)
    }

    fn count(&mut self, line: &Json, tally: &mut Tally) {
        match line.get("signal").and_then(Json::as_str) {
            Some("logs") => {
                tally.log_records += 1;
                let key = format!("{}\u{0}{}", line["body"], line["attributes"]);
                if self.seen_logs.insert(key) {
                    tally.unique_log_records += 1;
                } else {
                    tally.duplicate_log_records += 1;
                }
            }
            Some("traces") => tally.spans += 1,
            Some("metrics") => tally.metric_points += 1,
            _ => {}
        }
    }
}

/// A kill of an earlier backend can leave the file ending in the middle of a line; appending to
/// it would glue the next record onto that cut line and hide it from every reader. Ends such a
/// line with a newline (the cut line stays unparseable and is skipped).
fn end_the_cut_line(file: &mut File) -> std::io::Result<()> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    if last[0] != b'\n' {
        file.write_all(b"\n")?;
    }
    Ok(())
}

/// Renders an attribute value as a string.
pub fn any_to_string(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => hex(b),
        Some(Value::ArrayValue(a)) => Json::from(
            a.values
                .iter()
                .map(|v| any_to_string(Some(v)))
                .collect::<Vec<_>>(),
        )
        .to_string(),
        Some(Value::KvlistValue(kv)) => Json::from(attrs(&kv.values)).to_string(),
        Some(Value::StringValueStrindex(i)) => format!("strindex:{i}"),
    }
}

/// Attributes as a sorted map of strings.
pub fn attrs(kvs: &[KeyValue]) -> serde_json::Map<String, Json> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), Json::from(any_to_string(kv.value.as_ref()))))
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .collect()
}

fn resource_attrs(resource: Option<&Resource>) -> serde_json::Map<String, Json> {
    resource.map(|r| attrs(&r.attributes)).unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One record per log record.
pub fn from_logs(request: &ExportLogsServiceRequest) -> Vec<Record> {
    let mut out = Vec::new();
    for rl in &request.resource_logs {
        let resource = resource_attrs(rl.resource.as_ref());
        for sl in &rl.scope_logs {
            for lr in &sl.log_records {
                out.push(Record {
                    line: json!({
                        "signal": "logs",
                        "resource": resource,
                        "attributes": attrs(&lr.attributes),
                        "body": any_to_string(lr.body.as_ref()),
                        "severity_text": lr.severity_text,
                        "time_unix_nano": lr.time_unix_nano,
                        "trace_id": hex(&lr.trace_id),
                    }),
                });
            }
        }
    }
    out
}

/// One record per span.
pub fn from_traces(request: &ExportTraceServiceRequest) -> Vec<Record> {
    let mut out = Vec::new();
    for rs in &request.resource_spans {
        let resource = resource_attrs(rs.resource.as_ref());
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                out.push(Record {
                    line: json!({
                        "signal": "traces",
                        "resource": resource,
                        "attributes": attrs(&span.attributes),
                        "name": span.name,
                        "trace_id": hex(&span.trace_id),
                        "span_id": hex(&span.span_id),
                    }),
                });
            }
        }
    }
    out
}

/// One record per metric data point.
pub fn from_metrics(request: &ExportMetricsServiceRequest) -> Vec<Record> {
    let mut out = Vec::new();
    for rm in &request.resource_metrics {
        let resource = resource_attrs(rm.resource.as_ref());
        for sm in &rm.scope_metrics {
            for metric in &sm.metrics {
                let mut push = |attributes: &[KeyValue], value: String, time: u64| {
                    out.push(Record {
                        line: json!({
                            "signal": "metrics",
                            "resource": resource,
                            "attributes": attrs(attributes),
                            "name": metric.name,
                            "value": value,
                            "time_unix_nano": time,
                        }),
                    });
                };
                let number = |p: &Option<number_data_point::Value>| match p {
                    Some(number_data_point::Value::AsInt(i)) => i.to_string(),
                    Some(number_data_point::Value::AsDouble(d)) => d.to_string(),
                    None => String::new(),
                };
                match &metric.data {
                    Some(Data::Gauge(g)) => g.data_points.iter().for_each(|p| {
                        push(&p.attributes, number(&p.value), p.time_unix_nano);
                    }),
                    Some(Data::Sum(s)) => s.data_points.iter().for_each(|p| {
                        push(&p.attributes, number(&p.value), p.time_unix_nano);
                    }),
                    Some(Data::Histogram(h)) => h.data_points.iter().for_each(|p| {
                        push(
                            &p.attributes,
                            format!("count={}", p.count),
                            p.time_unix_nano,
                        );
                    }),
                    Some(Data::ExponentialHistogram(h)) => h.data_points.iter().for_each(|p| {
                        push(
                            &p.attributes,
                            format!("count={}", p.count),
                            p.time_unix_nano,
                        );
                    }),
                    Some(Data::Summary(s)) => s.data_points.iter().for_each(|p| {
                        push(
                            &p.attributes,
                            format!("count={}", p.count),
                            p.time_unix_nano,
                        );
                    }),
                    None => {}
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        }
    }

    fn request(bodies: &[&str]) -> ExportLogsServiceRequest {
        let log_records = bodies
            .iter()
            .map(|b| LogRecord {
                body: Some(AnyValue {
                    value: Some(Value::StringValue((*b).into())),
                }),
                attributes: vec![kv("emerge.job_id", Value::IntValue(7))],
                trace_id: vec![0xab; 16],
                ..LogRecord::default()
            })
            .collect();
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", Value::StringValue("svc".into()))],
                    ..Resource::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records,
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        }
    }

    #[test]
    fn flattens_logs_with_string_attributes() {
        let records = from_logs(&request(&["a"]));
        assert_eq!(records.len(), 1);
        let line = records[0].json();
        assert_eq!(line["resource"]["service.name"], "svc");
        assert_eq!(line["attributes"]["emerge.job_id"], "7");
        assert_eq!(line["trace_id"], "ab".repeat(16));
    }

    #[test]
    fn counts_duplicates_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.jsonl");
        let (mut recorder, _) = Recorder::open(Some(path.clone())).unwrap();
        let tally = recorder
            .append(&from_logs(&request(&["a", "b", "a"])))
            .unwrap();
        assert_eq!((tally.log_records, tally.duplicate_log_records), (3, 1));
        drop(recorder);
        let (mut recorder, replayed) = Recorder::open(Some(path)).unwrap();
        assert_eq!((replayed.log_records, replayed.unique_log_records), (3, 2));
        let tally = recorder.append(&from_logs(&request(&["b", "c"]))).unwrap();
        assert_eq!(
            (tally.unique_log_records, tally.duplicate_log_records),
            (1, 1)
        );
    }

    /// Scenario: log records with a 16-byte, an empty and a 3-byte trace id are flattened.
    /// Guarantees: only the 3-byte one counts as malformed (what mode `strict` refuses).
    #[test]
    fn malformed_ids_are_recognised() {
        let mut req = request(&["ok", "none", "bad"]);
        let records = &mut req.resource_logs[0].scope_logs[0].log_records;
        records[1].trace_id.clear();
        records[2].trace_id = vec![1, 2, 3];
        let flagged: Vec<bool> = from_logs(&req)
            .iter()
            .map(Record::has_malformed_ids)
            .collect();
        assert_eq!(flagged, vec![false, false, true]);
    }

    /// Scenario: a backend is SIGKILLed in the middle of writing a line (its buffer reached the
    /// file up to `"body":"`, no newline), then a new backend opens the file and records "c".
    /// Guarantees: the cut line stays skipped and the new record is a line of its own, so a
    /// reader (replay, `otelspool-check`) sees it: a kill of the backend never hides a record
    /// delivered after it.
    #[test]
    fn a_line_cut_by_a_kill_does_not_swallow_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.jsonl");
        let (mut recorder, _) = Recorder::open(Some(path.clone())).unwrap();
        recorder.append(&from_logs(&request(&["a"]))).unwrap();
        drop(recorder);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"attributes":{"emerge.job_id":"7"},"body":""#)
            .unwrap();
        drop(file);

        let (mut recorder, replayed) = Recorder::open(Some(path.clone())).unwrap();
        assert_eq!(replayed.log_records, 1, "the cut line is skipped");
        recorder.append(&from_logs(&request(&["c"]))).unwrap();
        drop(recorder);

        let bodies: Vec<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<Json>(l).ok())
            .map(|j| j["body"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(bodies, ["a", "c"]);
        let (_, replayed) = Recorder::open(Some(path)).unwrap();
        assert_eq!(replayed.log_records, 2);
    }
}
