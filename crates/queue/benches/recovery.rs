//! Start-up cost of a queue with a large backlog: time to open (scan and index) a queue
//! holding N MiB of unacknowledged records with `Queue::open`, and with `Queue::open_background`
//! the time until it returns, until a first append is acknowledged (fsync on) and until the
//! background scan is done, printed as figures. Run as root, it drops the page
//! cache before each open, so the figure is a cold start's.
//!
//! `cargo bench -p otelspool-queue --bench recovery [-- QUICK]`

use std::time::Instant;

use bytes::Bytes;
use otelspool_queue::{Queue, QueueOptions};

fn main() {
    let quick = std::env::args().any(|a| a == "QUICK");
    let sizes: &[u64] = if quick { &[64] } else { &[64, 512] };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for &mib in sizes {
        for payload in [4096usize, 65536] {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut o = QueueOptions::new("bench", Some(dir.path().to_path_buf()));
            o.fsync = false;
            o.max_bytes = (mib + 16) << 20;
            let (q, _) = Queue::open(o.clone()).expect("open");
            let body = Bytes::from(vec![b'x'; payload]);
            let n = (mib << 20) / payload as u64;
            rt.block_on(async {
                let mut tasks = Vec::new();
                for _ in 0..64 {
                    let (q, body) = (q.clone(), body.clone());
                    tasks.push(tokio::spawn(async move {
                        for _ in 0..n / 64 {
                            q.append(10, body.clone()).await.expect("append");
                        }
                    }));
                }
                for t in tasks {
                    t.await.expect("join");
                }
            });
            q.shutdown();
            drop(q);
            let cold = drop_page_cache();
            let started = Instant::now();
            let (q, report) = Queue::open(o.clone()).expect("reopen");
            let took = started.elapsed();
            println!(
                "backlog={mib:>4} MiB payload={payload:>6}B entries={:>7} open={:>8.1?} ({:.0} MB/s, page cache {})",
                report.entries,
                took,
                (mib << 20) as f64 / took.as_secs_f64() / 1e6,
                if cold { "dropped" } else { "warm" }
            );
            q.shutdown();
            drop(q);
            // The same backlog opened in the background: until open returns, until an append
            // is acknowledged, and until the scan is done.
            let mut o = o.clone();
            o.fsync = true;
            let cold = drop_page_cache();
            let started = Instant::now();
            let q = Queue::open_background(o).expect("reopen in the background");
            let opened = started.elapsed();
            let acked = rt.block_on(async {
                q.append(1, Bytes::from_static(b"first"))
                    .await
                    .expect("append");
                started.elapsed()
            });
            let report = rt.block_on(q.recovered());
            println!(
                "backlog={mib:>4} MiB payload={payload:>6}B entries={:>7} open_background={opened:>8.1?} first_ack(fsync)={acked:>8.1?} scan_done={:>8.1?} (page cache {})",
                report.entries,
                started.elapsed(),
                if cold { "dropped" } else { "warm" }
            );
            q.shutdown();
        }
    }
}

/// Flushes and drops the page cache when allowed (root), like a reboot; says whether it worked.
fn drop_page_cache() -> bool {
    std::process::Command::new("sh")
        .args(["-c", "sync && echo 3 > /proc/sys/vm/drop_caches"])
        .status()
        .is_ok_and(|s| s.success())
}
