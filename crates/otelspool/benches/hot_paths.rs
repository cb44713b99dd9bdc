//! Criterion micro-benchmarks of otelspool's per-request hot paths.
//!
//! `cargo bench -p otelspool --bench hot_paths` (add `-- --quick` for a faster, rougher run).
//!
//! - `decode_count`: validate + count of a realistic request by a full prost decode
//!   (`Decoded::from_protobuf`, `check_ids`, `items`: what the receivers did before the wire
//!   walker): 100 ComfyUI-like log records of ~300 bytes with `emerge.job_id` /
//!   `emerge.workflow_id` attributes, as `otelspool-loadgen` builds them. Throughput in log
//!   records.
//! - `walk_count`: the same request through `Payload::from_protobuf`, i.e. the wire walker
//!   (`pipeline::wire::walk` with `CountOnly`), and through the walker with a visitor looking
//!   up both job keys per record (what a per-job ledger needs).
//! - `receive_cpu`: the CPU work of one received request by size (10 to 10,000 records):
//!   the walk of plain protobuf, gzip inflation + walk, OTLP/JSON conversion; and `hop`, the
//!   round trip of a `spawn_blocking` from a 2-worker runtime against an inline call: the
//!   figures behind the receivers' offload thresholds (receivers/otlp/offload.rs).
//! - `json_to_protobuf`: the OTLP/HTTP JSON path, `Decoded::from_json` + `into_payload`.
//! - `batch_merge`: what `delivery::batch` does when it reads a batch:
//!   `pipeline::merge_requests`, concatenating the protobuf bytes of N queued requests.
//! - `queue_append`: `otelspool_queue::Queue::append` of the 100-record request, fsync on and
//!   off, 1 and 32 concurrent appenders, with one consumer draining and acknowledging. The
//!   queue crate's own non-criterion bench (`cargo bench -p otelspool-queue --bench append`,
//!   crates/queue/benches/append.rs) sweeps writer counts and payload sizes with latency
//!   percentiles; this one only places the queue next to the other hot paths.
//! - `compression_1mib`: what the exporters run on each merged 1 MiB batch: gzip at level 6
//!   (otelcol's default) and 1 (otelspool's), zstd at 1 and 3, through
//!   `exporters::Compression`; prints each ratio.

// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

use std::hint::black_box;
use std::io::Write as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use otelspool::exporters::Compression;
use otelspool::pipeline::wire::{ItemVisitor, walk};
use otelspool::pipeline::{Decoded, Payload, Signal, merge_requests};
use otelspool_queue::{BatchLimits, Queue, QueueOptions};
use otelspool_testkit::loadgen::records::JobRecords;
use prost::Message;

const RECORDS: usize = 100;
const RECORD_SIZE: usize = 300;

/// A request of `count` records of job `job`, built as `otelspool-loadgen` builds them.
fn request(job: u32, count: usize) -> ExportLogsServiceRequest {
    JobRecords::new("bench", job, RECORD_SIZE)
        .next_batch(count)
        .0
}

fn proto_bytes(job: u32, count: usize) -> Bytes {
    Bytes::from(request(job, count).encode_to_vec())
}

fn decode_count(c: &mut Criterion) {
    let body = proto_bytes(7, RECORDS);
    let mut g = c.benchmark_group("decode_count");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.bench_function(
        format!("logs_{RECORDS}x{RECORD_SIZE}B_{}B", body.len()),
        |b| {
            b.iter(|| {
                let d = Decoded::from_protobuf(Signal::Logs, black_box(&body)).expect("valid");
                d.check_ids().expect("valid ids");
                assert_eq!(d.items(), RECORDS as u64);
                d
            })
        },
    );
    g.finish();
}

/// Counts records per distinct job id, as a ledger would (no allocation per record).
struct JobCounter {
    keys: Vec<Box<str>>,
    with_job: u64,
}

impl ItemVisitor for JobCounter {
    fn keys(&self) -> &[Box<str>] {
        &self.keys
    }

    fn item(&mut self, values: &[Option<&str>]) {
        if values[0].is_some() {
            self.with_job += 1;
        }
    }

