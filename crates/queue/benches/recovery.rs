//! Start-up cost of a queue with a large backlog: time to open (scan and index) a queue
//! holding N MiB of unacknowledged records, printed as figures. Run as root, it drops the page
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
            // Cold start: flush and drop the page cache when allowed (root), like a reboot.
            let cold = std::process::Command::new("sh")
                .args(["-c", "sync && echo 3 > /proc/sys/vm/drop_caches"])
                .status()
                .is_ok_and(|s| s.success());
            let started = Instant::now();
            let (q, report) = Queue::open(o).expect("reopen");
            let took = started.elapsed();
            println!(
                "backlog={mib:>4} MiB payload={payload:>6}B entries={:>7} open={:>8.1?} ({:.0} MB/s, page cache {})",
                report.entries,
                took,
                (mib << 20) as f64 / took.as_secs_f64() / 1e6,
                if cold { "dropped" } else { "warm" }
            );
            q.shutdown();
        }
    }
}
