//! With an `attributes` processor that rewrites `emerge.job_id`, the job ledger counts the
//! records under the job the backend receives them as, not the one the client sent.

mod binary;
mod ledger_support;

use std::time::Duration;

use binary::Running;
use ledger_support::{
    backend_unique_per_job, config, get, send_round, start_backend, wait_for_jobs,
};
use otelspool_testkit::backend::Mode;

/// Scenario: the config's logs pipeline runs an `attributes` processor that upserts
/// `emerge.job_id: renamed`; job `sent-as` sends 3 requests of 5 records.
/// Guarantees: the ledger's job `renamed` has 15 received and 15 delivered, which is what
/// the backend holds for `renamed`; the ledger knows no job `sent-as` (404).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_counts_the_job_the_processor_wrote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = start_backend(dir.path(), Mode::Ok).await;
    let (yaml, e) = config(backend.addr, &dir.path().join("data"), "", "");
    let yaml = yaml
        .replace(
            "service:\n",
            "processors:\n  attributes:\n    actions: [{ key: emerge.job_id, value: renamed, action: upsert }]\nservice:\n",
        )
        .replace(
            "logs: { receivers: [otlp], exporters: [otlp] }",
            "logs: { receivers: [otlp], processors: [attributes], exporters: [otlp] }",
        );
    assert!(yaml.contains("processors: [attributes]"), "{yaml}");
    let config_path = dir.path().join("otelspool.yaml");
    std::fs::write(&config_path, &yaml).expect("config");
    let mut spool = Running::start(&config_path, &[]);
    spool.wait_healthy(e.health, Duration::from_secs(30)).await;

    let jobs = vec!["sent-as".to_string()];
    for round in 0..3 {
        send_round(e.grpc, &jobs, round, 5).await;
    }
    let seen = wait_for_jobs(e.health, "renamed delivered", |l| {
        l.get("renamed")
            .is_some_and(|j| j["delivered"].as_u64() == Some(15))
    })
    .await;
    assert_eq!(seen["renamed"]["received"].as_u64(), Some(15));
    assert_eq!(
        backend_unique_per_job(&backend.record).get("renamed"),
        Some(&15)
    );
    let unknown = get(e.health, "/v1/jobs/sent-as").await.map(|(s, _)| s);
    assert_eq!(unknown, Some(404));
}
