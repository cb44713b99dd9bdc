//! What the job ledger costs from receive to delivery.
//!
//! `cargo bench -p otelspool --bench job_ledger` (add `-- --quick` for a rougher run).
//!
//! - criterion group `receive_walk`: validating and counting a realistic request (100
//!   ComfyUI-like log records of ~300 bytes with `emerge.job_id`, as `otelspool-loadgen`
//!   builds them), ledger off (`Payload::from_protobuf`) and on
//!   (`Payload::from_protobuf_with_jobs`, `JobLedger::queued` at the append, then
//!   `JobLedger::delivered` for the record), in records per second; and `delivery_walk`: the
//!   delivery of a record whose tally is not kept (walked again, as after a restart).
//! - then, printed: records per CPU-second (process CPU time from `getrusage`) with the
//!   ledger off and on over the same loop, and the allocations per request on both paths for
//!   requests of 10 and 1,000 records (a counting global allocator), from which the ledger's
//!   extra allocations per record follow: they must not grow with the records.

#![allow(missing_docs)]
// A counting global allocator and `getrusage` need `unsafe`; this bench is their only user.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group};
use otelspool::ledger::{JobLedger, LedgerSettings};
use otelspool::pipeline::{Payload, Signal};
use otelspool_queue::Entry;
use otelspool_testkit::loadgen::records::JobRecords;
use prost::Message;

/// Counts every allocation of the process.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RECORDS: usize = 100;
const RECORD_SIZE: usize = 300;

fn body(records: usize) -> Bytes {
    let (req, _) = JobRecords::new("bench", 7, RECORD_SIZE).next_batch(records);
    Bytes::from(req.encode_to_vec())
}

fn ledger() -> Arc<JobLedger> {
    let dir = std::env::temp_dir().join(format!("otelspool-ledger-bench-{}", std::process::id()));
    JobLedger::new(
        LedgerSettings {
            keys: vec!["emerge.job_id".into()],
            max_jobs: 10_000,
            retention: Duration::from_secs(3600),
            complete_after: Duration::from_secs(30),
            snapshot_interval: Duration::from_secs(1),
            dir,
        },
        vec![("otlp/logs".into(), Signal::Logs, None)],
    )
}

/// The receive path with the ledger off.
fn off(body: &Bytes) -> u64 {
    Payload::from_protobuf(Signal::Logs, body.clone())
        .expect("valid")
        .items
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The ledger's part of one record's life: the receive walk tallies jobs, the append reports
/// the tally, the delivery counts it.
fn on(body: &Bytes, ledger: &JobLedger) -> u64 {
    let mut p = Payload::from_protobuf_with_jobs(Signal::Logs, body.clone(), Some(ledger.keys()))
        .expect("valid");
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    if let Some(t) = p.jobs.take() {
        ledger.queued(0, id, t);
    }
    ledger.delivered(0, &[entry(id, &p.body)], 0);
    p.items
}

/// A delivery of a record the ledger holds no tally for: its bytes are walked again.
fn deliver_walking(body: &Bytes, ledger: &JobLedger) -> u64 {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    ledger.delivered(0, &[entry(id, body)], 0);
    RECORDS as u64
}

fn entry(id: u64, body: &Bytes) -> Entry {
    Entry {
        id,
        items: RECORDS as u32,
        appended_at: 0,
        payload: body.clone(),
    }
}

fn receive_walk(c: &mut Criterion) {
    let body = body(RECORDS);
    let l = ledger();
    let mut g = c.benchmark_group("receive_walk");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.bench_function("ledger_off", |b| b.iter(|| off(black_box(&body))));
    g.bench_function("ledger_on", |b| b.iter(|| on(black_box(&body), &l)));
    g.finish();
    let mut g = c.benchmark_group("delivery_walk");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.bench_function("tally_not_kept", |b| {
        b.iter(|| deliver_walking(black_box(&body), &l))
    });
    g.finish();
}

fn cpu_seconds() -> f64 {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct it is given, which lives until the call ends.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Records per CPU-second of `f` over `rounds` requests of `RECORDS` records.
fn per_cpu_second(rounds: usize, mut f: impl FnMut() -> u64) -> f64 {
    let start = cpu_seconds();
    let mut items = 0;
    for _ in 0..rounds {
        items += black_box(f());
    }
    items as f64 / (cpu_seconds() - start)
}

fn allocations(f: impl Fn() -> u64) -> u64 {
    f(); // warm: the ledger's job entry exists from now on.
    let before = ALLOCS.load(Ordering::Relaxed);
    black_box(f());
    ALLOCS.load(Ordering::Relaxed) - before
}

fn report() {
    let body100 = body(RECORDS);
    let l = ledger();
    let rounds = 20_000;
    // Interleaved, best of three each, so that machine noise hits both alike.
    let (mut best_off, mut best_on) = (0f64, 0f64);
    for _ in 0..3 {
        best_off = best_off.max(per_cpu_second(rounds, || off(&body100)));
        best_on = best_on.max(per_cpu_second(rounds, || on(&body100, &l)));
    }
    println!(
        "records per CPU-second (requests of {RECORDS} records, best of 3 x {rounds}): ledger off {best_off:.0}, on {best_on:.0}, on/off {:.3} ({:+.1} %)",
        best_on / best_off,
        (best_on / best_off - 1.0) * 100.0
    );
    for n in [10, 1000] {
        let b = body(n);
        let a_off = allocations(|| off(&b));
        let a_on = allocations(|| on(&b, &l));
        println!(
            "allocations per request of {n} records: ledger off {a_off}, on {a_on}, extra {}",
            a_on as i64 - a_off as i64
        );
    }
    let extra = |n: usize| {
        let b = body(n);
        allocations(|| on(&b, &l)) as i64 - allocations(|| off(&b)) as i64
    };
    let per_record = (extra(1000) - extra(10)) as f64 / 990.0;
    println!("ledger's extra allocations per record on the receive path: {per_record:.4}");
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = receive_walk
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    report();
}