    fn restart(&mut self) {
        self.with_job = 0;
    }
}

fn walk_count(c: &mut Criterion) {
    let body = proto_bytes(7, RECORDS);
    let mut g = c.benchmark_group("walk_count");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.bench_function(
        format!("logs_{RECORDS}x{RECORD_SIZE}B_{}B", body.len()),
        |b| {
            b.iter(|| {
                let p = Payload::from_protobuf(Signal::Logs, black_box(body.clone()))
                    .expect("valid request");
                assert_eq!(p.items, RECORDS as u64);
                p
            })
        },
    );
    let mut counter = JobCounter {
        keys: vec!["emerge.job_id".into(), "emerge.workflow_id".into()],
        with_job: 0,
    };
    g.bench_function(
        format!("logs_{RECORDS}x{RECORD_SIZE}B_{}B_job_keys", body.len()),
        |b| {
            b.iter(|| {
                counter.with_job = 0;
                let n = walk(Signal::Logs, black_box(&body), &mut counter).expect("valid");
                assert_eq!(counter.with_job, n);
                n
            })
        },
    );
    g.finish();
}

fn receive_cpu(c: &mut Criterion) {
    let mut g = c.benchmark_group("receive_cpu");
    for n in [10usize, 100, 1000, 10_000] {
        let request = request(3, n);
        let body = Bytes::from(request.encode_to_vec());
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&body).expect("gzip");
        let gz = enc.finish().expect("gzip");
        let json = serde_json::to_vec(&request).expect("json");
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("walk/{n}_records_{}B", body.len()), |b| {
            b.iter(|| Payload::from_protobuf(Signal::Logs, black_box(body.clone())).expect("ok"))
        });
        g.bench_function(format!("gunzip_walk/{n}_records_{}B_gz", gz.len()), |b| {
            b.iter(|| {
                let mut out = Vec::new();
                let mut dec = flate2::bufread::MultiGzDecoder::new(black_box(&gz[..]));
                std::io::Read::read_to_end(&mut dec, &mut out).expect("gunzip");
                Payload::from_protobuf(Signal::Logs, Bytes::from(out)).expect("ok")
            })
        });
        g.bench_function(format!("json/{n}_records_{}B", json.len()), |b| {
            b.iter(|| Payload::from_json(Signal::Logs, black_box(&json)).expect("ok"))
        });
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    g.throughput(Throughput::Elements(1));
    g.bench_function("hop/inline", |b| {
        b.iter(|| rt.block_on(async { black_box(1u8) }))
    });
    g.bench_function("hop/spawn_blocking", |b| {
        b.iter(|| rt.block_on(async { tokio::task::spawn_blocking(|| black_box(1u8)).await }))
    });
    g.finish();
}

fn json_to_protobuf(c: &mut Criterion) {
    let json = serde_json::to_vec(&request(7, RECORDS)).expect("json");
    // The JSON must round-trip through otelspool's own OTLP/JSON reader.
    let check = Decoded::from_json(Signal::Logs, &json).expect("valid OTLP/JSON");
    assert_eq!(check.items(), RECORDS as u64);
    let mut g = c.benchmark_group("json_to_protobuf");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.bench_function(format!("logs_{RECORDS}_records_{}B", json.len()), |b| {
        b.iter(|| {
            Decoded::from_json(Signal::Logs, black_box(&json))
                .expect("valid")
                .into_payload()
        })
    });
    g.finish();
}

fn concat(entries: &[Bytes]) -> Bytes {
    merge_requests(entries.iter())
}

fn batch_merge(c: &mut Criterion) {
    // Requests of 20 records each, as the plan's normal load sends them.
    let mut g = c.benchmark_group("batch_merge");
    for n in [10usize, 50, 250] {
        let entries: Vec<Bytes> = (0..n as u32).map(|j| proto_bytes(j, 20)).collect();
        let total: usize = entries.iter().map(Bytes::len).sum();
        g.throughput(Throughput::Bytes(total as u64));
        g.bench_with_input(BenchmarkId::new("requests_of_20", n), &entries, |b, e| {
            b.iter(|| concat(black_box(e)))
        });
    }
    // The merged bytes decode as one request holding every record.
    let entries: Vec<Bytes> = (0..10).map(|j| proto_bytes(j, 20)).collect();
    let merged = Payload::from_protobuf(Signal::Logs, concat(&entries)).expect("merged");
    assert_eq!(merged.items, 200);
    g.finish();
}

