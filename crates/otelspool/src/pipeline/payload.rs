//! OTLP payloads: validate and count an encoded request, convert OTLP/JSON to protobuf, and
//! decode/encode for the processors that must change data.
//!
//! Receivers keep the client's protobuf bytes as they are whenever no processor changes the
//! data, so the common path never decodes: it walks the bytes once to validate and count
//! them (`wire`), and never re-encodes.
//!
//! Validation is what the OpenTelemetry Collector's pdata does on unmarshal: besides the
//! encoding, every trace id must be 16 bytes and every span id 8 (or empty), in log records,
//! spans, span links and metric exemplars. A request that breaks it is refused whole, before
//! it is acknowledged, as otelcol refuses it (`InvalidArgument` / 400).

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::Exemplar;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;

use super::Signal;
use super::wire::{self, CountOnly, WireError};

/// An encoded `Export*ServiceRequest` of one signal with its item count.
#[derive(Debug, Clone)]
pub struct Payload {
    /// Which signal the bytes encode.
    pub signal: Signal,
    /// The protobuf encoding of the export request.
    pub body: Bytes,
    /// Log records, spans or metric data points in it.
    pub items: u64,
    /// Items per job, from the receive walk, when the job ledger is on.
    pub jobs: Option<crate::ledger::tally::JobTally>,
}

/// A decoded request, for processors that change data.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// Logs.
    Logs(ExportLogsServiceRequest),
    /// Traces.
    Traces(ExportTraceServiceRequest),
    /// Metrics.
    Metrics(ExportMetricsServiceRequest),
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The protobuf bytes are not a valid export request (prost's decode).
    #[error("malformed OTLP protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The protobuf bytes are not a valid export request (the wire walker).
    #[error("malformed OTLP protobuf: {0}")]
    Wire(#[from] WireError),
    /// The JSON is not a valid OTLP/JSON export request.
    #[error("malformed OTLP/JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A trace or span id has neither its fixed length nor none (pdata's "invalid TraceID
    /// length" / "invalid SpanID length").
    #[error("invalid {field} length: {len} bytes (want {want}, or none)")]
    IdLength {
        /// Which id (`trace_id`, `span_id`, `parent_span_id`, `links.trace_id`, ...).
        field: &'static str,
        /// Its length.
        len: usize,
        /// The length it must have.
        want: usize,
    },
}

/// Bytes of a trace id.
pub const TRACE_ID_LEN: usize = 16;
/// Bytes of a span id.
pub const SPAN_ID_LEN: usize = 8;

fn check_id(field: &'static str, id: &[u8], want: usize) -> Result<(), PayloadError> {
    if id.is_empty() || id.len() == want {
        Ok(())
    } else {
        Err(PayloadError::IdLength {
            field,
            len: id.len(),
            want,
        })
    }
}

fn check_exemplars(exemplars: &[Exemplar]) -> Result<(), PayloadError> {
    exemplars.iter().try_for_each(|e| {
        check_id("exemplars.trace_id", &e.trace_id, TRACE_ID_LEN)?;
        check_id("exemplars.span_id", &e.span_id, SPAN_ID_LEN)
    })
}

impl Decoded {
    /// Decodes protobuf bytes of `signal`.
    pub fn from_protobuf(signal: Signal, bytes: &[u8]) -> Result<Decoded, PayloadError> {
        Ok(match signal {
            Signal::Logs => Decoded::Logs(ExportLogsServiceRequest::decode(bytes)?),
            Signal::Traces => Decoded::Traces(ExportTraceServiceRequest::decode(bytes)?),
            Signal::Metrics => Decoded::Metrics(ExportMetricsServiceRequest::decode(bytes)?),
        })
    }

    /// Decodes OTLP/JSON bytes of `signal` (hex trace ids, 64-bit integers as strings or
    /// numbers, enums as integers, as the OTLP specification requires).
    pub fn from_json(signal: Signal, bytes: &[u8]) -> Result<Decoded, PayloadError> {
        Ok(match signal {
            Signal::Logs => Decoded::Logs(serde_json::from_slice(bytes)?),
            Signal::Traces => Decoded::Traces(serde_json::from_slice(bytes)?),
            Signal::Metrics => Decoded::Metrics(serde_json::from_slice(bytes)?),
        })
    }

    /// The signal of this request.
    pub fn signal(&self) -> Signal {
        match self {
            Decoded::Logs(_) => Signal::Logs,
            Decoded::Traces(_) => Signal::Traces,
            Decoded::Metrics(_) => Signal::Metrics,
        }
    }

    /// Log records, spans or data points in the request.
    pub fn items(&self) -> u64 {
        match self {
            Decoded::Logs(r) => r
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .map(|sl| sl.log_records.len() as u64)
                .sum(),
            Decoded::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len() as u64)
                .sum(),
            Decoded::Metrics(r) => r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
                .map(|m| data_points(m.data.as_ref()))
                .sum(),
        }
    }

    /// Checks every trace and span id for its length (empty ids are valid).
    pub fn check_ids(&self) -> Result<(), PayloadError> {
        match self {
            Decoded::Logs(r) => r
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .flat_map(|sl| &sl.log_records)
                .try_for_each(|l| {
                    check_id("trace_id", &l.trace_id, TRACE_ID_LEN)?;
                    check_id("span_id", &l.span_id, SPAN_ID_LEN)
                }),
            Decoded::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
                .try_for_each(|s| {
                    check_id("trace_id", &s.trace_id, TRACE_ID_LEN)?;
                    check_id("span_id", &s.span_id, SPAN_ID_LEN)?;
                    check_id("parent_span_id", &s.parent_span_id, SPAN_ID_LEN)?;
                    s.links.iter().try_for_each(|l| {
                        check_id("links.trace_id", &l.trace_id, TRACE_ID_LEN)?;
                        check_id("links.span_id", &l.span_id, SPAN_ID_LEN)
                    })
                }),
            Decoded::Metrics(r) => r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
                .try_for_each(|m| match &m.data {
                    Some(Data::Gauge(g)) => g
                        .data_points
                        .iter()
                        .try_for_each(|p| check_exemplars(&p.exemplars)),
                    Some(Data::Sum(s)) => s
                        .data_points
                        .iter()
                        .try_for_each(|p| check_exemplars(&p.exemplars)),
                    Some(Data::Histogram(h)) => h
                        .data_points
                        .iter()
                        .try_for_each(|p| check_exemplars(&p.exemplars)),
                    Some(Data::ExponentialHistogram(h)) => h
                        .data_points
                        .iter()
                        .try_for_each(|p| check_exemplars(&p.exemplars)),
                    Some(Data::Summary(_)) | None => Ok(()),
                }),
        }
    }

    /// Encodes back to protobuf.
    pub fn encode(&self) -> Bytes {
        Bytes::from(match self {
            Decoded::Logs(r) => r.encode_to_vec(),
            Decoded::Traces(r) => r.encode_to_vec(),
            Decoded::Metrics(r) => r.encode_to_vec(),
        })
    }

    /// Encodes into a payload.
    pub fn into_payload(self) -> Payload {
        Payload {
            signal: self.signal(),
            items: self.items(),
            body: self.encode(),
            jobs: None,
        }
    }
}

