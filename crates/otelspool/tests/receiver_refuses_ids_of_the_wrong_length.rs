//! Trace ids that are not 16 bytes and span ids that are not 8 are refused at the receiver,
//! before the acknowledgement, as the OpenTelemetry Collector refuses them (pdata's unmarshal
//! fails: `InvalidArgument` / 400), over gRPC, HTTP protobuf and HTTP JSON, for every signal.
//! Empty ids stay valid.

mod common;

use bytes::Bytes;
use common::{Options, Receiver, grpc_call, http_post};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric::Data,
};
use opentelemetry_proto::tonic::trace::v1::span::Link;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otelspool::pipeline::{Decoded, Signal};

const TRACE: [u8; 16] = [7; 16];
const SPAN: [u8; 8] = [9; 8];

fn log(trace_id: &[u8], span_id: &[u8]) -> Decoded {
    Decoded::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    LogRecord::default(),
                    LogRecord {
                        trace_id: trace_id.to_vec(),
                        span_id: span_id.to_vec(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

fn span(edit: impl FnOnce(&mut Span)) -> Decoded {
    let mut s = Span {
        trace_id: TRACE.to_vec(),
        span_id: SPAN.to_vec(),
        parent_span_id: SPAN.to_vec(),
        name: "step".into(),
        links: vec![Link {
            trace_id: TRACE.to_vec(),
            span_id: SPAN.to_vec(),
            ..Default::default()
        }],
        ..Default::default()
    };
    edit(&mut s);
    Decoded::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![s],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// A metric of each kind with exemplars; `bad` picks the kind whose exemplar gets `trace_id`
/// and `span_id` (the others keep valid ids).
fn metrics(bad: usize, trace_id: &[u8], span_id: &[u8]) -> Decoded {
    let ex = |kind: usize| {
        let (t, s) = if kind == bad {
            (trace_id.to_vec(), span_id.to_vec())
        } else {
            (TRACE.to_vec(), SPAN.to_vec())
        };
        vec![Exemplar {
            trace_id: t,
            span_id: s,
            ..Default::default()
        }]
    };
    let number = |kind| NumberDataPoint {
        exemplars: ex(kind),
        ..Default::default()
    };
    let data = vec![
        Data::Gauge(Gauge {
            data_points: vec![number(0)],
        }),
        Data::Sum(Sum {
            data_points: vec![number(1)],
            ..Default::default()
        }),
        Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                exemplars: ex(2),
                ..Default::default()
            }],
            ..Default::default()
        }),
        Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint {
                exemplars: ex(3),
                ..Default::default()
            }],
            ..Default::default()
        }),
    ];
    Decoded::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: data
                    .into_iter()
                    .map(|d| Metric {
                        name: "m".into(),
                        data: Some(d),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// Requests with one id of a wrong length each, named by where the id is.
fn bad_requests() -> Vec<(&'static str, Decoded)> {
    vec![
        ("log trace_id of 15 bytes", log(&[1; 15], &SPAN)),
        ("log span_id of 16 bytes", log(&TRACE, &[1; 16])),
        (
            "span trace_id of 8 bytes",
            span(|s| s.trace_id = vec![1; 8]),
        ),
        ("span span_id of 7 bytes", span(|s| s.span_id = vec![1; 7])),
        (
            "span parent_span_id of 16 bytes",
            span(|s| s.parent_span_id = vec![1; 16]),
        ),
        (
            "link trace_id of 17 bytes",
            span(|s| s.links[0].trace_id = vec![1; 17]),
        ),
        (
            "link span_id of 1 byte",
            span(|s| s.links[0].span_id = vec![1]),
        ),
        (
            "gauge exemplar trace_id of 8 bytes",
            metrics(0, &SPAN, &SPAN),
        ),
        (
            "sum exemplar span_id of 16 bytes",
            metrics(1, &TRACE, &TRACE),
        ),
        (
            "histogram exemplar trace_id of 1 byte",
            metrics(2, &[1], &SPAN),
        ),
        (
            "exponential histogram exemplar span_id of 9 bytes",
            metrics(3, &TRACE, &[1; 9]),
        ),
    ]
}

/// Requests whose ids are all of the right length or empty.
fn good_requests() -> Vec<(&'static str, Decoded)> {
    vec![
        ("log with ids", log(&TRACE, &SPAN)),
        ("log without ids", log(&[], &[])),
        ("span with ids", span(|_| {})),
        (
            "root span without links",
            span(|s| {
                s.parent_span_id.clear();
                s.links.clear();
            }),
        ),
        ("exemplars with ids", metrics(9, &[], &[])),
        ("exemplars without ids", metrics(0, &[], &[])),
    ]
}

fn json(d: &Decoded) -> Vec<u8> {
    match d {
        Decoded::Logs(r) => serde_json::to_vec(r),
        Decoded::Traces(r) => serde_json::to_vec(r),
        Decoded::Metrics(r) => serde_json::to_vec(r),
    }
    .expect("json")
}

fn total(r: &Receiver) -> u64 {
    Signal::ALL.into_iter().map(|s| r.queued(s)).sum()
}

/// Scenario: for each signal, requests with a trace id or span id of a wrong length (in log
/// records, spans, parent span ids, links, and the exemplars of every metric kind), sent over
/// gRPC, HTTP protobuf and HTTP JSON.
/// Guarantees: every one is refused as malformed (`InvalidArgument`, 400 for both HTTP
/// encodings) and nothing is queued.
#[tokio::test]
async fn ids_of_the_wrong_length_are_refused_on_every_transport() {
    let r = Receiver::start(Options::default()).await;
    let channel = r.channel();
    for (case, req) in bad_requests() {
        let signal = req.signal();
        let err = grpc_call(&channel, signal, req.encode())
            .await
            .expect_err(case);
        assert_eq!(
            err.code(),
            tonic::Code::InvalidArgument,
            "gRPC, {case}: {err:?}"
        );
        let path = signal.http_path();
        let (status, _) =
            http_post(r.http, path, "application/x-protobuf", "", &req.encode()).await;
        assert_eq!(status, 400, "HTTP protobuf, {case}");
        let (status, _) = http_post(r.http, path, "application/json", "", &json(&req)).await;
        assert_eq!(status, 400, "HTTP JSON, {case}");
        assert_eq!(total(&r), 0, "{case} was queued");
    }
}

/// Scenario: for each signal, requests whose ids have the right length or are empty, over
/// gRPC, HTTP protobuf and HTTP JSON.
/// Guarantees: all are acknowledged and queued (three entries per request).
#[tokio::test]
async fn ids_of_the_right_length_or_empty_are_accepted() {
    let r = Receiver::start(Options::default()).await;
    let channel = r.channel();
    let good = good_requests();
    for (case, req) in &good {
        let signal = req.signal();
        grpc_call(&channel, signal, req.encode())
            .await
            .unwrap_or_else(|e| panic!("gRPC, {case}: {e:?}"));
        let path = signal.http_path();
        let body: Bytes = req.encode();
        let (status, _) = http_post(r.http, path, "application/x-protobuf", "", &body).await;
        assert_eq!(status, 200, "HTTP protobuf, {case}");
        let (status, text) = http_post(r.http, path, "application/json", "", &json(req)).await;
        assert_eq!(
            status,
            200,
            "HTTP JSON, {case}: {}",
            String::from_utf8_lossy(&text)
        );
    }
    assert_eq!(total(&r), 3 * good.len() as u64);
}