fn queue_append(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let body = proto_bytes(7, RECORDS);
    let mut g = c.benchmark_group("queue_append");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(2));
    g.warm_up_time(Duration::from_millis(500));
    g.throughput(Throughput::Elements(1));
    for fsync in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut o = QueueOptions::new("bench", Some(dir.path().to_path_buf()));
        o.fsync = fsync;
        o.max_bytes = 4 << 30;
        let (q, _) = rt.block_on(async { Queue::open(o) }).expect("open queue");
        let drain = {
            let q = q.clone();
            rt.spawn(async move {
                let limits = BatchLimits {
                    min_items: 1,
                    linger: Duration::ZERO,
                    max_items: 0,
                    max_bytes: 8 << 20,
                };
                while let Some(b) = q.next_batch(limits).await {
                    q.ack(&b.iter().map(|e| e.id).collect::<Vec<_>>());
                }
            })
        };
        for appenders in [1usize, 32] {
            let id = format!("fsync_{fsync}/appenders_{appenders}/{}B", body.len());
            g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let per = (iters as usize).div_ceil(appenders);
                        let started = Instant::now();
                        let tasks: Vec<_> = (0..appenders)
                            .map(|_| {
                                let (q, body) = (q.clone(), body.clone());
                                tokio::spawn(async move {
                                    for _ in 0..per {
                                        q.append(RECORDS as u32, body.clone())
                                            .await
                                            .expect("append");
                                    }
                                })
                            })
                            .collect();
                        for t in tasks {
                            t.await.expect("join");
                        }
                        // Time per append, as if `iters` appends were made.
                        started
                            .elapsed()
                            .mul_f64(iters as f64 / (per * appenders) as f64)
                    })
                })
            });
        }
        q.close();
        rt.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
        });
        q.shutdown();
    }
    g.finish();
}

fn compression_1mib(c: &mut Criterion) {
    // Distinct requests (jobs and sequence numbers differ), as a real batch holds.
    let mut jobs: Vec<JobRecords> = (0..50)
        .map(|j| JobRecords::new("bench", j, RECORD_SIZE))
        .collect();
    let mut entries = Vec::new();
    let mut len = 0;
    for j in 0usize.. {
        if len >= 1 << 20 {
            break;
        }
        let e = Bytes::from(jobs[j % 50].next_batch(20).0.encode_to_vec());
        len += e.len();
        entries.push(e);
    }
    let batch = concat(&entries);
    // What the exporters run on every merged batch, at the levels an operator can choose
    // (`compression` + `compression_params.level`). The ratio is printed once per level.
    let mut g = c.benchmark_group("compression_1mib");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(batch.len() as u64));
    for (name, compression) in [
        ("gzip_level_6_otelcol_default", Compression::gzip(6)),
        ("gzip_level_1_default", Compression::gzip(1)),
        ("zstd_level_1", Compression::zstd(1)),
        ("zstd_level_3", Compression::zstd(3)),
    ] {
        let size = compression.compress(&batch).expect("compress").len();
        eprintln!(
            "compression_1mib/{name}: {} -> {size} bytes, ratio {:.1}",
            batch.len(),
            batch.len() as f64 / size as f64
        );
        g.bench_function(name, |b| {
            b.iter(|| compression.compress(black_box(&batch)).expect("compress"))
        });
    }
    if let Some(path) = std::env::var_os("OTELSPOOL_BENCH_DUMP_BATCH") {
        // For comparing other deflate implementations on the same bytes (bench/gzip-backends).
        std::fs::write(path, &batch).expect("dump batch");
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = decode_count, walk_count, receive_cpu, json_to_protobuf, batch_merge, queue_append, compression_1mib
}
criterion_main!(benches);
