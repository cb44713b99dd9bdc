//! `otelspool jobs flush ID` (the real binary, over the health endpoint of a running one)
//! waits for a job's delivery: exit 0 once everything the job sent was delivered, non-zero at
//! its timeout during an outage (naming what is still queued and the exporter's error), 0
//! after recovery; an unknown job is answered at once with 404. `otelspool jobs` prints the
//! table with coverage.

mod binary;
mod ledger_support;

use std::time::Duration;

use binary::Running;
use ledger_support::{
    backend_unique_per_job, config, get, jobs_command, send_round, start_backend,
};
use otelspool_testkit::backend::Mode;

/// Scenario: job A sends 3 requests with the backend up, then `jobs flush A`; the backend
/// goes down, job B sends, `jobs flush B --timeout 1s`; the backend comes back, `jobs flush
/// B --timeout 30s`; `jobs flush nope`; `jobs` and `jobs A`.
/// Guarantees: flush A exits 0 and then the ledger and the backend both have all of A's
/// records delivered; flush B exits 1 at its timeout naming the queued records and the
/// backend's error, then 0 after recovery with B fully delivered; the unknown job's flush
/// exits 1 and the API answers 404 (no wait until a timeout: that would be 504); the table
/// lists both jobs at 100% coverage, and so does the status page's recent jobs panel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_answers_once_the_job_is_delivered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = start_backend(dir.path(), Mode::Ok).await;
    let (yaml, e) = config(
        backend.addr,
        &dir.path().join("data"),
        "",
        "complete_after: 1h",
    );
    let config_path = dir.path().join("otelspool.yaml");
    std::fs::write(&config_path, &yaml).expect("config");
    let mut spool = Running::start(&config_path, &[]);
    spool.wait_healthy(e.health, Duration::from_secs(30)).await;

    let a = vec!["job-a".to_string()];
    for round in 0..3 {
        send_round(e.grpc, &a, round, 4).await;
    }
    let (code, out, err) = jobs_command(e.health, &["flush", "job-a", "--timeout", "30s"]).await;
    assert_eq!(code, 0, "flush A: {out}{err}");
    assert!(out.contains("every record received was delivered"), "{out}");
    let (status, job) = get(e.health, "/v1/jobs/job-a").await.expect("job-a");
    assert_eq!(status, 200);
    assert_eq!(
        (job["received"].as_u64(), job["delivered"].as_u64()),
        (Some(12), Some(12))
    );
    assert_eq!(
        backend_unique_per_job(&backend.record).get("job-a"),
        Some(&12)
    );

    backend.backend.set_mode(Mode::Unavailable);
    let b = vec!["job-b".to_string()];
    send_round(e.grpc, &b, 0, 5).await;
    let (code, out, err) = jobs_command(e.health, &["flush", "job-b", "--timeout", "1s"]).await;
    assert_eq!(code, 1, "flush B during the outage: {out}{err}");
    assert!(out.contains("5 records still queued"), "{out}");
    assert!(
        out.contains("otlp/logs") && out.contains("Unavailable"),
        "{out}"
    );

    backend.backend.set_mode(Mode::Ok);
    let (code, out, err) = jobs_command(e.health, &["flush", "job-b", "--timeout", "30s"]).await;
    assert_eq!(code, 0, "flush B after recovery: {out}{err}");
    assert_eq!(
        backend_unique_per_job(&backend.record).get("job-b"),
        Some(&5)
    );

    let (code, out, err) = jobs_command(e.health, &["flush", "nope", "--timeout", "30s"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("no job nope"), "{err}");
    let answer = reqwest::Client::new()
        .post(format!(
            "http://{}/v1/jobs/nope/flush?timeout=30s",
            e.health
        ))
        .send()
        .await
        .expect("flush nope");
    assert_eq!(answer.status().as_u16(), 404);

    let (code, table, err) = jobs_command(e.health, &[]).await;
    assert_eq!(code, 0, "{err}");
    let line = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} in\n{table}"))
            .to_owned()
    };
    assert!(line("job-a").contains("100.00%"), "{table}");
    assert!(line("job-b").contains("100.00%"), "{table}");
    assert!(table.starts_with("JOB"), "{table}");
    let (code, one, _) = jobs_command(e.health, &["job-a"]).await;
    assert_eq!(code, 0);
    assert_eq!(one.lines().count(), 2, "{one}");
    let (_, status) = get(e.health, "/status.json").await.expect("status.json");
    let recent: Vec<&str> = status["recent_jobs"]
        .as_array()
        .expect("recent_jobs panel")
        .iter()
        .filter_map(|j| j["id"].as_str())
        .collect();
    assert!(
        recent.contains(&"job-a") && recent.contains(&"job-b"),
        "{status}"
    );
    let _ = spool.stop();
}