/// Data points in one metric, counted as otelcol counts them.
fn data_points(data: Option<&Data>) -> u64 {
    match data {
        Some(Data::Gauge(g)) => g.data_points.len() as u64,
        Some(Data::Sum(s)) => s.data_points.len() as u64,
        Some(Data::Histogram(h)) => h.data_points.len() as u64,
        Some(Data::ExponentialHistogram(h)) => h.data_points.len() as u64,
        Some(Data::Summary(s)) => s.data_points.len() as u64,
        None => 0,
    }
}

/// Merges encoded export requests of one signal into one request by concatenating their bytes:
/// protobuf defines that as merging, so the repeated `resource_*` fields add up. No decode, no
/// re-encode, nothing split. One part is returned as it is (no copy).
pub fn merge_requests<'a>(parts: impl ExactSizeIterator<Item = &'a Bytes> + Clone) -> Bytes {
    let mut iter = parts.clone();
    if parts.len() == 1 {
        return iter.next().cloned().unwrap_or_default();
    }
    let mut buf = bytes::BytesMut::with_capacity(parts.clone().map(Bytes::len).sum());
    for p in iter {
        buf.extend_from_slice(p);
    }
    buf.freeze()
}

impl Payload {
    /// Validates protobuf bytes (encoding and id lengths) and counts their items, keeping the
    /// bytes as they are: one walk over the bytes, nothing decoded or allocated
    /// ([`wire::walk`]).
    pub fn from_protobuf(signal: Signal, body: Bytes) -> Result<Payload, PayloadError> {
        let items = wire::walk(signal, &body, &mut CountOnly)?;
        Ok(Payload {
            signal,
            body,
            items,
            jobs: None,
        })
    }

