//! The job ledger stays within `max_jobs` however many jobs come: 100 times more jobs than
//! the limit are sent; the ledger keeps at most the limit, counts every eviction, and its
//! snapshot file holds only the kept jobs. Sizes are printed, not asserted on.

mod binary;
mod ledger_support;

use std::time::Duration;

use binary::Running;
use ledger_support::{config, get, job_ids, poll_until, send_round, start_backend};
use otelspool_testkit::backend::Mode;

const LIMIT: usize = 20;

/// Scenario: `max_jobs: 20`, `complete_after: 0s`; 2,000 jobs send one request each, in
/// rounds of 100.
/// Guarantees: once everything is delivered, the ledger keeps at most 20 jobs, has counted
/// at least 1,980 evictions and no more than one per job (late deliveries do not bring an
/// evicted job back), and its snapshot file lists at most 20 jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_times_more_jobs_than_the_limit_stay_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = start_backend(dir.path(), Mode::Ok).await;
    let data = dir.path().join("data");
    let (yaml, e) = config(
        backend.addr,
        &data,
        "",
        &format!("max_jobs: {LIMIT}, complete_after: 0s, snapshot_interval: 100ms"),
    );
    let config_path = dir.path().join("otelspool.yaml");
    std::fs::write(&config_path, &yaml).expect("config");
    let mut spool = Running::start(&config_path, &[]);
    spool.wait_healthy(e.health, Duration::from_secs(30)).await;

    let jobs = job_ids("many", 100 * LIMIT);
    for chunk in jobs.chunks(100) {
        send_round(e.grpc, chunk, 0, 2).await;
    }
    let body = poll_until("deliveries and evictions to settle", || async {
        let (_, b) = get(e.health, "/v1/jobs").await?;
        let delivered = backend.backend.stats().log_records >= (2 * jobs.len()) as u64;
        let settled = b["jobs_evicted"].as_u64()? >= (jobs.len() - LIMIT) as u64;
        (delivered && settled).then_some(b)
    })
    .await;
    let kept = body["jobs_kept"].as_u64().expect("jobs_kept");
    assert!(kept <= LIMIT as u64, "{body}");
    let evicted = body["jobs_evicted"].as_u64().expect("jobs_evicted");
    assert!(
        evicted <= jobs.len() as u64,
        "a job is evicted once: {body}"
    );
    assert!(body["jobs"].as_array().expect("jobs").len() <= LIMIT);
    let snapshot = data.join("job_ledger").join("snapshot.json");
    let text = std::fs::read_to_string(&snapshot).expect("snapshot");
    let snap: serde_json::Value = serde_json::from_str(&text).expect("snapshot JSON");
    let in_file = snap["jobs"].as_array().expect("jobs").len();
    assert!(in_file <= LIMIT, "{in_file} jobs in the snapshot");
    let rss = std::fs::read_to_string(format!("/proc/{}/status", spool_pid(&spool)))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS"))
                .map(str::to_owned)
        })
        .unwrap_or_default();
    println!(
        "{} jobs sent, limit {LIMIT}: {kept} kept, {} evicted; snapshot {} bytes ({in_file} jobs); otelspool {rss}",
        jobs.len(),
        body["jobs_evicted"],
        text.len()
    );
    let _ = spool.stop();
}

fn spool_pid(r: &Running) -> u32 {
    r.pid()
}
