//! Fuzzes the whole OTLP/HTTP receiver in process: routing, content negotiation, gzip, body
//! limits, admission, decoding and queueing, through the same axum router the server runs.
//!
//! Input: a control byte, then the body. Control bits 0..2 pick the path (`/v1/logs`,
//! `/v1/traces`, `/v1/metrics`), bits 2..4 the content type (protobuf, JSON, protobuf with
//! parameters, garbage), bits 4..6 the content encoding (none, gzip of the body, the raw body
//! labelled gzip, an unknown encoding); bit 6 sends a `Content-Length` header.
//!
//! The receiver feeds one pipeline per signal, each with an in-memory queue smaller than the
//! body limit. Invariants: the answer is always one of 200, 400, 413, 415, 503 (never a 500);
//! a 200 leaves exactly one entry in the signal's queue, holding the client's protobuf bytes
//! untouched or the protobuf form of its JSON; any other answer queues nothing; no request
//! reaches another signal's queue.
#![no_main]

use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use otelspool::pipeline::{Decoded, ExporterQueue, Pipeline, Router, Signal};
use otelspool::processors::ProcessorChain;
use otelspool::receivers::otlp::{
    BodyPolicy, HttpSettings, InFlightBudget, ReceiverContext, http_router,
};
use otelspool::telemetry::Metrics;
use otelspool_queue::{BatchLimits, Queue, QueueOptions};
use tokio::runtime::Runtime;
use tower::ServiceExt;

/// `max_request_body_size`: below the fuzzer's input length (`-max_len=8192`) so 413 is
/// reachable, raw and inflated.
const BODY_LIMIT: usize = 4096;
/// Payload bytes an exporter queue holds: below the body limit so a full queue (503) is too.
const QUEUE_BYTES: u64 = 3072;

struct Harness {
    rt: Runtime,
    app: axum::Router,
    queues: Vec<(Signal, Queue)>,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let mut router = Router::default();
        let mut queues = Vec::new();
        for signal in Signal::ALL {
            let mut opts = QueueOptions::new(format!("fuzz_{signal}"), None);
            opts.max_bytes = QUEUE_BYTES;
            let (queue, _) = Queue::open(opts).expect("in-memory queue");
            queues.push((signal, queue.clone()));
            let pipeline = Pipeline {
                id: signal.as_str().to_string(),
                processors: ProcessorChain::default(),
                exporters: vec![ExporterQueue {
                    exporter: "otlp".to_string(),
                    signal,
                    queue,
                    ledger: None,
                }],
                metrics: metrics.clone(),
            };
            router.add(signal, Arc::new(pipeline));
        }
        let ctx = Arc::new(ReceiverContext {
            id: "otlp".to_string(),
            router,
            metrics,
            in_flight: InFlightBudget::new(64 << 20),
        });
        let settings = HttpSettings {
            max_request_body_size: BODY_LIMIT,
            body: BodyPolicy::default(),
            tls: None,
            auth: None,
        };
        Harness {
            rt,
            app: http_router(ctx, settings),
            queues,
        }
    })
}

/// Takes and acknowledges whatever `q` holds right now.
async fn take_all(q: &Queue) -> Vec<Bytes> {
    let limits = BatchLimits {
        min_items: 0,
        linger: Duration::ZERO,
        max_items: 0,
        max_bytes: u64::MAX,
    };
    let mut out = Vec::new();
    while q.stats().entries > 0 {
        let batch = tokio::time::timeout(Duration::from_secs(10), q.next_batch(limits))
            .await
            .expect("queue reports entries but hands none out")
            .expect("queue closed");
        let ids: Vec<u64> = batch.iter().map(|e| e.id).collect();
        q.ack(&ids);
        out.extend(batch.into_iter().map(|e| e.payload));
    }
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let h = harness();
    let signal = Signal::ALL[usize::from(control & 3) % Signal::ALL.len()];
    let json = (control >> 2) & 3 == 1;
    let content_type = match (control >> 2) & 3 {
        0 => "application/x-protobuf",
        1 => "application/json",
        2 => "application/protobuf; charset=binary",
        _ => "text/plain",
    };
    let (encoding, wire, labelled_gzip) = match (control >> 4) & 3 {
        0 => (None, Bytes::copy_from_slice(body), false),
        1 => (Some("gzip"), Bytes::from(gzip(body)), false),
        2 => (Some("gzip"), Bytes::copy_from_slice(body), true),
        _ => (Some("br"), Bytes::copy_from_slice(body), false),
    };
    let mut req = Request::post(signal.http_path()).header(header::CONTENT_TYPE, content_type);
    if let Some(e) = encoding {
        req = req.header(header::CONTENT_ENCODING, e);
    }
    if control & 0x40 != 0 {
        req = req.header(header::CONTENT_LENGTH, wire.len());
    }
    let req = req.body(Full::new(wire)).expect("request");
    let queue = h
        .queues
        .iter()
        .find(|(s, _)| *s == signal)
        .map(|(_, q)| q.clone())
        .expect("a queue per signal");

    h.rt.block_on(async {
        let resp = h
            .app
            .clone()
            .oneshot(req)
            .await
            .expect("axum routers are infallible");
        let status = resp.status();
        let answer = resp
            .into_body()
            .collect()
            .await
            .expect("response body")
            .to_bytes();
        let queued = take_all(&queue).await;
        for (other, q) in h.queues.iter().filter(|(s, _)| *s != signal) {
            assert_eq!(
                q.stats().entries,
                0,
                "a {signal} request reached the {other} queue"
            );
        }
        match status.as_u16() {
            200 => {
                assert_eq!(queued.len(), 1, "a 200 must queue exactly one entry");
                let plain = if labelled_gzip {
                    let mut out = Vec::new();
                    flate2::read::MultiGzDecoder::new(body)
                        .read_to_end(&mut out)
                        .expect("a body accepted as gzip inflates");
                    Bytes::from(out)
                } else {
                    Bytes::copy_from_slice(body)
                };
                let expected = if json {
                    Decoded::from_json(signal, &plain)
                        .expect("accepted JSON decodes")
                        .encode()
                } else {
                    plain
                };
                assert_eq!(
                    queued[0], expected,
                    "the queue holds other bytes than were sent"
                );
            }
            400 | 413 | 415 | 503 => assert!(
                queued.is_empty(),
                "answered {status} but queued {} entries; answer {answer:?}",
                queued.len()
            ),
            _ => panic!("unexpected status {status}; answer {answer:?}"),
        }
    });
});
