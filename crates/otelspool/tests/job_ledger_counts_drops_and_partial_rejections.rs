//! The job ledger counts what never reached the backend: with `when_full: drop_oldest` and a
//! full queue, each job's dropped count is exactly what the backend is missing for it; with a
//! backend that rejects part of each request (`partial_success`), each job's rejected count
//! is what the backend said it rejected of that job's requests.

mod binary;
mod ledger_support;

use std::time::Duration;

use binary::Running;
use ledger_support::{
    backend_unique_per_job, config, job_ids, send_padded_round, send_round, start_backend,
    wait_for_jobs,
};
use otelspool_testkit::backend::Mode;

/// Scenario: a 1 MiB queue with `drop_oldest`; the backend is down while 20 jobs send about
/// 2.5 MiB; then it comes back and the queue drains.
/// Guarantees: some records were dropped; per job, received == records sent,
/// delivered == unique records the backend has for the job, and dropped (drop_oldest) ==
/// sent − what the backend has; nothing stays queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_per_job_is_what_the_backend_misses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = start_backend(dir.path(), Mode::Unavailable).await;
    let (yaml, e) = config(
        backend.addr,
        &dir.path().join("data"),
        ", max_size_mib: 1, when_full: drop_oldest",
        "snapshot_interval: 200ms",
    );
    let config_path = dir.path().join("otelspool.yaml");
    std::fs::write(&config_path, &yaml).expect("config");
    let mut spool = Running::start(&config_path, &[]);
    spool.wait_healthy(e.health, Duration::from_secs(30)).await;
    let jobs = job_ids("drop", 20);
    const ROUNDS: usize = 30;
    const RECORDS: usize = 10;
    for round in 0..ROUNDS {
        send_padded_round(e.grpc, &jobs, round, RECORDS, 400).await;
    }
    backend.backend.set_mode(Mode::Ok);
    let sent = (ROUNDS * RECORDS) as u64;
    let ledger = wait_for_jobs(e.health, "the queue to drain", |l| {
        l.len() == jobs.len()
            && l.values()
                .all(|j| j["queued"] == 0 && j["received"].as_u64() == Some(sent))
    })
    .await;
    let have = backend_unique_per_job(&backend.record);
    let mut dropped_total = 0;
    for job in &jobs {
        let j = &ledger[job];
        let got = have.get(job).copied().unwrap_or(0);
        let dropped = j["dropped"]["drop_oldest"].as_u64().expect("dropped");
        dropped_total += dropped;
        assert_eq!(j["delivered"].as_u64(), Some(got), "{job}: {j}");
        assert_eq!(dropped, sent - got, "{job}: {j}");
    }
    assert!(dropped_total > 0, "the queue never filled up");
    println!(
        "dropped {dropped_total} of {} records; the ledger's per-job drops match the backend",
        sent * jobs.len() as u64
    );
    let _ = spool.stop();
}

/// Scenario: the backend answers every request with `partial_success` rejecting 2 items; 30
/// jobs send 2 requests of 5 records each (one request per export: no batching).
/// Guarantees: per job, rejected == 4, delivered == 6, received == 10; the ledger's rejected
/// total equals the backend's reported partial rejections; nothing is unattributed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_success_is_counted_as_rejected_for_its_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = start_backend(dir.path(), Mode::Partial(2)).await;
    let (yaml, e) = config(
        backend.addr,
        &dir.path().join("data"),
        "",
        "snapshot_interval: 200ms",
    );
    let config_path = dir.path().join("otelspool.yaml");
    std::fs::write(&config_path, &yaml).expect("config");
    let mut spool = Running::start(&config_path, &[]);
    spool.wait_healthy(e.health, Duration::from_secs(30)).await;
    let jobs = job_ids("partial", 30);
    send_round(e.grpc, &jobs, 0, 5).await;
    send_round(e.grpc, &jobs, 1, 5).await;
    let ledger = wait_for_jobs(e.health, "every job to have an outcome", |l| {
        l.len() == jobs.len() && l.values().all(|j| j["queued"] == 0)
    })
    .await;
    let mut rejected_total = 0;
    for job in &jobs {
        let j = &ledger[job];
        assert_eq!(j["received"].as_u64(), Some(10), "{job}: {j}");
        assert_eq!(j["rejected"].as_u64(), Some(4), "{job}: {j}");
        assert_eq!(j["delivered"].as_u64(), Some(6), "{job}: {j}");
        rejected_total += j["rejected"].as_u64().unwrap_or(0);
    }
    assert_eq!(rejected_total, backend.backend.stats().partial_rejected);
    let (_, list) = ledger_support::get(e.health, "/v1/jobs")
        .await
        .expect("list");
    assert_eq!(list["unattributed_rejected"], 0, "{list}");
    let _ = spool.stop();
}
