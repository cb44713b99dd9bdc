//! Queue append throughput and latency with group commit, printed as figures.
//!
//! `cargo bench -p otelspool-queue --bench append [-- QUICK]`: for several writer counts and
//! payload sizes, with fsync on and off, N tasks append as fast as they can for a fixed time
//! while one consumer drains and acknowledges. Prints appends/s, MB/s, p50/p99 append latency
//! and fsyncs saved by grouping.

use std::time::{Duration, Instant};

use bytes::Bytes;
use otelspool_queue::{BatchLimits, Queue, QueueOptions};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

async fn run(writers: usize, payload: usize, fsync: bool, secs: f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = QueueOptions::new("bench", Some(dir.path().to_path_buf()));
    o.fsync = fsync;
    o.max_bytes = 4 << 30;
    let (q, _) = Queue::open(o).expect("open");
    let stop = Instant::now() + Duration::from_secs_f64(secs);
    let drain = {
        let q = q.clone();
        tokio::spawn(async move {
            let limits = BatchLimits {
                min_items: 1,
                linger: Duration::ZERO,
                max_items: 0,
                max_bytes: 8 << 20,
            };
            while let Ok(Some(b)) =
                tokio::time::timeout(Duration::from_millis(500), q.next_batch(limits)).await
            {
                q.ack(&b.iter().map(|e| e.id).collect::<Vec<_>>());
            }
        })
    };
    let body = Bytes::from(vec![b'x'; payload]);
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (q, body) = (q.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < stop {
                let t = Instant::now();
                q.append(10, body.clone()).await.expect("append");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let started = Instant::now();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("join"));
    }
    let took = started.elapsed().as_secs_f64();
    let _ = drain.await;
    lat.sort();
    let n = lat.len() as f64;
    println!(
        "writers={writers:>3} payload={payload:>6}B fsync={fsync:<5} appends/s={:>9.0} MB/s={:>7.1} p50={:>8.2?} p99={:>8.2?}",
        n / took,
        n * payload as f64 / took / 1e6,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
    q.shutdown();
}

fn main() {
    let quick = std::env::args().any(|a| a == "QUICK");
    let secs = if quick { 0.5 } else { 2.0 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "queue append benchmark ({} s per row, {} cores)",
        secs,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for fsync in [true, false] {
        for (writers, payload) in [
            (1, 4096),
            (16, 4096),
            (64, 4096),
            (64, 32 * 1024),
            (256, 1024),
        ] {
            rt.block_on(run(writers, payload, fsync, secs));
        }
    }
}