    /// As [`Payload::from_protobuf`], and with `keys` (the job ledger's) counts the items per
    /// job in the same walk. No keys: exactly `from_protobuf`.
    pub fn from_protobuf_with_jobs(
        signal: Signal,
        body: Bytes,
        keys: Option<&std::sync::Arc<[Box<str>]>>,
    ) -> Result<Payload, PayloadError> {
        let Some(keys) = keys else {
            return Payload::from_protobuf(signal, body);
        };
        let mut visitor = crate::ledger::tally::TallyVisitor::new(keys.clone());
        let items = wire::walk(signal, &body, &mut visitor)?;
        Ok(Payload {
            signal,
            body,
            items,
            jobs: Some(visitor.tally),
        })
    }

    /// Validates OTLP/JSON bytes (encoding and id lengths) and converts them to protobuf.
    pub fn from_json(signal: Signal, json: &[u8]) -> Result<Payload, PayloadError> {
        let decoded = Decoded::from_json(signal, json)?;
        decoded.check_ids()?;
        Ok(decoded.into_payload())
    }

    /// As [`Payload::from_json`], and with `keys` (the job ledger's) counts the items per job
    /// by walking the converted protobuf, as the exporter's delivery count will.
    pub fn from_json_with_jobs(
        signal: Signal,
        json: &[u8],
        keys: Option<&std::sync::Arc<[Box<str>]>>,
    ) -> Result<Payload, PayloadError> {
        let payload = Payload::from_json(signal, json)?;
        let Some(keys) = keys else {
            return Ok(payload);
        };
        Payload::from_protobuf_with_jobs(signal, payload.body, Some(keys))
    }

    /// Decodes the payload for a processor that changes data.
    pub fn decode(&self) -> Result<Decoded, PayloadError> {
        Decoded::from_protobuf(self.signal, &self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: an OTLP/JSON log request as the specification shows it (hex ids, string
    /// integers, integer enums).
    /// Guarantees: it is accepted and converted with every field intact.
    #[test]
    fn otlp_json_follows_the_specification() {
        let json = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"comfy"}}]},
          "scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000000000001","severityNumber":9,
          "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
          "body":{"stringValue":"step 3/20"},
          "attributes":[{"key":"emerge.job_id","value":{"stringValue":"job-1"}},
                        {"key":"n","value":{"intValue":"9007199254740993"}}]}]}]}]}"#;
        let Decoded::Logs(r) = Decoded::from_json(Signal::Logs, json).expect("valid OTLP/JSON")
        else {
            panic!("wrong signal")
        };
        let rec = &r.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(rec.time_unix_nano, 1_700_000_000_000_000_001);
        assert_eq!(rec.severity_number, 9);
        assert_eq!(hex(&rec.trace_id), "5b8efff798038103d269b633813fc60c");
        assert_eq!(hex(&rec.span_id), "eee19b7ec3c1b174");
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        assert_eq!(
            rec.attributes[1]
                .value
                .as_ref()
                .and_then(|v| v.value.clone()),
            Some(Value::IntValue(9_007_199_254_740_993))
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Scenario: the job ledger is on and a log request arrives as OTLP/JSON, two records of
    /// job-1 (one keyed on the record, one through its resource) and one of job-2.
    /// Guarantees: the payload carries the per-job tally of what was converted, as for
    /// protobuf (the exporter's delivery count walks the same protobuf), and none without keys.
    #[test]
    fn json_requests_are_tallied_per_job() {
        let json = br#"{"resourceLogs":[
          {"resource":{"attributes":[{"key":"emerge.job_id","value":{"stringValue":"job-1"}}]},
           "scopeLogs":[{"logRecords":[{"body":{"stringValue":"a"}},
             {"body":{"stringValue":"b"},"attributes":[{"key":"emerge.job_id","value":{"stringValue":"job-1"}}]}]}]},
          {"scopeLogs":[{"logRecords":[{"attributes":[{"key":"emerge.job_id","value":{"stringValue":"job-2"}}]}]}]}]}"#;
        let keys: std::sync::Arc<[Box<str>]> = vec!["emerge.job_id".into()].into();
        let p = Payload::from_json_with_jobs(Signal::Logs, json, Some(&keys)).expect("valid");
        assert_eq!(p.items, 3);
        let mut jobs = p.jobs.expect("tallied").jobs;
        jobs.sort();
        assert_eq!(jobs, vec![(0, "job-1".into(), 2), (0, "job-2".into(), 1)]);
        let plain = Payload::from_json_with_jobs(Signal::Logs, json, None).expect("valid");
        assert!(plain.jobs.is_none());
    }

    /// Scenario: garbage bytes arrive as protobuf.
    /// Guarantees: a decode error, no panic.
    #[test]
    fn garbage_protobuf_is_an_error() {
        assert!(
            Payload::from_protobuf(Signal::Logs, Bytes::from_static(b"\xff\xff\xff\xff")).is_err()
        );
    }
}
