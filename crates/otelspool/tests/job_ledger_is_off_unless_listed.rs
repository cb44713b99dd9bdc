//! `job_ledger` defined under `extensions` but not listed in `service.extensions` is off: no
//! `/v1/jobs` answers, no snapshot file, no recent jobs on the status page.

mod binary;
mod ledger_support;

use std::time::Duration;

use binary::Running;
use ledger_support::{config, get, job_ids, send_round, start_backend};
use otelspool_testkit::backend::Mode;

/// Scenario: the ledger block is present but the service does not list it; a job sends
/// records and they are delivered.
/// Guarantees: `/v1/jobs` and `/v1/jobs/{id}` answer 404 saying the ledger is off, no
/// `job_ledger/` folder is created, and `/status.json` has no `recent_jobs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_not_listed_does_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = start_backend(dir.path(), Mode::Ok).await;
    let data = dir.path().join("data");
    let (yaml, e) = config(backend.addr, &data, "", "");
    let yaml = yaml.replace(
        "extensions: [file_storage, health_check, job_ledger]",
        "extensions: [file_storage, health_check]",
    );
    let config_path = dir.path().join("otelspool.yaml");
    std::fs::write(&config_path, &yaml).expect("config");
    let mut spool = Running::start(&config_path, &[]);
    spool.wait_healthy(e.health, Duration::from_secs(30)).await;
    send_round(e.grpc, &job_ids("off", 3), 0, 4).await;
    ledger_support::poll_until("delivery", || async {
        (backend.backend.stats().log_records >= 12).then_some(())
    })
    .await;
    for path in ["/v1/jobs", "/v1/jobs/off-000"] {
        let (code, body) = get(e.health, path).await.expect(path);
        assert_eq!(code, 404, "{path}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|m| m.contains("off")),
            "{body}"
        );
    }
    assert!(!data.join("job_ledger").exists());
    let (_, status) = get(e.health, "/status.json").await.expect("status.json");
    assert!(status.get("recent_jobs").is_none(), "{status}");
    let _ = spool.stop();
}
