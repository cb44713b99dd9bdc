//! The job ledger's counts are exact per job across an outage and `kill -9`: 60 jobs send
//! concurrently while the backend is up, down, then up again, and the real binary is killed
//! with SIGKILL twice (once while it delivers, once during the outage) and restarted; at the
//! end every job's ledger says received == delivered, and that equals what the job sent and
//! the unique records the testkit backend recorded for it.

mod binary;
mod ledger_support;

use std::time::Duration;

use binary::Running;
use ledger_support::{
    Endpoints, backend_unique_per_job, config, job_ids, ledger_jobs, poll_until, send_round,
    start_backend,
};
use otelspool_testkit::backend::Mode;

const JOBS: usize = 60;
const RECORDS: usize = 7;

async fn start(config: &std::path::Path, e: Endpoints) -> Running {
    let mut r = Running::start(config, &[]);
    r.wait_healthy(e.health, Duration::from_secs(30)).await;
    r
}

/// Scenario: 60 jobs; round 0 with the backend up; round 1 while it is down; the backend
/// comes back and otelspool is killed with SIGKILL as soon as the backend has received part of
/// round 1; restart, round 2 (up); backend down, round 3, SIGKILL during the outage, restart,
/// backend up; wait until the ledger reports nothing queued.
/// Guarantees: per job, the ledger's received == delivered == records sent == unique records
/// the backend recorded for that job; nothing rejected or dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_match_the_backend_per_job_across_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = start_backend(dir.path(), Mode::Ok).await;
    let data = dir.path().join("data");
    let (yaml, e) = config(backend.addr, &data, "", "snapshot_interval: 300ms");
    let config_path = dir.path().join("otelspool.yaml");
    std::fs::write(&config_path, &yaml).expect("config");
    let jobs = job_ids("job", JOBS);

    let spool = start(&config_path, e).await;
    send_round(e.grpc, &jobs, 0, RECORDS).await;
    backend.backend.set_mode(Mode::Unavailable);
    send_round(e.grpc, &jobs, 1, RECORDS).await;
    let before = backend.backend.stats().log_records;
    backend.backend.set_mode(Mode::Ok);
    poll_until("the backend to receive part of round 1", || async {
        (backend.backend.stats().log_records > before).then_some(())
    })
    .await;
    drop(spool); // SIGKILL while delivering.

    let spool = start(&config_path, e).await;
    send_round(e.grpc, &jobs, 2, RECORDS).await;
    backend.backend.set_mode(Mode::Unavailable);
    send_round(e.grpc, &jobs, 3, RECORDS).await;
    drop(spool); // SIGKILL during the outage.

    let spool = start(&config_path, e).await;
    backend.backend.set_mode(Mode::Ok);
    let sent = (4 * RECORDS) as u64;
    let ledger = poll_until("every job to be delivered", || async {
        let l = ledger_jobs(e.health).await?;
        let done = l.len() == JOBS
            && l.values()
                .all(|j| j["queued"] == 0 && j["received"].as_u64() == Some(sent));
        done.then_some(l)
    })
    .await;
    let backend_counts = backend_unique_per_job(&backend.record);
    for job in &jobs {
        let j = &ledger[job];
        assert_eq!(j["received"].as_u64(), Some(sent), "{job}: {j}");
        assert_eq!(j["delivered"].as_u64(), Some(sent), "{job}: {j}");
        assert_eq!(j["rejected"].as_u64(), Some(0), "{job}: {j}");
        assert_eq!(j["dropped"]["drop_oldest"].as_u64(), Some(0), "{job}: {j}");
        assert_eq!(
            backend_counts.get(job).copied(),
            Some(sent),
            "{job}: backend"
        );
    }
    let stats = backend.backend.stats();
    println!(
        "backend: {} log records, {} unique, {} duplicates (redelivered after kill -9)",
        stats.log_records, stats.unique_log_records, stats.duplicate_log_records
    );
    drop(spool);
}
